"""Import the dossier registry (one-stop system exports) from CSV, XLSX or JSON with the portal's field names."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sohoa.domain import CHANNELS, DossierRecord, duplicate_message
from sohoa.text import fold, nfc

VIETNAM = timezone(timedelta(hours=7), "ICT")  # Asia/Ho_Chi_Minh: UTC+7 all year (no daylight saving)

# our field -> accepted column names (portal names first); matched case- and diacritics-insensitively
COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("MaHoSo",),
    "procedure": ("MaTTHC",),
    "procedure_name": ("TenTTHC",),
    "field_code": ("MaLinhVuc",),
    "field_name": ("TenLinhVuc",),
    "channel": ("KenhThucHien",),
    "received": ("NgayTiepNhan",),
    "due": ("NgayHenTra",),
    "resolved": ("NgayCoKetQua",),
    "status": ("TrangThaiHoSo",),
    "unit": ("DonViXuLy", "MaDonVi"),
    "level": ("CapDonVi", "Level", "Cap"),
    "no_result": ("KhongCoKetQua", "NoResult"),
    "required": ("ThanhPhanBatBuoc", "RequiredComponents"),
    "signed": ("DaKySo", "KySo", "Signed"),
}
REQUIRED_COLUMNS = ("code", "received")
_CHANNEL_NAMES = {fold(v): v for v in CHANNELS.values()} | {"buu chinh": CHANNELS["3"], "bcci": CHANNELS["3"]}


class RegistryFileError(ValueError):
    """The whole file cannot be read (encoding, format, columns, empty)."""


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", fold(nfc(str(name))).lower())


def decode(data: bytes) -> tuple[str, str]:
    """Bytes → (NFC text, encoding): UTF-8 (with or without BOM), else Windows-1258."""
    if data.startswith(b"\xef\xbb\xbf"):
        return nfc(data[3:].decode("utf-8")), "utf-8-sig"
    try:
        return nfc(data.decode("utf-8")), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return nfc(data.decode("cp1258")), "windows-1258"
    except UnicodeDecodeError as e:
        raise RegistryFileError(f"cannot decode the file as UTF-8 or Windows-1258: {e}") from e


def vietnam_date(t: datetime) -> str:
    """The calendar date in Vietnam of *t*: an aware time is converted to UTC+7 first; a naive one is local."""
    if t.tzinfo is not None and t.utcoffset() is not None:
        t = t.astimezone(VIETNAM)
    return t.date().isoformat()


_OFFSET = re.compile(r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")


def parse_date(value: Any) -> str:
    """dd/mm/yyyy[ HH:MM[:SS]], yyyy-mm-dd[THH:MM:SS[.fff]][Z|±HH:MM], yyyyMMddHHmmss, Excel dates → ISO
    ``yyyy-mm-dd``, the date **in Vietnam**: a time with an offset or ``Z`` is converted to UTC+7 before its
    date is taken (``2026-03-31T17:30:00Z`` is 1 April 00:30 in Hà Nội); a time without one is local time."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        return vietnam_date(value)
    if isinstance(value, date):
        return value.isoformat()
    s = str(value).strip()
    m = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?", s)
    if m:
        d, mo, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
        return date(y, mo, d).isoformat()
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:[ T].*)?", s)
    if m:
        day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if _OFFSET.search(s) and len(s) > 10:
            try:
                return vietnam_date(datetime.fromisoformat(s.replace(" ", "T", 1)))
            except ValueError:
                raise ValueError(f"bad date {s!r} (use dd/mm/yyyy or yyyy-mm-dd[THH:MM:SS][Z|+07:00])") from None
        return day.isoformat()
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(\d{6})?", s)
    if m:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    raise ValueError(f"bad date {s!r} (use dd/mm/yyyy or yyyy-mm-dd)")


def parse_channel(value: Any) -> str:
    s = nfc(str(value or "")).strip()
    if not s:
        return ""
    if s in CHANNELS:
        return CHANNELS[s]
    name = _CHANNEL_NAMES.get(" ".join(fold(s).lower().split()))
    if name:
        return name
    raise ValueError(f"unknown channel {s!r} (1/trực tiếp, 2/trực tuyến, 3/bưu chính công ích)")


def _bool(value: Any) -> bool:
    return fold(str(value or "")).strip().lower() in ("1", "true", "x", "yes", "co", "có")


def _rows_from_file(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Rows as dicts and the line number of the first data row."""
    data = path.read_bytes()
    if not data.strip():
        raise RegistryFileError("empty file")
    suffix = path.suffix.lower()
    if suffix == ".xlsx" or data[:4] == b"PK\x03\x04":
        import openpyxl

        try:
            wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as e:
            raise RegistryFileError(f"cannot read the XLSX file: {e}") from e
        ws = wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        header = next(it, None)
        if not header:
            raise RegistryFileError("empty file (no header row)")
        names = [str(h or "") for h in header]
        rows = [dict(zip(names, r, strict=False)) for r in it if any(c not in (None, "") for c in r)]
        return rows, 2
    text, _enc = decode(data)
    if suffix == ".json" or text.lstrip().startswith(("[", "{")):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise RegistryFileError(f"invalid JSON: {e}") from e
        if isinstance(obj, dict):
            obj = next((v for k, v in obj.items() if isinstance(v, list)), None)
        if not isinstance(obj, list) or not all(isinstance(r, dict) for r in obj):
            raise RegistryFileError("JSON must be a list of dossier objects (or an object holding one)")
        return obj, 1
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    return list(reader), 2


def map_columns(names: Iterable[str]) -> dict[str, str]:
    by_key = {_key(n): n for n in names if n}
    out: dict[str, str] = {}
    for field, aliases in COLUMNS.items():
        for a in aliases:
            if _key(a) in by_key:
                out[field] = by_key[_key(a)]
                break
    return out


def parse_rows(
    rows: list[dict[str, Any]], code_pattern: str, first_line: int = 2
) -> tuple[list[DossierRecord], list[tuple[int, str]]]:
    if not rows:
        raise RegistryFileError("the file has a header but no dossier rows")
    names = list(rows[0].keys())
    cols = map_columns(names)
    missing = [COLUMNS[f][0] for f in REQUIRED_COLUMNS if f not in cols]
    if missing:
        raise RegistryFileError(
            f"missing required column(s) {', '.join(missing)}; found: {', '.join(str(n) for n in names)}"
        )
    records: list[DossierRecord] = []
    errors: list[tuple[int, str]] = []
    first_seen: dict[str, int] = {}  # code -> line of its first row in this file
    for i, row in enumerate(rows):
        line = first_line + i

        def get(f: str, row: dict[str, Any] = row) -> Any:
            c = cols.get(f)
            v = row.get(c) if c else None
            return nfc(v).strip() if isinstance(v, str) else v

        try:
            code = str(get("code") or "")
            if not re.fullmatch(code_pattern, code, re.ASCII):
                raise ValueError(f"malformed dossier code {code!r}")
            if code in first_seen:  # never "last wins" silently: both lines are named, the first row is kept
                raise ValueError(duplicate_message(code, line, first_seen[code]))
            received = parse_date(get("received"))
            if not received:
                raise ValueError("NgayTiepNhan (received date) is empty")
            resolved = parse_date(get("resolved"))
            if resolved and resolved < received:
                raise ValueError(f"NgayCoKetQua {resolved} is before NgayTiepNhan {received}")
            req = get("required")
            required = tuple(x.strip() for x in re.split(r"[;|\n]", str(req)) if x.strip()) if req else ()
            records.append(
                DossierRecord(
                    code=code,
                    procedure=str(get("procedure") or ""),
                    procedure_name=str(get("procedure_name") or ""),
                    field_code=str(get("field_code") or ""),
                    field_name=str(get("field_name") or ""),
                    channel=parse_channel(get("channel")),
                    received=received,
                    due=parse_date(get("due")),
                    resolved=resolved,
                    status=str(get("status") or ""),
                    unit=str(get("unit") or ""),
                    level=str(get("level") or ""),
                    no_result=_bool(get("no_result")),
                    required=required,
                    signed=_bool(get("signed")),
                )  # fmt: skip
            )
            first_seen[code] = line
        except ValueError as e:
            errors.append((line, str(e)))
    return records, errors


def read_registry(path: Path, code_pattern: str) -> tuple[list[DossierRecord], list[tuple[int, str]]]:
    rows, first = _rows_from_file(path)
    return parse_rows(rows, code_pattern, first)
