"""Issue 16, second part: leader dots before a value, dotted-line dots read into a value, run-together
syllables split again, the blur rule of phone photos."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ocr import OcrSettings
from ocr.forms import clean_form, strip_leader_text
from ocr.glued import split_glued, split_token
from ocr.pipeline import ocr_scale

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def test_leader_dots_between_a_label_and_its_value_are_removed() -> None:
    """`Họ và tên:....Nguyễn Văn Hùng......`: a pre-printed dotted line with the value typed on it (white
    behind its letters). The four dots left of the value (too few for a run of their own) go as well, the
    colon and the value stay."""
    img = Image.new("L", (2480, 1000), 255)
    d = ImageDraw.Draw(img)
    f = ImageFont.truetype(FONT, 50)
    for k in range(4):  # some prose: the page's letter height is measured on its letters
        d.text((250, 600 + 80 * k), "Cộng hòa xã hội chủ nghĩa Việt Nam, độc lập tự do hạnh phúc", font=f, fill=20)
    label, value = "Họ và tên:", "Nguyễn Văn Hùng"
    d.text((250, 250), label, font=f, fill=20)
    x0 = 250 + d.textlength(label, font=f)
    base = d.textbbox((250, 250), ":", font=f)[3]  # the baseline: the colon's lower dot sits on it
    pitch = 12  # dots closer than a letter's gap (under a third of the letter height)
    cb = d.textbbox((250 + d.textlength(label[:-1], font=f), 250), ":", font=f)
    start = round((cb[0] + cb[2]) / 2 + pitch - 1.5)  # the colon's lower dot is at the line's pitch
    for x in range(start, 2230, pitch):
        d.rectangle((x, base - 4, x + 3, base - 1), fill=20)
    xv = start + 4 * pitch - 2
    xe = xv + d.textlength(value, font=f)
    d.rectangle((xv - 2, 230, xe + 6, 340), fill=255)
    d.text((xv, 250), value, font=f, fill=20)
    page = np.asarray(img).copy()
    out, s = clean_form(page, 0.0)
    assert s.leader_runs
    between = (slice(250, 330), slice(int(x0 + 8), int(xv - 2)))  # the dots after the colon
    assert (page[between] < 128).sum() > 0 and (out[between] < 128).sum() == 0
    colon = (slice(250, 330), slice(int(x0 - 20), int(x0 + 2)))
    assert (out[colon] < 128).sum() == (page[colon] < 128).sum()  # the colon keeps both dots
    letters = (slice(230, 330), slice(int(xv), int(xe)))
    assert (out[letters] < 128).sum() == (page[letters] < 128).sum()


def test_dotted_line_dots_read_into_values_are_taken_out() -> None:
    assert strip_leader_text("Tôi tên là:..Ngô.Thị Hà") == "Tôi tên là: Ngô Thị Hà"
    assert strip_leader_text("..cấp.xã thực hiện.khá") == "cấp xã thực hiện khá"
    assert strip_leader_text("Nơi thường trú:..Số.12, đường.Trần") == "Nơi thường trú: Số 12, đường Trần"
    assert strip_leader_text("Lý do:.TTHCC huyện") == "Lý do: TTHCC huyện"
    kept = "TP.HCM, Q.1, 1.000.000 đồng, lúc 8:30. Xong."
    assert strip_leader_text(kept) == kept


def test_run_together_syllables_are_split() -> None:
    assert split_glued("Hìnhthứcnhận kết quả: Trựctiếp Quadịchvụ bưu chính côngích") == (
        "Hình thức nhận kết quả: Trực tiếp Qua dịch vụ bưu chính công ích"
    )
    assert split_glued("STT Tên giấy tờ Sốlượng Loạibản Ghichú") == "STT Tên giấy tờ Số lượng Loại bản Ghi chú"
    assert split_token("Hợpđồng") == "Hợp đồng"
    # syllables, names, ASCII words, codes and consonant-only pieces stay
    for same in ("nghiêng", "khuyến", "Nguyễn", "Thuột", "email", "online", "Mnông", "H'Mông", "ab12cd",
                 "giấy chứng nhận quyền sử dụng đất"):  # fmt: skip
        assert split_glued(same) == same


def test_photos_read_blurred_pages_smaller_from_a_lower_edge_width() -> None:
    s = OcrSettings()
    assert ocr_scale(s, 300, 32.0, 2.1) == ocr_scale(s, 300, 32.0, 0.5)  # a scan: still 180 dpi
    photo = OcrSettings(blur_dpi=s.photo_blur_dpi)
    assert round(ocr_scale(photo, 300, 32.0, 2.1) * 300) == 130
