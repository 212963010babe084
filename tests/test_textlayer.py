"""ocr.textlayer: corrected words placed on the boxes of the hOCR words they came from."""

from __future__ import annotations

import html
import unicodedata

from ocr.textlayer import Word, corrected_words, hocr_words

Box = tuple[int, int, int, int]


def make_hocr(lines: list[list[tuple[str, Box]]]) -> str:
    """A Tesseract-like hOCR page: one ocr_line per list, one ocrx_word per (text, box)."""
    out = ["<div class='ocr_page' id='page_1' title='bbox 0 0 2000 3000'>"]
    n = 0
    for k, line in enumerate(lines):
        lb = (
            min(b[0] for _, b in line),
            min(b[1] for _, b in line),
            max(b[2] for _, b in line),
            max(b[3] for _, b in line),
        )
        out.append(
            f"<span class='ocr_line' id='line_1_{k}' title='bbox {lb[0]} {lb[1]} {lb[2]} {lb[3]}; baseline 0 -8'>"
        )
        for text, (x0, y0, x1, y1) in line:
            n += 1
            out.append(
                f"<span class='ocrx_word' id='word_1_{n}' title='bbox {x0} {y0} {x1} {y1}; x_wconf 90'>"
                f"{html.escape(text, quote=False)}</span>"
            )
        out.append("</span>")
    out.append("</div>")
    return "\n".join(out)


LINE0 = [("CỘNG", (100, 100, 300, 150)), ("HÒA", (320, 100, 420, 150)), ("XÃ", (440, 100, 500, 150))]
LINE1 = [("Số:", (100, 200, 160, 250)), ("12/QĐ-UBND", (180, 200, 480, 250))]


def test_hocr_words_reads_boxes_lines_and_entities() -> None:
    words = hocr_words(make_hocr([LINE0, [("A&B", (10, 300, 90, 340))]]))
    assert [w.text for w in words] == ["CỘNG", "HÒA", "XÃ", "A&B"]
    assert words[1] == Word("HÒA", (320, 100, 420, 150), 0)
    assert words[3].line == 1


def test_equal_and_replaced_words_keep_their_boxes() -> None:
    hocr = make_hocr([LINE0, LINE1])
    got = corrected_words(hocr, "CỘNG HOÀ XÃ\nSố: 12/QĐ-UBND\n")
    assert [w.text for w in got] == ["CỘNG", "HOÀ", "XÃ", "Số:", "12/QĐ-UBND"]
    assert got[1].box == (320, 100, 420, 150)  # replaced one for one: the box of the word it replaces
    assert [w.line for w in got] == [0, 0, 0, 1, 1]
    assert got[4].box == (180, 200, 480, 250)


def test_d_lookalike_never_in_output_and_nfc() -> None:
    hocr = make_hocr([[("ÐỒNG", (0, 0, 100, 40)), ("Ý", (120, 0, 150, 40))]])
    decomposed = unicodedata.normalize("NFD", "ÐỒNG Ý")
    got = corrected_words(hocr, decomposed)
    assert [w.text for w in got] == ["ĐỒNG", "Ý"]
    assert all("Ð" not in w.text and unicodedata.is_normalized("NFC", w.text) for w in got)
    assert "Ð" not in "".join(w.text for w in hocr_words(hocr))


def test_split_word_shares_the_box_in_proportion() -> None:
    hocr = make_hocr([[("Quyếtđịnh", (100, 10, 1000, 60)), ("số", (1020, 10, 1100, 60))]])
    got = corrected_words(hocr, "Quyết định số")
    assert [w.text for w in got] == ["Quyết", "định", "số"]
    a, b = got[0].box, got[1].box
    assert a[0] == 100 and b[2] == 1000 and a[2] <= b[0] + 1  # inside the old box, in order
    assert abs((a[2] - a[0]) / (b[2] - b[0]) - 5 / 4) < 0.02  # "Quyết" : "định" by characters
    assert a[1:4:2] == b[1:4:2] == (10, 60)
    assert got[2].box == (1020, 10, 1100, 60)


def test_merged_words_take_the_union() -> None:
    hocr = make_hocr([[("Ủy", (100, 10, 160, 60)), ("ban", (170, 10, 250, 60)), ("nhân", (400, 10, 500, 60))]])
    got = corrected_words(hocr, "Ủyban nhân")  # a (bad) correction that joins two words
    assert got[0] == Word("Ủyban", (100, 10, 250, 60), 0)
    assert got[1].box == (400, 10, 500, 60)


def test_replacement_across_two_lines_keeps_each_line() -> None:
    hocr = make_hocr([[("aa", (0, 0, 100, 40))], [("bb", (0, 50, 100, 90)), ("cc", (120, 50, 200, 90))]])
    got = corrected_words(hocr, "xx yy zz ww")  # nothing equal: all replaced, 3 → 4
    assert [w.text for w in got] == ["xx", "yy", "zz", "ww"]
    assert got[0].line == 0 and got[-1].line == 1
    for w in got:  # every word stays inside a source line's box
        assert (w.box[1], w.box[3]) in ((0, 40), (50, 90))


def test_inserted_word_shares_a_neighbour_on_its_line() -> None:
    hocr = make_hocr([LINE0, LINE1])
    got = corrected_words(hocr, "CỘNG HÒA XÃ HỘI\nSố: 12/QĐ-UBND")
    assert [w.text for w in got] == ["CỘNG", "HÒA", "XÃ", "HỘI", "Số:", "12/QĐ-UBND"]
    xa, hoi = got[2], got[3]
    assert xa.line == hoi.line == 0
    assert xa.box[0] == 440 and hoi.box[2] == 500 and xa.box[2] <= hoi.box[0] + 1


def test_deleted_words_are_dropped() -> None:
    hocr = make_hocr([[("|", (50, 100, 60, 150)), *LINE0]])
    got = corrected_words(hocr, "CỘNG HÒA XÃ")
    assert [(w.text, w.box) for w in got] == [(t, b) for t, b in LINE0]


def test_block_moved_by_reading_order_keeps_its_boxes() -> None:
    left = [("UBND", (100, 100, 300, 150)), ("TỈNH", (320, 100, 450, 150))]
    right = [("CỘNG", (1200, 100, 1400, 150)), ("HÒA", (1420, 100, 1520, 150))]
    body = [("Điều", (100, 400, 200, 450)), ("1.", (220, 400, 260, 450))]
    # Tesseract read the header line across both blocks; reading order puts the right block after the body
    hocr = make_hocr([[*left, *right], body])
    got = corrected_words(hocr, "UBND TỈNH\nĐiều 1.\nCỘNG HÒA")
    boxes = {w.text: w.box for w in got}
    assert [w.text for w in got] == ["UBND", "TỈNH", "Điều", "1.", "CỘNG", "HÒA"]
    assert boxes["CỘNG"] == (1200, 100, 1400, 150) and boxes["HÒA"] == (1420, 100, 1520, 150)
    assert boxes["Điều"] == (100, 400, 200, 450)


def test_empty_inputs() -> None:
    assert corrected_words("", "a b") == []
    assert corrected_words(make_hocr([LINE0]), "  \n") == []
