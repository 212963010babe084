import unicodedata

import pytest

from sohoa.text import exact_match, fold, nfc, parse_query, snippet


def test_fold_vietnamese_and_d_stroke():
    assert fold("Hồ sơ đất đai ĐỒNG Nai") == "Ho so dat dai DONG Nai"
    assert fold("Ð") == "D"  # U+00D0 look-alike that Tesseract emits for Đ


def test_fold_keeps_length_so_offsets_align():
    s = nfc("Quyết định số 101/2024/NĐ-CP của Chính phủ")
    assert len(fold(s)) == len(s)


def test_nfc_composes_decomposed_input():
    decomposed = unicodedata.normalize("NFD", "quyền sử dụng đất")
    assert decomposed != "quyền sử dụng đất"
    assert nfc(decomposed) == "quyền sử dụng đất"
    assert fold(nfc(decomposed)) == "quyen su dung dat"


def test_parse_query_terms_and_phrases():
    q = parse_query('"đất đai" thanh hoa')
    assert q.terms == ("thanh", "hoa")
    assert q.phrases == (("đất", "đai"),)
    assert q.has_diacritics
    assert not parse_query("ho so").has_diacritics
    assert parse_query("  ").empty


@pytest.mark.parametrize(
    ("text", "query", "expected"),
    [("Hồ sơ đất đai", "hồ sơ", True), ("Hộ số đắt dài", "hồ sơ", False), ("HỒ SƠ", "hồ sơ", True)],
)
def test_exact_match(text, query, expected):
    assert exact_match(text, parse_query(query)) is expected


def test_snippet_highlights_original_text_from_folded_query():
    text = "Phần đầu không liên quan. " * 10 + "Hồ sơ đất đai của ông Nguyễn Văn Hùng <script>"
    s = snippet(text, parse_query("ho so dat dai"))
    assert "<mark>Hồ</mark> <mark>sơ</mark> <mark>đất</mark> <mark>đai</mark>" in s
    assert "&lt;script&gt;" in s and "<script>" not in s
    assert s.startswith("…")
