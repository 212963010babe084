"""Registry files: CSV (UTF-8, BOM, Windows-1258), XLSX, JSON; dates; bad rows reported by line."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import openpyxl
import pytest

from index import open_index
from ingest.registry_file import RegistryFileError, parse_date, read_registry
from sohoa.reports import import_registry
from sohoa.settings import DEFAULT_DOSSIER_CODE_PATTERN as PAT

HEADER = "MaHoSo,MaTTHC,TenTTHC,MaLinhVuc,TenLinhVuc,KenhThucHien,NgayTiepNhan,NgayHenTra,NgayCoKetQua,DonViXuLy"
ROWS = [
    "000.00.06.H56-260105-0001,1.001,Đăng ký biến động,DD,Đất đai,1,05/01/2026,20/01/2026,18/01/2026,UBND xã A",
    "000.00.06.H56-260106-0002,1.002,Đăng ký khai sinh,HT,Hộ tịch,trực tuyến,2026-01-06,,,UBND xã A",
    "000.00.06.H56-260107-0003,1.002,Đăng ký khai sinh,HT,Hộ tịch,Bưu chính công ích,20260107093000,,,UBND xã B",
]


def cp1258(text: str) -> bytes:
    """Windows-1258 as Vietnamese Windows software writes it: base letters + combining tone marks."""
    out = b""
    for ch in text:
        d = unicodedata.normalize("NFD", ch)
        tone = "".join(c for c in d if c in "\u0300\u0301\u0303\u0309\u0323")
        base = unicodedata.normalize("NFC", "".join(c for c in d if c not in tone))
        for candidate in (ch, base + tone):
            try:
                out += candidate.encode("cp1258")
                break
            except UnicodeEncodeError:
                continue
        else:
            raise AssertionError(f"cannot encode {ch!r}")
    return out


def write(tmp: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    p = tmp / name
    p.write_bytes(cp1258(text) if encoding == "cp1258" else text.encode(encoding))
    return p


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1258"])
def test_csv_encodings(tmp_path: Path, encoding: str) -> None:
    p = write(tmp_path, "r.csv", "\n".join([HEADER, *ROWS]) + "\n", encoding)
    recs, errors = read_registry(p, PAT)
    assert errors == []
    assert [r.field_name for r in recs] == ["Đất đai", "Hộ tịch", "Hộ tịch"]  # NFC after Windows-1258 too
    assert [r.channel for r in recs] == ["trực tiếp", "trực tuyến", "bưu chính công ích"]
    assert [r.received for r in recs] == ["2026-01-05", "2026-01-06", "2026-01-07"]
    assert recs[0].resolved == "2026-01-18" and recs[1].resolved == ""


def test_bad_rows_reported_with_line_numbers(tmp_path: Path) -> None:
    bad = [
        "HS-01,1.001,x,DD,Đất đai,1,05/01/2026,,,U",  # malformed code (line 3)
        "000.00.06.H56-260105-0009,1.001,x,DD,Đất đai,9,05/01/2026,,,U",  # unknown channel (line 4)
        "000.00.06.H56-260105-0010,1.001,x,DD,Đất đai,1,31/02/2026,,,U",  # bad date (line 5)
    ]
    p = write(tmp_path, "r.csv", "\n".join([HEADER, ROWS[0], *bad, ROWS[1]]) + "\n")
    recs, errors = read_registry(p, PAT)
    assert len(recs) == 2
    assert [n for n, _ in errors] == [3, 4, 5]
    assert "malformed dossier code" in errors[0][1] and "unknown channel" in errors[1][1]
    assert "day is out of range" in errors[2][1] or "bad date" in errors[2][1]
    ix = open_index(f"sqlite:///{tmp_path / 'i.sqlite3'}")
    res = import_registry(ix, p, PAT, strict=True)
    assert res.refused and res.inserted == 0 and list(ix.registry()) == []
    res = import_registry(ix, p, PAT)
    assert (res.inserted, len(res.errors)) == (2, 3)
    again = import_registry(ix, p, PAT)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "empty file"), ("MaHoSo,TenTTHC\n000.00.06.H56-260105-0001,x\n", "missing required column(s) NgayTiepNhan"),
     ("MaHoSo,NgayTiepNhan\n", "no dossier rows"), ("[1, 2]", "JSON must be a list of dossier objects")],
)  # fmt: skip
def test_bad_files(tmp_path: Path, content: str, message: str) -> None:
    p = write(tmp_path, "r.json" if content.startswith("[") else "r.csv", content)
    with pytest.raises(RegistryFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_registry(p, PAT)


def test_xlsx_and_json(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(HEADER.split(","))
    from datetime import datetime

    ws.append(
        ["000.00.06.H56-260105-0001", "1.001", "x", "DD", "Đất đai", 2, datetime(2026, 1, 5, 8, 30), None, None, "U"]
    )
    wb.save(tmp_path / "r.xlsx")
    recs, errors = read_registry(tmp_path / "r.xlsx", PAT)
    assert errors == [] and recs[0].received == "2026-01-05" and recs[0].channel == "trực tuyến"
    row = {"MaHoSo": "000.00.06.H56-260105-0001", "NgayTiepNhan": "05/01/2026", "KhongCoKetQua": 1,
           "ThanhPhanBatBuoc": "Tờ khai; CCCD"}  # fmt: skip
    (tmp_path / "r.json").write_text(json.dumps({"data": [row]}), "utf-8")
    recs, errors = read_registry(tmp_path / "r.json", PAT)
    assert errors == [] and recs[0].no_result and recs[0].required == ("Tờ khai", "CCCD")


@pytest.mark.parametrize(
    ("raw", "iso"),
    [("05/01/2026", "2026-01-05"), ("5/1/2026 08:30", "2026-01-05"), ("2026-01-05T08:30:00+07:00", "2026-01-05"),
     ("20260105083000", "2026-01-05"), ("", "")],
)  # fmt: skip
def test_parse_date(raw: str, iso: str) -> None:
    assert parse_date(raw) == iso
