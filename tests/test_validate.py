"""Unit tests: every external input gets a clear error before anything is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import InputError, validate_file, validate_metadata
from sohoa.settings import Settings

import fixtures

S = Settings(data_dir=Path("/nonexistent"))


def check(tmp_path: Path, data: bytes, name: str) -> None:
    p = tmp_path / "upload"
    p.write_bytes(data)
    validate_file(S, p, name)


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
