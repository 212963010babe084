"""The manager's pages: the digitization-rate report (QĐ 766) with server-drawn SVG charts, the drill-down to
the undigitized dossiers, and the registry import.

Every number comes from the same index calls as the JSON API (``rate_report``/``undigitized`` scoped to the
caller's units, audited the same way); the registry import is ``api.routes.dossiers.registry_import`` itself.
The charts are SVG images (``role="img"``) drawn here; the counts behind every bar are in a table next to each
chart, whose rows link to the drill-down (keyboard users follow those; a click on a bar does the same)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse

from api.deps import C, app_state, audit, require
from api.ui import page, vn_number
from sohoa.auth import Principal
from sohoa.domain import RULES, Line, Period, Report, parse_period

router = APIRouter(include_in_schema=False)

PERIOD_KINDS = [
    ("month", "Tháng"),
    ("quarter", "Quý"),
    ("half", "6 tháng"),
    ("9months", "9 tháng"),
    ("year", "Năm"),
    ("range", "Khoảng ngày"),
]
RULES_VI = {
    "any": "có ít nhất 1 thành phần hồ sơ được số hóa (cách tính của báo cáo QĐ 766 cấp tỉnh)",
    "required": "mọi thành phần bắt buộc của thủ tục đều được số hóa",
}
SIDES_VI = {"input": "đầu vào (thành phần hồ sơ)", "output": "kết quả giải quyết"}
DEFAULT_TARGET = 90.0
UNDIGITIZED_LIMIT = 1000
FORM_LIMIT_MB = 1  # api.app's body limit for form posts other than /registry/import and /documents


# -- the period picker -------------------------------------------------------------------------------------
@dataclass
class Picker:
    """The report form's state: kind of period, year and sub-period, or a date range; rule and target."""

    kind: str
    year: int
    month: int
    quarter: int
    half: int
    date_from: str  # ISO
    date_to: str
    rule: str
    target: float

    def spec(self) -> str:
        return {
            "month": f"month:{self.year}-{self.month:02d}",
            "quarter": f"quarter:{self.year}-Q{self.quarter}",
            "half": f"half:{self.year}-H{self.half}",
            "9months": f"9months:{self.year}",
            "year": f"year:{self.year}",
        }[self.kind]

    def period(self) -> Period:
        if self.kind == "range":
            return parse_period(None, self.date_from or None, self.date_to or None)
        return parse_period(self.spec())

    def api_params(self) -> dict[str, str]:
        """The period and rule as the JSON API takes them (also the drill-down's parameters)."""
        if self.kind == "range":
            return {"date_from": self.date_from, "date_to": self.date_to, "rule": self.rule}
        return {"period": self.spec(), "rule": self.rule}


def _iso_day(value: str) -> str:
    """dd/mm/yyyy or yyyy-mm-dd → yyyy-mm-dd ('' stays ''); anything else is returned as is (refused later)."""
    value = value.strip()
    if not value:
        return ""
    try:
        return datetime.strptime(value, "%d/%m/%Y").date().isoformat()
    except ValueError:
        return value


def _int(value: str | None, default: int, lo: int, hi: int) -> int:
    try:
        n = int(str(value).strip().upper().lstrip("QH"))
    except (TypeError, ValueError):
        return default
    return n if lo <= n <= hi else default


def picker_from(q: Any) -> Picker:
    """The picker from the query string: ``period=quarter:2026-Q3`` (as the API and the drill-down links take it),
    ``date_from``/``date_to``, or the form's ``kind``, ``year``, ``month``, ``quarter``, ``half``."""
    today = date.today()
    rule = q.get("rule") if q.get("rule") in RULES else "any"
    try:
        target = float(str(q.get("target") or DEFAULT_TARGET).replace(",", "."))
    except ValueError:
        target = DEFAULT_TARGET
    if not 0 <= target <= 100:
        target = DEFAULT_TARGET
    pk = Picker(kind="quarter", year=today.year, month=today.month, quarter=(today.month - 1) // 3 + 1,
                half=1 if today.month <= 6 else 2, date_from="", date_to="", rule=rule, target=target)  # fmt: skip
    spec = (q.get("period") or "").strip()
    kind = q.get("kind") or ""
    date_from, date_to = _iso_day(q.get("date_from") or ""), _iso_day(q.get("date_to") or "")
    if spec and kind != "range":
        per = parse_period(spec)  # ValueError with the API's message
        kind, _, rest = per.label.partition(":")
        pk.kind, pk.year = kind, int(rest[:4])
        pk.month, pk.quarter = per.start.month, (per.start.month - 1) // 3 + 1
        pk.half = 1 if per.start.month <= 6 else 2
        return pk
    if kind == "range" or (not kind and (date_from or date_to)):
        pk.kind, pk.date_from, pk.date_to = "range", date_from, date_to
        return pk
    if kind in dict(PERIOD_KINDS):
        pk.kind = kind
    pk.year = _int(q.get("year"), today.year, 2000, 2100)
    pk.month = _int(q.get("month"), pk.month, 1, 12)
    pk.quarter = _int(q.get("quarter"), pk.quarter, 1, 4)
    pk.half = _int(q.get("half"), pk.half, 1, 2)
    return pk


def period_label_vi(per: Period) -> str:
    kind, _, rest = per.label.partition(":")
    span = f"{per.start:%d/%m/%Y} – {per.end:%d/%m/%Y}"
    names = {
        "month": f"Tháng {per.start.month:02d}/{per.start.year}",
        "quarter": f"Quý {rest[-1:]} năm {per.start.year}",
        "half": f"6 tháng {'đầu' if rest.endswith('H1') else 'cuối'} năm {per.start.year}",
        "9months": f"9 tháng năm {per.start.year}",
        "year": f"Năm {per.start.year}",
    }
    return f"{names[kind]} ({span})" if kind in names else f"Từ {span.replace(' – ', ' đến ')}"


# -- charts (SVG drawn here, styled by app.css) ---------------------------------------------------------------
BAR_W, BAR_ROW = 360, 40  # chart width (= the 100 % bar), height of one unit's row (name and value above the bar)


def unit_label(tree: Any, value: str) -> str:
    """A unit value as stored (code or name) → "name (code)" when it is a code of the unit tree."""
    if not value:
        return "(không ghi đơn vị)"
    u = tree.units.get(value)
    return f"{u.name} ({u.code})" if u else value


def _short(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def bar_chart(lines: list[Line], side: str, tree: Any, target: float, href: Any) -> dict[str, Any]:
    """Horizontal bars of one side's rate by unit, highest first (units without dossiers on that side are left
    out), the dashed target line and the gridlines; every row carries its counts and its drill-down link."""
    rows = []
    for ln in lines:
        total, done = (ln.received, ln.received_digitized) if side == "input" else (ln.resolved, ln.resolved_digitized)
        if not total:
            continue
        rate = ln.input_rate if side == "input" else ln.output_rate
        assert rate is not None
        rows.append({"key": ln.key, "label": unit_label(tree, ln.key), "total": total, "done": done,
                     "missing": total - done, "rate": rate, "href": href(side, ln.key)})  # fmt: skip
    rows.sort(key=lambda r: (-r["rate"], r["label"]))
    for i, r in enumerate(rows):
        r["y"] = 28 + i * BAR_ROW
        r["w"] = round(BAR_W * r["rate"] / 100, 1)
        r["low"] = r["rate"] < target
        r["short"] = _short(r["label"])
        r["text"] = f"{vn_number(r['rate'], 1)} % ({vn_number(r['done'])}/{vn_number(r['total'])})"
    height = 28 + len(rows) * BAR_ROW + 8
    ticks = [{"x": round(BAR_W * t / 100, 1), "label": f"{t} %"} for t in (0, 25, 50, 75, 100)]
    return {"rows": rows, "height": height, "width": BAR_W, "ticks": ticks,
            "target_x": round(BAR_W * target / 100, 1)}  # fmt: skip


def _months(per: Period) -> list[str]:
    out: list[str] = []
    y, m = per.start.year, per.start.month
    while (y, m) <= (per.end.year, per.end.month) and len(out) < 120:
        out.append(f"{y}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def trend_chart(rep: Report, target: float) -> dict[str, Any]:
    """The two rates month by month (every month of the period; gaps where a month has no dossiers)."""
    by_month = {ln.key: ln for ln in rep.breakdowns.get("month", [])}
    months = _months(rep.period)
    if len(months) > 36:  # long ranges: only the months that hold dossiers
        months = [m for m in months if m in by_month]
    left, right, top, plot_h = 44, 16, 16, 170
    width = max(360, left + right + 44 * len(months))
    step = (width - left - right) / max(len(months), 1)
    rows: list[dict[str, Any]] = []
    for i, mo in enumerate(months):
        ln = by_month.get(mo, Line(mo))
        rows.append({"month": mo, "label": f"{mo[5:]}/{mo[:4]}", "x": round(left + step * (i + 0.5), 1), "line": ln,
                     "in": ln.input_rate, "out": ln.output_rate})  # fmt: skip

    def y(rate: float) -> float:
        return round(top + plot_h * (1 - rate / 100), 1)

    def runs(key: str) -> list[str]:
        """Polyline point lists of consecutive months that have a rate (a month without dossiers breaks the line)."""
        out: list[str] = []
        cur: list[str] = []
        for r in rows:
            if r[key] is None:
                if cur:
                    out.append(" ".join(cur))
                cur = []
            else:
                cur.append(f"{r['x']},{y(r[key])}")
        if cur:
            out.append(" ".join(cur))
        return out

    for r in rows:
        r["y_in"] = y(r["in"]) if r["in"] is not None else None
        r["y_out"] = y(r["out"]) if r["out"] is not None else None
    grid = [{"y": y(t), "label": f"{t} %"} for t in (0, 25, 50, 75, 100)]
    return {"rows": rows, "width": width, "height": top + plot_h + 34, "left": left, "right": width - right,
            "base": top + plot_h, "grid": grid, "target_y": y(target), "in_runs": runs("in"),
            "out_runs": runs("out")}  # fmt: skip


# -- registry messages -----------------------------------------------------------------------------------------
# ingest.registry_file reports bad rows and files in English (its CLI and JSON API callers read them); the page
# shows them in Vietnamese. A message that matches none of these is shown as it is (e.g. the scope refusals of
# api.routes.dossiers, already in Vietnamese).
REGISTRY_MESSAGES_VI = [
    (r"bad date '(.*)' \(use .*\)", "ngày không hợp lệ «{0}» (cần dạng dd/mm/yyyy)"),
    (r"day is out of range for month", "ngày không có trong tháng (ví dụ 31/02)"),
    (r"month must be in 1\.\.12", "tháng phải từ 1 đến 12"),
    (r"year (-?\d+) is out of range", "năm {0} không hợp lệ"),
    (
        r"unknown channel '(.*)' \(.*\)",
        "kênh thực hiện không rõ «{0}» (1/trực tiếp, 2/trực tuyến, 3/bưu chính công ích)",
    ),
    (r"malformed dossier code '(.*)'", "mã hồ sơ sai dạng «{0}»"),
    (r"NgayTiepNhan \(received date\) is empty", "thiếu ngày tiếp nhận (NgayTiepNhan)"),
    (r"NgayCoKetQua (\S+) is before NgayTiepNhan (\S+)", "ngày có kết quả {0} trước ngày tiếp nhận {1}"),
    (r"empty file \(no header row\)", "tệp không có dòng tiêu đề"),
    (r"empty file", "tệp rỗng"),
    (
        r"cannot decode the file as UTF-8 or Windows-1258.*",
        "không đọc được bảng mã của tệp (cần UTF-8 hoặc Windows-1258)",
    ),
    (r"cannot read the XLSX file.*", "không đọc được tệp XLSX"),
    (r"invalid JSON: (.*)", "JSON không hợp lệ: {0}"),
    (r"JSON must be a list of dossier objects.*", "JSON phải là danh sách các hồ sơ"),
    (r"the file has a header but no dossier rows", "tệp chỉ có dòng tiêu đề, không có hồ sơ nào"),
    (r"missing required column\(s\) (.*); found: (.*)", "thiếu cột bắt buộc {0}; các cột trong tệp: {1}"),
]


def registry_message_vi(message: str) -> str:
    import re

    from api.ui import vn_date

    for pattern, vi in REGISTRY_MESSAGES_VI:
        m = re.fullmatch(pattern, message.strip(), re.S)
        if m:
            return vi.format(*(vn_date(g) if re.fullmatch(r"\d{4}-\d\d-\d\d", g) else g for g in m.groups()))
    return message


# -- pages -----------------------------------------------------------------------------------------------------
def _error_text(e: Exception) -> str:
    if isinstance(e, HTTPException):
        return e.detail["message"] if isinstance(e.detail, dict) else str(e.detail)
    return str(e)


@router.get("/reports", response_class=HTMLResponse)
def report_page(request: Request, p: Principal = Depends(require("reports.read", html=True))) -> HTMLResponse:
    q = request.query_params
    try:
        pk = picker_from(q)
        per = pk.period()
    except ValueError as e:
        pk = picker_from({k: v for k, v in q.items() if k not in ("period", "date_from", "date_to", "kind")})
        return page(request, p, "report.html", status_code=422, pk=pk, kinds=PERIOD_KINDS, rules=RULES_VI,
                    rep=None, flash=str(e), flash_kind="bad", years=_years(pk))  # fmt: skip
    rep = C(request).index.rate_report(per, pk.rule, units=p.scope)
    audit(request, p, "report.read", target=rep.period.label,
          details={"rule": pk.rule, "format": "html", "by": "unit"})  # fmt: skip
    tree = app_state(request).auth.units()
    base = pk.api_params()

    def drill(side: str, unit: str) -> str:
        return "/reports/undigitized?" + urlencode({**base, "side": side, "unit": unit, "target": f"{pk.target:g}"})

    units = rep.breakdowns.get("unit", [])
    downloads = {
        "xlsx": "/reports/digitization?" + urlencode({**base, "format": "xlsx"}),
        "csv_unit": "/reports/digitization?" + urlencode({**base, "format": "csv", "by": "unit"}),
        "csv_month": "/reports/digitization?" + urlencode({**base, "format": "csv", "by": "month"}),
        "json": "/reports/digitization?" + urlencode(base),
    }
    return page(
        request, p, "report.html", pk=pk, kinds=PERIOD_KINDS, rules=RULES_VI, rep=rep, years=_years(pk),
        period_vi=period_label_vi(rep.period), rule_vi=RULES_VI[pk.rule],
        bars_in=bar_chart(units, "input", tree, pk.target, drill),
        bars_out=bar_chart(units, "output", tree, pk.target, drill),
        trend=trend_chart(rep, pk.target), downloads=downloads,
        drill_all={"input": drill("input", ""), "output": drill("output", "")},
    )  # fmt: skip


def _years(pk: Picker) -> list[int]:
    this = date.today().year
    return sorted({*range(this - 5, this + 2), pk.year}, reverse=True)


def _unit_scope(p: Principal, unit: str) -> tuple[str, ...] | None:
    """The drill-down's unit filter inside the caller's scope: one unit value the caller sees, or nothing at all
    (an empty tuple matches no row) for a unit outside it — never an error that would tell it exists."""
    if not unit:
        return p.scope
    return (unit,) if p.sees_unit(unit) else ()


@router.get("/reports/undigitized", response_class=HTMLResponse)
def undigitized_page(
    request: Request,
    side: str = "input",
    unit: str = "",
    p: Principal = Depends(require("reports.read", html=True)),
) -> HTMLResponse:
    side = side if side in SIDES_VI else "input"
    unit = unit.strip()[:200]
    try:
        pk = picker_from(request.query_params)
        per = pk.period()
    except ValueError as e:
        raise HTTPException(422, {"message": str(e)}) from None
    rows = C(request).index.undigitized(per, pk.rule, side, UNDIGITIZED_LIMIT, units=_unit_scope(p, unit))
    audit(request, p, "report.undigitized", target=per.label,
          details={"rule": pk.rule, "side": side, "unit": unit, "count": len(rows)})  # fmt: skip
    tree = app_state(request).auth.units()
    for r in rows:
        r["unit_label"] = unit_label(tree, r["unit"])
        if side == "output":
            r["missing"] = ["kết quả giải quyết chưa được số hóa"]
        elif r["missing_components"]:
            r["missing"] = list(r["missing_components"])
        else:
            r["missing"] = ["chưa có thành phần hồ sơ nào được số hóa"]
    back = "/reports?" + urlencode({**pk.api_params(), "target": f"{pk.target:g}"})
    other = "/reports/undigitized?" + urlencode({**pk.api_params(), "side": "output" if side == "input" else "input",
                                                 "unit": unit, "target": f"{pk.target:g}"})  # fmt: skip
    return page(request, p, "report_undigitized.html", rows=rows, side=side, side_vi=SIDES_VI[side],
                unit=unit, unit_vi=unit_label(tree, unit) if unit else "", period_vi=period_label_vi(per),
                rule_vi=RULES_VI[pk.rule], pk=pk, back=back, other=other, capped=len(rows) >= UNDIGITIZED_LIMIT,
                limit=UNDIGITIZED_LIMIT, api="/reports/digitization/undigitized?" + urlencode(
                    {**pk.api_params(), "side": side}))  # fmt: skip


@router.get("/registry", response_class=HTMLResponse)
def registry_page(request: Request, p: Principal = Depends(require("registry.write", html=True))) -> HTMLResponse:
    return page(request, p, "registry.html", result=None, max_mb=FORM_LIMIT_MB)


@router.post("/registry", response_class=HTMLResponse)
def registry_post(
    request: Request,
    file: Annotated[UploadFile | None, File()] = None,
    strict: Annotated[bool, Form()] = False,
    p: Principal = Depends(require("registry.write")),
) -> HTMLResponse:
    """The same import as ``POST /registry/import`` (scope check, strict mode, audit), shown as a page."""
    from api.routes.dossiers import registry_import

    def answer(status: int = 200, **ctx: Any) -> HTMLResponse:
        return page(request, p, "registry.html", status_code=status, strict=strict, max_mb=FORM_LIMIT_MB, **ctx)

    if file is None or not file.filename:
        return answer(422, result=None, flash="Chưa chọn tệp sổ đăng ký (CSV, XLSX hoặc JSON).", flash_kind="bad")
    name = file.filename
    try:
        result = registry_import(request, file=file, strict=strict, p=p)
    except HTTPException as e:
        msg = registry_message_vi(_error_text(e))
        return answer(e.status_code, result=None, flash=f"Không đọc được tệp {name}: {msg}", flash_kind="bad")
    for err in result["errors"]:
        err["message"] = registry_message_vi(err["message"])
    n = len(result["errors"])
    if result["refused"]:
        flash = f"Tệp {name} có {n} dòng lỗi: không nhập dòng nào (chế độ nghiêm ngặt)."
    elif n:
        flash = f"Đã nhập tệp {name}; {n} dòng lỗi không được nhập (xem bảng bên dưới)."
    else:
        flash = f"Đã nhập tệp {name}."
    return answer(result=result, filename=name, flash=flash, flash_kind="bad" if n else "ok")
