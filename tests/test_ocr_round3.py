"""Issue 16, third round: the first line of a right block printed above the left block's first line."""

from __future__ import annotations

from ocr.layout import Line, Word, find_columns, reading_order


def line(y: int, *words: tuple[int, str], par: int = 0) -> Line:
    ws = [Word(t, (x, y, x + 20 * len(t), y + 40)) for x, t in words]
    return Line(ws, (ws[0].box[0], y, ws[-1].box[2], y + 40), par)


def test_date_line_above_the_left_block_belongs_to_the_right_block() -> None:
    """Bottom of a form: the applicant's date line stands higher than the certification block's first line;
    it is read with the applicant's block, after the whole left block."""
    # the left block reaches past the middle of the empty space left of the date line
    lines = [
        line(100, (200, "toàn"), (330, "chịu"), (450, "trách"), (600, "nhiệm"), (760, "trước"), (900, "pháp")),
        line(200, (1400, "Tân"), (1500, "Lợi,"), (1620, "ngày"), (1740, "10")),
        line(
            262,
            (200, "XÁC"),
            (300, "NHẬN"),
            (440, "CỦA"),
            (540, "UBND"),
            (660, "PHƯỜNG"),
            (1500, "Người"),
            (1640, "làm"),
            (1740, "đơn"),
        ),  # fmt: skip
        line(324, (380, "TÂN"), (480, "LỢI"), (1450, "(Ký,"), (1560, "ghi"), (1640, "rõ")),
        line(386, (300, "KT."), (400, "CHỦ"), (500, "TỊCH")),
        line(448, (200, "Ngô"), (300, "Thu"), (400, "Nga"), (1450, "Nguyễn"), (1600, "Bá"), (1680, "Đạt")),
    ]
    for i, ln in enumerate(lines):
        ln.order = i
    bands = find_columns(lines, 2400)
    assert len(bands) == 1 and len(bands[0][0]) == 5  # the date line is in the band
    expected = (
        "toàn chịu trách nhiệm trước pháp XÁC NHẬN CỦA UBND PHƯỜNG TÂN LỢI KT. CHỦ TỊCH Ngô Thu Nga "
        "Tân Lợi, ngày 10 Người làm đơn (Ký, ghi rõ Nguyễn Bá Đạt"
    )
    assert " ".join(reading_order(lines, 2400).split()) == expected


def test_a_date_line_wider_than_the_right_block_keeps_its_first_word() -> None:
    """The date line starts left of the right block's lines (it is centred over them): still the right
    block's first line, and its first word is not lost."""
    lines = [
        line(200, (1100, "Nghi"), (1210, "Phong,"), (1350, "ngày"), (1470, "29"), (1550, "tháng"), (1690, "12")),
        line(
            262, (300, "XÁC"), (400, "NHẬN"), (540, "UBND"), (660, "XÃ"), (1750, "Người"), (1890, "làm"), (1990, "đơn")
        ),
        line(324, (380, "NGHI"), (480, "PHONG"), (1700, "(Ký,"), (1810, "ghi"), (1890, "rõ")),
        line(386, (300, "PHÓ"), (400, "CHỦ"), (500, "TỊCH"), (1780, "Võ"), (1840, "Hiếu")),
    ]
    for i, ln in enumerate(lines):
        ln.order = i
    expected = "XÁC NHẬN UBND XÃ NGHI PHONG PHÓ CHỦ TỊCH Nghi Phong, ngày 29 tháng 12 Người làm đơn (Ký, ghi rõ Võ Hiếu"
    assert " ".join(reading_order(lines, 2400).split()) == expected


def test_a_centred_line_above_the_blocks_stays_out_of_them() -> None:
    """A title centred on the page above the two blocks is not taken into the right block."""
    lines = [
        line(200, (1100, "KẾT"), (1200, "LUẬN")),
        line(262, (200, "XÁC"), (300, "NHẬN"), (1500, "Người"), (1640, "làm"), (1740, "đơn")),
        line(324, (200, "TÂN"), (300, "LỢI"), (1450, "(Ký,"), (1560, "ghi"), (1640, "rõ")),
        line(386, (200, "Ngô"), (300, "Thu"), (1450, "Nguyễn"), (1600, "Bá")),
    ]
    for i, ln in enumerate(lines):
        ln.order = i
    bands = find_columns(lines, 2400)
    assert len(bands) == 1 and len(bands[0][0]) == 3


def test_a_line_outside_every_word_is_found_for_a_second_reading() -> None:
    """A line Tesseract's page layout dropped (no word box over it) is found as a line of lost letters;
    a page whose every line is inside words has none."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    from ocr.pipeline import missed_lines

    img = Image.new("L", (2480, 1200), 255)
    d = ImageDraw.Draw(img)
    f = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 50)
    boxes = []
    for k in range(5):
        y = 150 + 150 * k
        d.text((250, y), "Nơi thường trú: Thôn Tân Thành, xã Nghi Thạch, huyện Nghi Lộc", font=f, fill=20)
        x0, y0, x1, y1 = d.textbbox((250, y), "Nơi thường trú: Thôn Tân Thành, xã Nghi Thạch, huyện Nghi Lộc", font=f)
        boxes.append((int(x0), int(y0), int(x1), int(y1)))
    gray = np.asarray(img)
    assert missed_lines(gray, boxes) == []
    lost = missed_lines(gray, boxes[:2] + boxes[3:])
    assert len(lost) == 1
    x0, y0, x1, y1 = lost[0]
    assert abs(y0 - boxes[2][1]) < 30 and abs(y1 - boxes[2][3]) < 30 and x0 < 300 and x1 > boxes[2][2] - 60


def test_a_lost_line_is_read_alone_and_put_between_its_neighbours() -> None:
    """The hOCR of a page whose middle line was dropped gets that line back, read with --psm 7, as a
    paragraph between the lines above and below it (so the text keeps the page's order)."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    from ocr import OcrSettings, resolve_model
    from ocr.layout import parse_lines
    from ocr.pipeline import _reread_missed

    texts = ["Kính gửi: Ủy ban nhân dân xã", "Nơi thường trú: Thôn Tân Thành, xã Nghi Thạch", "Số điện thoại"]
    img = Image.new("L", (2480, 700), 255)
    d = ImageDraw.Draw(img)
    f = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 50)
    pars = []
    for k, t in enumerate(texts):
        d.text((250, 150 + 150 * k), t, font=f, fill=20)
        if k != 1:  # the layout "dropped" the middle line: one word box over each other line
            x0, y0, x1, y1 = (int(v) for v in d.textbbox((250, 150 + 150 * k), t, font=f))
            pars.append(
                f"<p class='ocr_par' id='par_{k}' title=\"bbox {x0} {y0} {x1} {y1}\"><span class='ocr_line' "
                f"id='line_{k}' title=\"bbox {x0} {y0} {x1} {y1}\"><span class='ocrx_word' id='word_{k}' "
                f"title='bbox {x0} {y0} {x1} {y1}; x_wconf 95'>{t}</span></span></p>"
            )
    hocr = "<div class='ocr_page'><div class='ocr_carea'>" + "\n".join(pars) + "</div></div>"
    s = OcrSettings()
    hocr2, added = _reread_missed(np.asarray(img), hocr, 300, 32.0, 0.5, resolve_model(s)[0], s)
    assert added == 1
    lines = [" ".join(w.text for w in ln.words) for ln in parse_lines(hocr2)]
    assert lines[0] == texts[0] and lines[-1] == texts[2] and len(lines) == 3
    assert "Thôn Tân Thành" in lines[1]
