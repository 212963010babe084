"""The dossier registry (the denominator of the digitization rate) and the QĐ 766 rate report.

Each backend keeps one row per registered dossier with denormalised digitization flags that are
maintained whenever a document of the dossier changes and whenever the registry row arrives:

* ``has_input``     ≥ 1 digitized input component (rule ``any``);
* ``required_ok``   every required component of the procedure digitized (rule ``required``;
  a procedure without a required-components list falls back to ``any``);
* ``has_output``    a digitized result; ``no_result`` marks procedures that produce no result
  document (they count as digitized).

"Digitized" = the document's OCR is done and stored (``status == done``), and when
``SOHOA_DIGITIZED_MIN_CONFIDENCE`` > 0 its mean OCR confidence is at least that.
Reports count the dossiers of the period grouped by (unit, level, field, procedure, channel,
month) in the backend (SQL ``GROUP BY`` or ES aggregations).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from sohoa.models import DocRecord, Kind, Status
from sohoa.text import fold, nfc

CHANNELS = {"1": "trực tiếp", "2": "trực tuyến", "3": "bưu chính công ích"}
DIMENSIONS = ("unit", "level", "field", "procedure", "channel", "month")


@dataclass
class DossierRecord:
    code: str  # MaHoSo
    procedure: str = ""  # MaTTHC
    procedure_name: str = ""  # TenTTHC
    field_code: str = ""  # MaLinhVuc
    field_name: str = ""  # TenLinhVuc
    channel: str = ""  # KenhThucHien (normalised name)
    received: str = ""  # NgayTiepNhan, ISO date
    due: str = ""  # NgayHenTra
    resolved: str = ""  # NgayCoKetQua ('' = not resolved)
    status: str = ""  # TrangThaiHoSo
    unit: str = ""  # DonViXuLy / MaDonVi
    level: str = ""  # cấp (data, never a fixed list)
    no_result: bool = False
    required: tuple[str, ...] = ()
    signed: bool = False  # DaKySo: the importer says the scans were digitally signed (NĐ 107/2021)

    def key(self) -> tuple[Any, ...]:
        return tuple(asdict(self).values())


@dataclass
class Flags:
    has_input: bool = False
    required_ok: bool = False
    has_output: bool = False
    components: tuple[str, ...] = ()


def component_key(name: str) -> str:
    return " ".join(fold(nfc(name)).lower().split())


# -- unit scope --------------------------------------------------------------------------------------
# A caller may be scoped to a set of administrative units: ``units=None`` = every unit (no filter);
# ``units=(...)`` = only rows whose ``unit`` equals one of these values after NFC, collapsing whitespace
# and case folding (:func:`unit_key`); an empty tuple matches nothing and a row with an empty unit is
# visible only to unrestricted callers. Both backends resolve the allowed keys to the unit values actually
# stored (a handful of distinct values: SQLite's ``unit_values`` table kept by triggers, an ES ``terms``
# aggregation) and filter on those IN the query (SQL ``unit IN (...)``, ES ``terms`` filter), so totals,
# pages and report counts stay exact and the existing covering indexes still serve the reports.
def unit_key(value: str) -> str:
    """Comparison form of a unit value: NFC, whitespace collapsed and trimmed, case folded."""
    return nfc(" ".join(nfc(value).split()).casefold())


def scope_keys(units: Iterable[str]) -> list[str]:
    """The comparison keys of a scope, without the empty one (an empty unit is never in scope), sorted."""
    if isinstance(units, str):  # one value given bare: never its characters
        units = (units,)
    return sorted({k for k in map(unit_key, units) if k})


def scope_values(stored: Iterable[str], units: Iterable[str]) -> list[str]:
    """The distinct *stored* unit values a caller scoped to *units* may see (never the empty unit), sorted."""
    keys = set(scope_keys(units))
    return sorted({v for v in stored if v and unit_key(v) in keys})


def is_digitized(doc: DocRecord, min_confidence: float = 0.0) -> bool:
    if doc.status != Status.DONE.value:
        return False
    return not (min_confidence > 0 and (doc.mean_confidence or 0.0) < min_confidence)


def compute_flags(
    docs: Iterable[DocRecord], required: Iterable[str], min_confidence: float = 0.0, unsigned: bool = False
) -> Flags:
    """Digitization flags of one dossier. *unsigned*: signatures are required and this dossier's are missing,
    so no input component counts (the result document is not affected)."""
    digitized = [d for d in docs if is_digitized(d, min_confidence)]
    comps = sorted({d.component for d in digitized if d.kind == Kind.INPUT.value and d.component})
    has_input = not unsigned and any(d.kind == Kind.INPUT.value for d in digitized)
    req = {component_key(r) for r in required if r.strip()}
    have = {component_key(c) for c in comps}
    required_ok = has_input if not req else has_input and req <= have
    has_output = any(d.kind == Kind.OUTPUT.value for d in digitized)
    return Flags(has_input, required_ok, has_output, tuple(comps))


# -- periods ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    label: str


def _month_end(y: int, m: int) -> date:
    return date(y, m, calendar.monthrange(y, m)[1])


def parse_period(spec: str | None = None, date_from: str | None = None, date_to: str | None = None) -> Period:
    """``month:2026-07``, ``quarter:2026-Q3``, ``half:2026-H1``, ``9months:2026``, ``year:2026``, or from/to."""
    if date_from or date_to:
        if not (date_from and date_to):
            raise ValueError("cần cả ngày bắt đầu và ngày kết thúc (give both date_from and date_to)")
        try:
            a, b = date.fromisoformat(date_from), date.fromisoformat(date_to)
        except ValueError:
            raise ValueError(
                f"ngày không hợp lệ {date_from!r}..{date_to!r}: cần dạng YYYY-MM-DD (invalid date)"
            ) from None
        if b < a:
            raise ValueError("ngày kết thúc trước ngày bắt đầu (date_to is before date_from)")
        return Period(a, b, f"{a.isoformat()}..{b.isoformat()}")
    if not spec:
        y = date.today().year
        return Period(date(y, 1, 1), date(y, 12, 31), f"year:{y}")
    m = re.fullmatch(r"(month|quarter|half|6months|9months|year):(\d{4})(?:-(Q[1-4]|H[12]|\d{1,2}))?", spec.strip())
    if m:
        kind, y, sub = m.group(1), int(m.group(2)), m.group(3)
        if kind == "month" and sub and sub.isdigit() and 1 <= int(sub) <= 12:
            mm = int(sub)
            return Period(date(y, mm, 1), _month_end(y, mm), f"month:{y}-{mm:02d}")
        if kind == "quarter" and sub and sub.startswith("Q"):
            q = int(sub[1])
            return Period(date(y, 3 * q - 2, 1), _month_end(y, 3 * q), f"quarter:{y}-Q{q}")
        if kind in ("half", "6months") and (sub is None or sub.startswith("H")):
            h = int(sub[1]) if sub else 1
            return Period(date(y, 6 * h - 5, 1), _month_end(y, 6 * h), f"half:{y}-H{h}")
        if kind == "9months" and sub is None:
            return Period(date(y, 1, 1), date(y, 9, 30), f"9months:{y}")
        if kind == "year" and sub is None:
            return Period(date(y, 1, 1), date(y, 12, 31), f"year:{y}")
    raise ValueError(
        f"kỳ báo cáo không hợp lệ {spec!r} (bad period): dùng month:2026-07, quarter:2026-Q3, half:2026-H1, "
        "9months:2026, year:2026"
    )


def period_bounds(p: Period) -> tuple[str, str]:
    """Half-open ISO bounds [start, end + 1 day) for string comparison of ISO dates."""
    return p.start.isoformat(), (p.end + timedelta(days=1)).isoformat()


# -- report ----------------------------------------------------------------------------------------
@dataclass
class GroupRow:
    """Counts for one (unit, level, field, procedure, channel, month) group, from the backend."""

    unit: str
    level: str
    field: str
    procedure: str
    channel: str
    month: str
    count: int
    digitized: int


@dataclass
class Line:
    key: str
    received: int = 0
    received_digitized: int = 0
    resolved: int = 0
    resolved_digitized: int = 0

    @property
    def input_rate(self) -> float | None:
        return round(100 * self.received_digitized / self.received, 2) if self.received else None

    @property
    def output_rate(self) -> float | None:
        return round(100 * self.resolved_digitized / self.resolved, 2) if self.resolved else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_rate"] = self.input_rate
        d["output_rate"] = self.output_rate
        return d


RULES = {
    "any": "input: ≥ 1 digitized component (as provincial QĐ 766 reports count)",
    "required": "input: every required component of the procedure digitized",
}


@dataclass
class Report:
    period: Period
    rule: str
    min_confidence: float
    total: Line
    breakdowns: dict[str, list[Line]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": {"label": self.period.label, "from": self.period.start.isoformat(),
                       "to": self.period.end.isoformat()},
            "rule": self.rule,
            "rule_description": RULES[self.rule],
            "digitized_means": "OCR done and stored"
            + (f", mean confidence ≥ {self.min_confidence}" if self.min_confidence else ""),
            "total": self.total.to_dict(),
            "breakdowns": {k: [ln.to_dict() for ln in v] for k, v in self.breakdowns.items()},
        }  # fmt: skip


def roll_up(period: Period, rule: str, min_conf: float, received: list[GroupRow], resolved: list[GroupRow]) -> Report:
    total = Line("total")
    by: dict[str, dict[str, Line]] = {d: {} for d in DIMENSIONS}
    for rows, side in ((received, "received"), (resolved, "resolved")):
        for r in rows:
            for line in [total] + [by[d].setdefault(getattr(r, d), Line(getattr(r, d))) for d in DIMENSIONS]:
                setattr(line, side, getattr(line, side) + r.count)
                setattr(line, f"{side}_digitized", getattr(line, f"{side}_digitized") + r.digitized)
    breakdowns = {d: sorted(v.values(), key=lambda ln: ln.key) for d, v in by.items()}
    return Report(period, rule, min_conf, total, breakdowns)


@dataclass
class ImportResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    refused: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged,
            "refused": self.refused, "errors": [{"line": n, "message": m} for n, m in self.errors],
        }  # fmt: skip
