"""Pure pieces of the pages: Vietnamese number and date formats, query highlights from hOCR and in text."""

from __future__ import annotations

from api.highlight import mark_text, word_boxes
from api.ui import vn_date, vn_number

HOCR = """<div class='ocr_page' id='page_1' title='image "/tmp/x/page.pgm"; bbox 0 0 2000 1000; ppageno 0'>
<span class='ocrx_word' id='word_1_1' title='bbox 100 100 300 150; x_wconf 96'>Hồ</span>
<span class='ocrx_word' id='word_1_2' title='bbox 320 100 500 150; x_wconf 95'>sơ</span>
<span class='ocrx_word' id='word_1_3' title='bbox 520 100 700 150; x_wconf 91'>đất,</span>
<span class='ocrx_word' id='word_1_4' title='bbox 720 100 900 150; x_wconf 90'>nhà</span>
</div>"""


def test_vn_number_and_date() -> None:
    assert vn_number(1234567) == "1.234.567"
    assert vn_number(98.5, 1) == "98,5"
    assert vn_number(None) == ""
    assert vn_date("2026-03-31") == "31/03/2026"
    assert vn_date("2026-03-31T17:30:00+00:00", with_time=True) == "01/04/2026 00:30"  # Vietnam time, UTC+7


def test_word_boxes_match_without_diacritics_in_percent_of_the_page() -> None:
    boxes = word_boxes(HOCR, "ho so dat")
    assert [b.word for b in boxes] == ["Hồ", "sơ", "đất,"]
    first = boxes[0]
    assert (first.left, first.top, first.width, first.height) == (5.0, 10.0, 10.0, 5.0)
    assert word_boxes(HOCR, "") == [] and word_boxes("<p>no page</p>", "ho") == []


def test_mark_text_escapes_and_marks() -> None:
    out = str(mark_text("Hồ sơ <đất> đai", "dat ho"))
    assert out.count("<mark") == 2 and "&lt;" in out and ">Hồ</mark>" in out and ">đất</mark>" in out
