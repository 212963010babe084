"""Digitization-rate reporting: registry import, report tables, CSV/XLSX and national-portal exports."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from index import IndexBackend
from ingest.registry_file import read_registry
from sohoa.domain import DIMENSIONS, RULES, ImportResult, Line, Report
from sohoa.models import Kind, Status
from sohoa.registry import Registry

DIMENSION_HEADERS = {
    "total": "Tổng",
    "unit": "Đơn vị",
    "level": "Cấp",
    "field": "Lĩnh vực",
    "procedure": "Thủ tục (mã TTHC)",
    "channel": "Kênh",
    "month": "Tháng",
}
COLUMN_HEADERS = [
    "Số hồ sơ tiếp nhận",
    "Số hồ sơ có thành phần số hóa",
    "Tỷ lệ số hóa đầu vào (%)",
    "Số hồ sơ đã giải quyết",
    "Số hồ sơ có kết quả số hóa",
    "Tỷ lệ số hóa kết quả (%)",
]


def import_registry(index: Registry, path: Path, code_pattern: str, strict: bool = False) -> ImportResult:
    """Import a CSV/XLSX/JSON registry file; bad rows are reported by line, the rest imports (unless *strict*).
    The import is stored in the object store before it is applied (when the registry has a journal)."""
    records, errors = read_registry(path, code_pattern)
    if errors and strict:
        return ImportResult(errors=errors, refused=True)
    res = index.upsert_dossiers(records, source=path.name)
    res.errors = errors
    return res


def rules_line(report: Report) -> str:
    """What the report counts, stated with it: the rule and the digitization parameters it was made with."""
    params = f"min_confidence={report.min_confidence:g}, require_signature={int(report.require_signature)}"
    return f"Quy tắc: {report.rule} — {RULES[report.rule]}; số hóa = {report.rules.describe()} ({params})"


def _cells(line: Line) -> list[Any]:
    return [line.received, line.received_digitized, line.input_rate, line.resolved, line.resolved_digitized,
            line.output_rate]  # fmt: skip


def table(report: Report, by: str = "total") -> tuple[list[str], list[list[Any]]]:
    headers = [DIMENSION_HEADERS[by], *COLUMN_HEADERS]
    lines = [report.total] if by == "total" else report.breakdowns[by]
    return headers, [[ln.key or "(trống)", *_cells(ln)] for ln in lines]


def to_csv(report: Report, by: str = "total") -> str:
    headers, rows = table(report, by)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([f"Kỳ báo cáo: {report.period.label}", rules_line(report)])
    w.writerow(headers)
    w.writerows(rows)
    return "\ufeff" + buf.getvalue()  # BOM so that Excel opens UTF-8 Vietnamese correctly


def to_xlsx(report: Report) -> bytes:
    import openpyxl
    from openpyxl.styles import Font

    wb = openpyxl.Workbook()
    first = True
    for by in ("total", *DIMENSIONS):
        ws = wb.active if first else wb.create_sheet()
        assert ws is not None
        first = False
        ws.title = DIMENSION_HEADERS[by][:31]
        ws.append([f"Kỳ báo cáo: {report.period.label} ({report.period.start} – {report.period.end})"])
        ws.append([rules_line(report)])
        headers, rows = table(report, by)
        ws.append(headers)
        for cell in ws[3]:
            cell.font = Font(bold=True)
        for r in rows:
            ws.append(r)
        for col, width in zip("ABCDEFG", (34, 18, 26, 22, 22, 26, 22), strict=False):
            ws.column_dimensions[col].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def portal_export(index: IndexBackend, units: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """One object per registered dossier in the national portal's field names; *units*: the caller's scope
    (registry rows and scans of those units only, see :mod:`index.base`; None = every unit)."""
    out = []
    for rec, flags in index.registry(units=units):
        docs = [d for d in index.list_documents(dossier_code=rec.code, units=units) if d.status == Status.DONE.value]
        components = [
            {"TenThanhPhan": d.component or d.filename, "DuocSoHoa": 1, "DuocTaiSuDung": 0,
             "DuongDanTep": f"documents/{d.id}/out/document.pdf"}
            for d in docs if d.kind == Kind.INPUT.value
        ]  # fmt: skip
        have = {c["TenThanhPhan"] for c in components}
        components += [{"TenThanhPhan": r, "DuocSoHoa": 0, "DuocTaiSuDung": 0, "DuongDanTep": ""}
                       for r in rec.required if r not in have]  # fmt: skip
        results = [{"MaGiayToKetQua": d.id, "DuongDanTep": f"documents/{d.id}/out/document.pdf"}
                   for d in docs if d.kind == Kind.OUTPUT.value]  # fmt: skip
        out.append(
            {
                "MaHoSo": rec.code,
                "MaTTHC": rec.procedure,
                "MaLinhVuc": rec.field_code,
                "KenhThucHien": rec.channel,
                "NgayTiepNhan": rec.received,
                "NgayCoKetQua": rec.resolved,
                "TrangThaiHoSo": rec.status,
                "DonViXuLy": rec.unit,
                "HoSoCoThanhPhanSoHoa": int(flags.has_input),
                "ThanhPhanHoSo": components,
                "KetQuaSoHoa": int(flags.has_output or rec.no_result),
                "KetQua": results,
            }  # fmt: skip
        )
    return out
