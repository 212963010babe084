"""Domain records of the dossier registry and the QĐ 766 digitization rate, shared by every layer.

The registry (the denominator) holds one :class:`DossierRecord` per dossier received by the one-stop
centre. Whether a dossier counts as digitized is decided **at report time** from what its documents are
(status and mean OCR confidence) and from the report's parameters (:class:`DigitizedRules`): nothing about
the rules is stored, so changing ``SOHOA_DIGITIZED_MIN_CONFIDENCE`` / ``SOHOA_DIGITIZED_REQUIRE_SIGNATURE``
(the defaults) or passing other values changes the next report and nothing else.

What each backend keeps per dossier is the *best confidence* of what is digitized (:class:`Confidence`):

* ``input``     the highest mean confidence of a done input document (rule ``any``);
* ``required``  the lowest, over the procedure's required components, of the highest confidence of a done
  document of that component (rule ``required``; without a list it equals ``input``);
* ``output``    the highest mean confidence of a done result document;
* ``components`` each input component with its highest confidence.

``-1`` (:data:`NONE`) means nothing done; a done document without a confidence counts as 0. A dossier is
digitized at threshold *t* when the relevant value is ≥ *t* (t = 0: any done document), and when signatures
are required its input counts only if the registry row says ``DaKySo``. A procedure without a result
document (``no_result``) counts as digitized on the output side.
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
NONE = -1.0  # confidence of "nothing digitized"


@dataclass
class DossierRecord:
    code: str  # MaHoSo
    procedure: str = ""  # MaTTHC
    procedure_name: str = ""  # TenTTHC
    field_code: str = ""  # MaLinhVuc
    field_name: str = ""  # TenLinhVuc
    channel: str = ""  # KenhThucHien (normalised name)
    received: str = ""  # NgayTiepNhan, ISO date (Vietnam time)
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

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["required"] = list(self.required)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DossierRecord:
        known = cls.__dataclass_fields__
        rec = cls(**{k: v for k, v in d.items() if k in known})
        rec.required = tuple(rec.required or ())
        rec.no_result, rec.signed = bool(rec.no_result), bool(rec.signed)
        return rec


@dataclass
class Flags:
    """Digitization of one dossier under the rules of one report."""

    has_input: bool = False
    required_ok: bool = False
    has_output: bool = False
    components: tuple[str, ...] = ()


@dataclass(frozen=True)
class DigitizedRules:
    """What "digitized" means in a report: OCR done and stored, and optionally a mean confidence ≥
    ``min_confidence`` and (input side) a signed dossier. Report parameters; defaults from settings."""

    min_confidence: float = 0.0
    require_signature: bool = False

    def describe(self) -> str:
        out = "OCR done and stored"
        if self.min_confidence > 0:
            out += f", mean confidence ≥ {self.min_confidence:g}"
        if self.require_signature:
            out += "; input counted only for dossiers the registry marks signed (DaKySo)"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"min_confidence": self.min_confidence, "require_signature": self.require_signature}

    def with_(self, min_confidence: float | None = None, require_signature: bool | None = None) -> DigitizedRules:
        return DigitizedRules(
            self.min_confidence if min_confidence is None else float(min_confidence),
            self.require_signature if require_signature is None else bool(require_signature),
        )


def component_key(name: str) -> str:
    return " ".join(fold(nfc(name)).lower().split())


@dataclass
class Confidence:
    """The best confidence of what is digitized in one dossier (see the module docstring); -1 = nothing."""

    input: float = NONE
    required: float = NONE
    output: float = NONE
    components: dict[str, float] = field(default_factory=dict)

    def flags(self, rec: DossierRecord | None, rules: DigitizedRules) -> Flags:
        t = max(0.0, rules.min_confidence)
        signed_ok = not rules.require_signature or (rec is not None and rec.signed)
        return Flags(
            has_input=signed_ok and self.input >= t,
            required_ok=signed_ok and self.required >= t,
            has_output=self.output >= t,
            components=tuple(sorted(c for c, v in self.components.items() if v >= t)),
        )


def dossier_confidence(docs: Iterable[DocRecord], required: Iterable[str]) -> Confidence:
    best: dict[str, float] = {}
    inp = out = NONE
    for d in docs:
        if d.status != Status.DONE.value:
            continue
        c = float(d.mean_confidence or 0.0)
        if d.kind == Kind.INPUT.value:
            inp = max(inp, c)
            if d.component:
                best[d.component] = max(best.get(d.component, NONE), c)
        elif d.kind == Kind.OUTPUT.value:
            out = max(out, c)
    req = {component_key(r) for r in required if r.strip()}
    if req:
        by_key: dict[str, float] = {}
        for name, c in best.items():
            k = component_key(name)
            by_key[k] = max(by_key.get(k, NONE), c)
        required_conf = min(by_key.get(k, NONE) for k in req)
    else:
        required_conf = inp
    return Confidence(inp, required_conf, out, best)


def is_digitized(doc: DocRecord, min_confidence: float = 0.0) -> bool:
    if doc.status != Status.DONE.value:
        return False
    return not (min_confidence > 0 and (doc.mean_confidence or 0.0) < min_confidence)


def compute_flags(
    docs: Iterable[DocRecord], required: Iterable[str], min_confidence: float = 0.0, unsigned: bool = False
) -> Flags:
    """Digitization flags of one dossier. *unsigned*: signatures are required and this dossier's are missing,
    so no input component counts (the result document is not affected)."""
    rec = DossierRecord(code="", signed=not unsigned)
    return dossier_confidence(docs, required).flags(rec, DigitizedRules(min_confidence, unsigned))


# -- unit scope --------------------------------------------------------------------------------------
# A caller may be scoped to a set of administrative units: ``units=None`` = every unit (no filter);
# ``units=(...)`` = only rows whose ``unit`` equals one of these values after NFC, collapsing whitespace
# and case folding (:func:`unit_key`); an empty tuple matches nothing and a row with an empty unit is
# visible only to unrestricted callers. Both backends resolve the allowed keys to the unit values actually
# stored and filter on those IN the query, so totals, pages and report counts stay exact.
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
    require_signature: bool = False

    @property
    def rules(self) -> DigitizedRules:
        return DigitizedRules(self.min_confidence, self.require_signature)

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": {"label": self.period.label, "from": self.period.start.isoformat(),
                       "to": self.period.end.isoformat()},
            "rule": self.rule,
            "rule_description": RULES[self.rule],
            "digitized_means": self.rules.describe(),
            "parameters": {"rule": self.rule, **self.rules.to_dict()},
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


def missing_view(rec: DossierRecord, flags: Flags) -> dict[str, Any]:
    """One row of the "not digitized yet" drill-down."""
    have = {component_key(c) for c in flags.components}
    return {
        "code": rec.code, "procedure": rec.procedure, "unit": rec.unit, "field": rec.field_name or rec.field_code,
        "channel": rec.channel, "received": rec.received, "resolved": rec.resolved,
        "has_input": flags.has_input, "has_output": flags.has_output,
        "missing_components": [c for c in rec.required if component_key(c) not in have],
    }  # fmt: skip


def duplicate_message(code: str, line: int, first: int) -> str:
    return (
        f"mã hồ sơ {code} lặp lại: dòng {line} trùng dòng {first}, dòng {line} bị bỏ qua "
        f"(duplicate MaHoSo {code}: line {line} repeats line {first}; line {line} is skipped)"
    )


def dedupe_records(records: Iterable[DossierRecord]) -> tuple[list[DossierRecord], list[tuple[int, str]]]:
    """Records with one row per code (the first kept, compared after NFC); the later ones as errors (line =
    their 1-based position in *records*). Both backends therefore always receive unique codes."""
    seen: dict[str, int] = {}
    out: list[DossierRecord] = []
    errors: list[tuple[int, str]] = []
    for i, r in enumerate(records, 1):
        code = nfc(r.code)
        if code in seen:
            errors.append((i, duplicate_message(code, i, seen[code])))
            continue
        seen[code] = i
        out.append(r)
    return out, errors
