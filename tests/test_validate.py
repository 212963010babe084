"""Unit tests: every external input gets a clear error before anything is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import FileInfo, InputError, validate_file, validate_metadata
from sohoa.settings import Settings

import fixtures

S = Settings(data_dir=Path("/nonexistent"))


def check(tmp_path: Path, data: bytes, name: str) -> None:
    check_info(tmp_path, data, name)


def check_info(tmp_path: Path, data: bytes, name: str) -> FileInfo:
    p = tmp_path / "upload"
    p.write_bytes(data)
    return validate_file(S, p, name)


@pytest.mark.parametrize(
    ("data", "name", "status", "message"),
    [
        (b"", "scan.pdf", 422, "empty file"),
        (fixtures.text_pretending_pdf(), "scan.pdf", 415, "not a PDF file: it looks like text"),
        (b"\x00\x01garbage" * 100, "scan.bin", 415, "not a PDF, TIFF, JPEG or PNG"),
        (fixtures.corrupt_pdf(), "scan.pdf", 422, "corrupt PDF"),
        (fixtures.encrypted_pdf(), "scan.pdf", 422, "encrypted PDF"),
        (fixtures.encrypted_pdf(user_password=""), "scan.pdf", 422, "encrypted PDF"),
        (fixtures.huge_png_header(), "scan.png", 413, "50000×50000 px"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 50, "scan.jpg", 422, "corrupt or unreadable JPEG"),
    ],
    ids=["zero", "text-as-pdf", "unknown", "corrupt-pdf", "encrypted", "encrypted-owner-only", "huge", "corrupt-jpeg"],
)
def test_bad_files(tmp_path: Path, data: bytes, name: str, status: int, message: str) -> None:
    with pytest.raises(InputError) as e:
        check(tmp_path, data, name)
    assert e.value.status == status
    assert message in e.value.message
    assert e.value.filename == name


def test_truncated_pdf_is_rejected_or_repaired(tmp_path: Path) -> None:
    # qpdf repairs some damage; what it cannot repair must be an InputError, never a crash
    try:
        check(tmp_path, fixtures.truncated_pdf(), "cut.pdf")
    except InputError as e:
        assert "PDF" in e.message


def test_page_limit(tmp_path: Path) -> None:
    p = tmp_path / "a.pdf"
    p.write_bytes(fixtures.two_page_pdf())
    with pytest.raises(InputError, match="2 pages, above the limit of 1"):
        validate_file(S.with_(max_pages=1), p, "a.pdf")


def test_good_files(tmp_path: Path) -> None:
    p = tmp_path / "a"
    p.write_bytes(fixtures.two_page_pdf())
    info = validate_file(S, p, "hồ sơ.pdf")
    assert (info.format, info.pages, info.media_type) == ("pdf", 2, "application/pdf")
    p.write_bytes(fixtures.jpeg_scan())
    info = validate_file(S, p, "scan.png")  # content wins over the name, with a warning
    assert info.format == "jpeg" and info.warnings


@pytest.mark.parametrize(
    ("code", "kind", "message"),
    [
        ("", "input", "required"),
        ("hồ sơ số 1", "input", "malformed dossier code"),
        ("000.00.06.H56-2310-0361", "input", "malformed dossier code"),
        ("000.00.06.H56-231027-0361", "ketqua", "unknown document kind"),
    ],
)
def test_bad_metadata(code: str, kind: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        validate_metadata(S, code, kind)


def test_metadata_nfc() -> None:
    import unicodedata

    code, kind, comp, unit = validate_metadata(
        S, " 000.00.06.H56-231027-0361 ", "OUTPUT", unicodedata.normalize("NFD", "Giấy chứng nhận"), "UBND"
    )
    assert (code, kind, comp) == ("000.00.06.H56-231027-0361", "output", "Giấy chứng nhận")


# -- decoded pixels per page (SOHOA_MAX_PAGE_PIXELS) ----------------------------------------------------


def test_page_pixel_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    """A small PNG declaring 12000×12000 px (the one measured was 168 KB) passes SOHOA_MAX_PIXELS (200 MP)
    but grew a worker by ~550 MB once decoded: refused from its header, naming the page, its size and
    the setting."""
    from PIL import Image

    bomb = fixtures.huge_png_header(12_000, 12_000)
    assert S.max_pixels >= 12_000 * 12_000  # the old limit let it through
    with pytest.raises(InputError) as e:
        check(tmp_path, bomb, "bom.png")
    assert e.value.status == 413
    assert "page 1 is 12000×12000 px (144 megapixels)" in e.value.message, e.value.message
    assert "per-page limit of 40 megapixels (SOHOA_MAX_PAGE_PIXELS)" in e.value.message, e.value.message
    assert Image.MAX_IMAGE_PIXELS is not None  # PIL's own guard is never switched off


def test_page_budget_is_per_frame(tmp_path: Path) -> None:
    p = tmp_path / "scan.tif"
    p.write_bytes(fixtures.multipage_tiff([(2480, 3508), (7000, 7000)]))
    with pytest.raises(InputError, match=r"page 2 is 7000×7000 px .*SOHOA_MAX_PAGE_PIXELS") as e:
        validate_file(S, p, "scan.tif")
    assert e.value.status == 413
    info = validate_file(S.with_(max_page_pixels=50_000_000), p, "scan.tif")
    assert info.pages == 2


@pytest.mark.parametrize(
    ("width", "height", "dpi"),
    [(2480, 3508, 300), (4961, 7016, 600), (4677, 6614, 400)],
    ids=["A4-300dpi", "A4-600dpi", "A3-400dpi"],
)
def test_real_scan_sizes_fit_the_default_page_budget(tmp_path: Path, width: int, height: int, dpi: int) -> None:
    info = check_info(tmp_path, fixtures.blank_scan(width, height, dpi=dpi), "trang.png")
    assert (info.format, info.pages, info.warnings) == ("png", 1, [])


def test_pdf_page_too_large_for_the_budget_is_accepted_with_a_warning(tmp_path: Path) -> None:
    """A PDF page is drawn, not decoded: the worker renders it at a lower dpi that fits, so the upload
    is accepted and the clerk is told which pages lose resolution."""
    info = check_info(tmp_path, fixtures.pdf_with_page_size(3000, 3000), "ban-do.pdf")
    assert info.pages == 1
    assert info.warnings == [
        "1 PDF page(s) too large for 300 dpi within 40 megapixels per page (SOHOA_MAX_PAGE_PIXELS) "
        "will be rendered at a lower resolution: page 1 at 151 dpi"
    ]
    a4 = check_info(tmp_path, fixtures.two_page_pdf(), "a4.pdf")
    assert a4.warnings == []
