"""ONE contract suite for the registry and the QĐ 766 rate report, on SQLite and Elasticsearch.

A generated registry with a known set of digitized components and results; every rate and
breakdown must equal the value computed independently here, for both rules and both backends.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from index import SearchIndex, open_index
from index.rates import DossierRecord, parse_period
from sohoa.models import DocRecord

UNITS = [("UBND xã Quảng Định", "xã"), ("UBND phường Đông Sơn", "xã"), ("Sở Tài nguyên và Môi trường", "tỉnh")]
FIELDS = ["Đất đai", "Hộ tịch", "Đầu tư"]
CHANNELS = ["trực tiếp", "trực tuyến", "bưu chính công ích"]
PROCS = {  # code: (field, required components, no result document)
    "1.001": ("Đất đai", ("Đơn đăng ký", "Giấy chứng nhận"), False),
    "1.002": ("Hộ tịch", ("Tờ khai",), False),
    "1.003": ("Đầu tư", (), True),
    "1.004": ("Hộ tịch", ("Tờ khai", "Giấy tờ tùy thân"), False),
}


def build(seed: int = 7, n: int = 1200) -> tuple[list[DossierRecord], list[DocRecord]]:
    rnd = random.Random(seed)
    recs: list[DossierRecord] = []
    docs: list[DocRecord] = []
    start = date(2026, 1, 1)
    for i in range(n):
        proc = rnd.choice(list(PROCS))
        field, required, no_result = PROCS[proc]
        unit, level = rnd.choice(UNITS)
        received = start + timedelta(days=rnd.randrange(0, 365))
        if i % 97 == 0:
            received = date(2026, 9, 30)  # last day of Q3 …
        resolved = received + timedelta(days=rnd.randrange(0, 40)) if rnd.random() < 0.8 else None
        if i % 97 == 0:
            resolved = date(2026, 10, 1)  # … resolved on the first day of Q4
        code = f"000.00.06.H56-{received:%y%m%d}-{i:04d}"
        recs.append(DossierRecord(
            code=code, procedure=proc, procedure_name=f"Thủ tục {proc}", field_code=field[:3], field_name=field,
            channel=rnd.choice(CHANNELS), received=received.isoformat(),
            resolved=resolved.isoformat() if resolved else "", unit=unit, level=level,
            no_result=no_result, required=required, signed=i % 3 != 0,
        ))  # fmt: skip
        for comp in (*required, "Bản sao khác"):
            if rnd.random() < 0.6:
                status = "done" if rnd.random() < 0.9 else rnd.choice(["processing", "failed"])
                docs.append(_doc(f"{i}-{len(docs)}", code, "input", comp, status, rnd.uniform(50, 99)))
        if resolved and rnd.random() < 0.7:
            docs.append(_doc(f"{i}-r", code, "output", "Kết quả", "done", rnd.uniform(50, 99)))
    return recs, docs


def _doc(i: str, code: str, kind: str, comp: str, status: str, conf: float) -> DocRecord:
    return DocRecord(id=f"d{i}", dossier_code=code, kind=kind, component=comp, unit="", filename="x.pdf",
                     status=status, received_at="2026-01-01T00:00:00.000+00:00", sha256=i, page_count=1,
                     mean_confidence=round(conf, 1))  # fmt: skip


def expected(
    recs: list[DossierRecord],
    docs: list[DocRecord],
    a: date,
    b: date,
    rule: str,
    min_conf: float = 0.0,
    require_signature: bool = False,
):
    done = defaultdict(list)
    for d in docs:
        if d.status == "done" and (d.mean_confidence or 0) >= min_conf:
            done[d.dossier_code].append(d)
    out: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0, 0]))
    for r in recs:
        ds = done[r.code]
        comps = {d.component for d in ds if d.kind == "input"} if r.signed or not require_signature else set()
        has_in = bool(comps)
        ok_in = has_in if not r.required else set(r.required) <= comps
        dig_in = ok_in if rule == "required" else has_in
        dig_out = r.no_result or any(d.kind == "output" for d in ds)
        keys = {"total": "total", "unit": r.unit, "level": r.level, "field": r.field_name, "procedure": r.procedure,
                "channel": r.channel}  # fmt: skip
        if a.isoformat() <= r.received <= b.isoformat():
            for dim, k in {**keys, "month": r.received[:7]}.items():
                out[dim][k][0] += 1
                out[dim][k][1] += int(dig_in)
        if r.resolved and a.isoformat() <= r.resolved <= b.isoformat():
            for dim, k in {**keys, "month": r.resolved[:7]}.items():
                out[dim][k][2] += 1
                out[dim][k][3] += int(dig_out)
    return out


def _open(request: pytest.FixtureRequest, folder: Path) -> SearchIndex:
    if request.param == "sqlite":
        return open_index(f"sqlite:///{folder / 'index.sqlite3'}")
    return open_index(request.getfixturevalue("es_url"), es_prefix=f"rep-{uuid.uuid4().hex[:10]}")


def _close(request: pytest.FixtureRequest, ix: SearchIndex) -> None:
    if request.param == "es":
        ix.drop()  # type: ignore[attr-defined]
    ix.close()


@pytest.fixture(params=["sqlite", "es"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchIndex]:
    ix = _open(request, tmp_path)
    yield ix
    _close(request, ix)


@pytest.fixture(scope="module")
def data() -> tuple[list[DossierRecord], list[DocRecord]]:
    return build()


@pytest.fixture(scope="module", params=["sqlite", "es"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, data) -> Iterator[SearchIndex]:
    """One index per backend loaded once with the generated registry, for the read-only tests."""
    ix = _open(request, tmp_path_factory.mktemp("rates"))
    load(ix, *data)
    yield ix
    _close(request, ix)


def load(index: SearchIndex, recs: list[DossierRecord], docs: list[DocRecord]) -> None:
    # most scans arrive before their registry rows (unregistered, then linked), the rest after
    split = len(docs) - 40
    for d in docs[:split]:
        index.upsert_document(d)
    index.upsert_dossiers(recs)
    for d in docs[split:]:
        index.upsert_document(d)


@pytest.mark.parametrize("rule", ["any", "required"])
@pytest.mark.parametrize(
    "period", ["quarter:2026-Q3", "year:2026", "month:2026-10", "2026-02-15..2026-05-10", "2026-03-03..2026-03-20"]
)
def test_rates_and_breakdowns(loaded: SearchIndex, data, rule: str, period: str) -> None:
    recs, docs = data
    p = parse_period(None, *period.split("..")) if ".." in period else parse_period(period)
    rep = loaded.rate_report(p, rule)
    exp = expected(recs, docs, p.start, p.end, rule)
    t = rep.total
    assert [t.received, t.received_digitized, t.resolved, t.resolved_digitized] == exp["total"]["total"]
    for dim, lines in rep.breakdowns.items():
        got = {ln.key: [ln.received, ln.received_digitized, ln.resolved, ln.resolved_digitized] for ln in lines}
        assert got == dict(exp[dim]), dim
    assert rep.rule == rule


def test_boundaries_unregistered_reimport_and_drilldown(index: SearchIndex) -> None:
    recs, docs = build(seed=5, n=300)
    load(index, recs, docs)
    q3, q4 = parse_period("quarter:2026-Q3"), parse_period("quarter:2026-Q4")
    edge = [r for r in recs if r.received == "2026-09-30" and r.resolved == "2026-10-01"]
    assert edge
    # received on the last day of Q3 counts in Q3's input, resolved on the first day of Q4 in Q4's output
    e3, e4 = expected(recs, docs, q3.start, q3.end, "any"), expected(recs, docs, q4.start, q4.end, "any")
    assert index.rate_report(q3).total.received == e3["total"]["total"][0]
    assert index.rate_report(q4).total.resolved == e4["total"]["total"][2]
    # unregistered scan, then linked when its registry row arrives
    orphan = "000.00.06.H56-261201-9999"
    index.upsert_document(_doc("orphan", orphan, "input", "Tờ khai", "done", 90))
    assert orphan in index.unregistered()
    res = index.upsert_dossiers([DossierRecord(code=orphan, procedure="1.002", received="2026-12-01", unit="X",
                                               required=("Tờ khai",))])  # fmt: skip
    assert res.inserted == 1 and orphan not in index.unregistered()
    rec = index.dossier_record(orphan)
    assert rec is not None and rec[1].has_input and rec[1].required_ok
    # re-import is idempotent; a changed record updates
    again = index.upsert_dossiers(recs)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, len(recs))
    changed = DossierRecord(**{**recs[0].__dict__, "status": "Đã trả kết quả"})
    assert index.upsert_dossiers([changed]).updated == 1
    # drill-down: exactly the undigitized dossiers of the period
    und = index.undigitized(q3, "required", "input", limit=10_000)
    exp_codes = sorted(
        r.code for r in recs if q3.start.isoformat() <= r.received <= q3.end.isoformat()
        and not _ok_required(r, docs)
    )  # fmt: skip
    assert sorted(u["code"] for u in und) == exp_codes
    assert all(u["missing_components"] or not u["has_input"] for u in und)


def _ok_required(r: DossierRecord, docs: list[DocRecord]) -> bool:
    comps = {d.component for d in docs if d.dossier_code == r.code and d.status == "done" and d.kind == "input"}
    return bool(comps) and (not r.required or set(r.required) <= comps)


def test_confidence_threshold(index: SearchIndex) -> None:
    recs, docs = build(seed=3, n=300)
    index.digitized_min_confidence = 80.0
    load(index, recs, docs)
    p = parse_period("year:2026")
    exp = expected(recs, docs, p.start, p.end, "any", min_conf=80.0)
    t = index.rate_report(p).total
    assert [t.received, t.received_digitized, t.resolved, t.resolved_digitized] == exp["total"]["total"]


def test_signature_required(index: SearchIndex) -> None:
    recs, docs = build(seed=4, n=300)
    index.digitized_require_signature = True
    load(index, recs, docs)
    p = parse_period("year:2026")
    for rule in ("any", "required"):
        exp = expected(recs, docs, p.start, p.end, rule, require_signature=True)
        t = index.rate_report(p, rule).total
        assert [t.received, t.received_digitized, t.resolved, t.resolved_digitized] == exp["total"]["total"]
    assert exp["total"]["total"][1] < expected(recs, docs, p.start, p.end, "required")["total"]["total"][1]
