"""ONE contract suite for the unit scope of every index query, on SQLite and Elasticsearch.

A matrix of documents and registry rows in unit A (also spelled with other case and spacing), in unit B and
its sub-unit, in two other units (one whose name starts like A's) and with an empty unit. Callers scoped to
A, to B (+ sub-unit), to nothing (``()``) and unrestricted (``None``) must each see exactly their rows in
search (total, hits, pages), list_documents, dossier, registry, unregistered, rate_report (rules any and
required, every breakdown), undigitized and portal_export; both backends give identical numbers.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from index import SearchIndex, open_index
from index.rates import DossierRecord, Period, parse_period
from sohoa.models import DocRecord, PageText, SearchQuery
from sohoa.reports import portal_export

A = "UBND xã A"
A_SPELLED = "ubnd  XÃ a "  # the same unit after NFC, collapsing whitespace and ignoring case
A1 = "UBND xã A1"  # another unit whose name starts with A's: never in A's scope
B = "UBND xã B"
B_SUB = "Thôn B1"  # a sub-unit of B
C = "UBND xã C"
# dossiers per unit value ("" = a row without unit: visible only to unrestricted callers)
ROWS = {A: 6, A_SPELLED: 2, A1: 2, B: 5, B_SUB: 3, C: 4, "": 3}
SCOPE_A = ("UBND xã A", "XA")  # name and code, as the caller's unit tree resolves them
SCOPE_B = ("UBND xã B", "XB", "Thôn B1", "XB1")  # B and its sub-unit
SCOPES: dict[str, tuple[str, ...] | None] = {"A": SCOPE_A, "B": SCOPE_B, "all": None, "none": ()}
# dossiers and unregistered scan codes each caller must see (counted by hand from ROWS)
N_DOSSIERS = {"A": 8, "B": 8, "all": 25, "none": 0}

PROCS = {  # procedure: (field, required components, no result document)
    "1.001": ("Đất đai", ("Đơn đề nghị", "Giấy tờ đất")),
    "1.002": ("Hộ tịch", ("Tờ khai",)),
    "1.003": ("Đầu tư", ()),
}
CHANNELS = ["trực tiếp", "trực tuyến", "bưu chính công ích"]
Q = "ho so dat dai"
TEXT = "Hồ sơ đất đai số {i} trang {n}"


def _key(unit: str) -> str:
    return " ".join(unicodedata.normalize("NFC", unit).split()).casefold()


def visible(unit: str, scope: tuple[str, ...] | None) -> bool:
    """The scope rule, written out independently of the backends."""
    if scope is None:
        return True
    return _key(unit) != "" and _key(unit) in {_key(s) for s in scope}


class Data:
    def __init__(self) -> None:
        self.recs: list[DossierRecord] = []
        self.docs: list[DocRecord] = []
        self.pages: dict[str, int] = {}  # doc id -> indexed pages
        self.unregistered: dict[str, str] = {}  # code -> unit of its scan
        i = 0
        for unit, n in ROWS.items():
            for _ in range(n):
                self._dossier(i, unit)
                i += 1
        # scans whose registry row has not arrived yet, one per unit value
        for k, unit in enumerate(ROWS):
            code = f"000.00.06.H56-260801-9{k:03d}"
            self.unregistered[code] = unit
            self._doc(f"u{k}", code, "input", "Tờ khai", unit, "done", 1, i + k)
        # a scan with an empty unit inside a dossier of A: visible only to unrestricted callers
        self._doc("a0-extra", self.recs[0].code, "input", "Bản sao", "", "done", 2, 99)

    def _dossier(self, i: int, unit: str) -> None:
        proc = list(PROCS)[i % 3]
        fld, required = PROCS[proc]
        received = date(2026, 6, 20) + timedelta(days=(i * 11) % 100)  # June 20 .. Sept 27
        resolved = received + timedelta(days=(i % 4) * 9) if i % 3 != 2 else None
        code = f"000.00.06.H56-{received:%y%m%d}-{i:04d}"
        self.recs.append(
            DossierRecord(
                code=code, procedure=proc, procedure_name=f"Thủ tục {proc}", field_code=proc, field_name=fld,
                channel=CHANNELS[i % 3], received=received.isoformat(),
                resolved=resolved.isoformat() if resolved else "", unit=unit, level="xã",
                no_result=proc == "1.003", required=required,
            )
        )  # fmt: skip
        comps = required or ("Đơn",)
        pattern = i % 4
        if pattern == 0:  # every required component digitized
            for c in comps:
                self._doc(f"{i}-{c}", code, "input", c, unit, "done", 1 + i % 3, i)
        elif pattern == 1:  # only a component that is not required: counts for rule any, not required
            self._doc(f"{i}-khac", code, "input", "Bản sao khác", unit, "done", 2, i)
        elif pattern == 3:  # scanned, OCR not finished
            self._doc(f"{i}-{comps[0]}", code, "input", comps[0], unit, "processing", 0, i)
        if resolved and i % 2 == 0:
            self._doc(f"{i}-kq", code, "output", "Kết quả", unit, "done", 1, i)

    def _doc(self, i: str, code: str, kind: str, comp: str, unit: str, status: str, pages: int, day: int) -> None:
        received = (date(2026, 6, 1) + timedelta(days=day % 120)).isoformat()
        self.docs.append(
            DocRecord(id=f"d{i}", dossier_code=code, kind=kind, component=comp, unit=unit, filename=f"{i}.pdf",
                      status=status, received_at=f"{received}T08:00:00.000+00:00", sha256=f"sha-{i}",
                      page_count=pages, mean_confidence=90.0 if status == "done" else None)
        )  # fmt: skip
        self.pages[f"d{i}"] = pages

    def load(self, ix: SearchIndex) -> None:
        half = len(self.docs) // 2  # half the scans arrive before their registry rows, half after
        for d in self.docs[:half]:
            self._put(ix, d)
        ix.upsert_dossiers(self.recs)
        for d in self.docs[half:]:
            self._put(ix, d)

    def _put(self, ix: SearchIndex, d: DocRecord) -> None:
        n = self.pages[d.id]
        if n:
            ix.replace_pages(d, [PageText(p, TEXT.format(i=d.id, n=p)) for p in range(1, n + 1)])
        else:
            ix.upsert_document(d)

    # -- the expected answers ------------------------------------------------------------------------
    def unit_of(self, doc_id: str) -> str:
        return next(d.unit for d in self.docs if d.id == doc_id)

    def page_hits(self, scope: tuple[str, ...] | None) -> set[tuple[str, int]]:
        return {(d.id, p) for d in self.docs if visible(d.unit, scope) for p in range(1, self.pages[d.id] + 1)}

    def doc_ids(self, scope: tuple[str, ...] | None) -> list[str]:
        docs = sorted((d for d in self.docs if visible(d.unit, scope)), key=lambda d: (d.received_at, d.id))
        return [d.id for d in docs]

    def codes(self, scope: tuple[str, ...] | None) -> list[str]:
        return sorted(r.code for r in self.recs if visible(r.unit, scope))

    def flags(self, r: DossierRecord) -> tuple[bool, bool, bool]:
        done = [d for d in self.docs if d.dossier_code == r.code and d.status == "done"]
        comps = {d.component for d in done if d.kind == "input"}
        has_in = bool(comps)
        req_ok = has_in and set(r.required) <= comps
        return has_in, req_ok, r.no_result or any(d.kind == "output" for d in done)

    def report(self, p: Period, rule: str, scope: tuple[str, ...] | None) -> dict[str, dict[str, list[int]]]:
        out: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0, 0]))
        a, b = p.start.isoformat(), p.end.isoformat()
        for r in self.recs:
            if not visible(r.unit, scope):
                continue
            has_in, req_ok, out_ok = self.flags(r)
            keys = {"total": "total", "unit": r.unit, "level": r.level, "field": r.field_name,
                    "procedure": r.procedure, "channel": r.channel}  # fmt: skip
            if a <= r.received <= b:
                for dim, k in {**keys, "month": r.received[:7]}.items():
                    out[dim][k][0] += 1
                    out[dim][k][1] += int(req_ok if rule == "required" else has_in)
            if r.resolved and a <= r.resolved <= b:
                for dim, k in {**keys, "month": r.resolved[:7]}.items():
                    out[dim][k][2] += 1
                    out[dim][k][3] += int(out_ok)
        return out

    def undigitized(self, p: Period, rule: str, side: str, scope: tuple[str, ...] | None) -> list[str]:
        a, b = p.start.isoformat(), p.end.isoformat()
        out = []
        for r in self.recs:
            has_in, req_ok, out_ok = self.flags(r)
            if not visible(r.unit, scope):
                continue
            if side == "input" and a <= r.received <= b and not (req_ok if rule == "required" else has_in):
                out.append(r.code)
            if side == "output" and r.resolved and a <= r.resolved <= b and not out_ok:
                out.append(r.code)
        return sorted(out)


DATA = Data()


@pytest.fixture(scope="module")
def indexes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Both backends, each loaded once with the matrix (the tests only read)."""
    sq = open_index(f"sqlite:///{tmp_path_factory.mktemp('scope') / 'index.sqlite3'}")
    es = open_index(request.getfixturevalue("es_url"), es_prefix=f"scope-{uuid.uuid4().hex[:10]}")
    out = {"sqlite": sq, "es": es}
    for ix in out.values():
        DATA.load(ix)
        ix.refresh()
    yield out
    es.drop()  # type: ignore[attr-defined]
    for ix in out.values():
        ix.close()


@pytest.fixture(params=["sqlite", "es"])
def ix(request: pytest.FixtureRequest, indexes: dict[str, SearchIndex]) -> SearchIndex:
    return indexes[request.param]


PERIODS = ["quarter:2026-Q3", "year:2026", "month:2026-08", "2026-07-10..2026-09-20"]


def _period(spec: str) -> Period:
    return parse_period(None, *spec.split("..")) if ".." in spec else parse_period(spec)


def _report_numbers(rep: Any) -> dict[str, dict[str, list[int]]]:
    t = rep.total
    out = {"total": {"total": [t.received, t.received_digitized, t.resolved, t.resolved_digitized]}}
    for dim, lines in rep.breakdowns.items():
        out[dim] = {ln.key: [ln.received, ln.received_digitized, ln.resolved, ln.resolved_digitized] for ln in lines}
    return out


def _expected_numbers(p: Period, rule: str, scope: tuple[str, ...] | None) -> dict[str, dict[str, list[int]]]:
    exp = DATA.report(p, rule, scope)
    out = {"total": dict(exp["total"]) or {"total": [0, 0, 0, 0]}}
    for dim in ("unit", "level", "field", "procedure", "channel", "month"):
        out[dim] = dict(exp[dim])
    return out


# -- the matrix itself is what the tests below assume ----------------------------------------------
def test_matrix_counts() -> None:
    assert {name: len(DATA.codes(s)) for name, s in SCOPES.items()} == N_DOSSIERS
    assert {name: len(DATA.page_hits(s)) for name, s in SCOPES.items()} == {"A": 13, "B": 13, "all": 46, "none": 0}
    assert {name: len(DATA.doc_ids(s)) for name, s in SCOPES.items()} == {"A": 12, "B": 12, "all": 39, "none": 0}
    assert visible(A_SPELLED, SCOPE_A) and not visible(A1, SCOPE_A) and not visible("", SCOPE_A)


# -- search ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scope", list(SCOPES))
def test_search_total_hits_and_pages(ix: SearchIndex, scope: str) -> None:
    units = SCOPES[scope]
    expected = DATA.page_hits(units)
    seen: list[tuple[str, int]] = []
    for page in range(1, 40):
        res = ix.search(SearchQuery(q=Q, units=units, page=page, size=3))
        assert res.total == len(expected), (scope, page)
        if not res.hits:
            break
        assert len(res.hits) == min(3, len(expected) - 3 * (page - 1))
        assert all(visible(h.unit, units) for h in res.hits)
        seen += [(h.document_id, h.page) for h in res.hits]
    assert sorted(seen) == sorted(expected)  # every page of the scoped result, each hit once


def test_search_page_two_of_a_scoped_result(ix: SearchIndex) -> None:
    everything = ix.search(SearchQuery(q=Q, size=100))
    total_a = len(DATA.page_hits(SCOPE_A))
    assert everything.total == len(DATA.page_hits(None)) > total_a
    p1 = ix.search(SearchQuery(q=Q, units=SCOPE_A, page=1, size=4))
    p2 = ix.search(SearchQuery(q=Q, units=SCOPE_A, page=2, size=4))
    assert p1.total == p2.total == total_a == 13
    assert len(p2.hits) == 4 and p2.page == 2
    ids1 = {(h.document_id, h.page) for h in p1.hits}
    ids2 = {(h.document_id, h.page) for h in p2.hits}
    assert not ids1 & ids2
    assert {_key(h.unit) for h in p1.hits + p2.hits} == {_key(A)}
    # a filter on top of the scope: narrower, never wider
    only_kq = ix.search(SearchQuery(q=Q, units=SCOPE_A, kind="output", size=100))
    assert only_kq.total == sum(1 for d, _ in DATA.page_hits(SCOPE_A) if d.endswith("-kq")) > 0
    assert ix.search(SearchQuery(q=Q, units=SCOPE_A, unit=B, size=100)).total == 0


def test_search_scope_normalisation(ix: SearchIndex) -> None:
    nfd_upper = (unicodedata.normalize("NFD", " UBND   XÃ A\u00a0"),)
    assert ix.search(SearchQuery(q=Q, units=nfd_upper, size=100)).total == len(DATA.page_hits(SCOPE_A))
    assert ix.search(SearchQuery(q=Q, units=("UBND xã",), size=100)).total == 0  # no prefix matching
    assert ix.search(SearchQuery(q=Q, units=(A1,), size=100)).total == len(DATA.page_hits((A1,))) > 0
    # the empty unit is never in a scope, whatever the caller passes
    assert ix.search(SearchQuery(q=Q, units=("", " "), size=100)).total == 0
    empty_unit_pages = sum(n for d, n in DATA.pages.items() if DATA.unit_of(d) == "")
    assert empty_unit_pages > 0
    assert ix.search(SearchQuery(q=Q, size=100)).total == 46


# -- documents ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("scope", list(SCOPES))
def test_list_documents(ix: SearchIndex, scope: str) -> None:
    units = SCOPES[scope]
    expected = DATA.doc_ids(units)
    got = ix.list_documents(units=units)
    assert [d.id for d in got] == expected
    assert all(visible(d.unit, units) for d in got)
    # the limit applies to the scoped rows (filtered in the query, not afterwards)
    assert [d.id for d in ix.list_documents(units=units, limit=3)] == expected[:3]
    done = [i for i in expected if next(d for d in DATA.docs if d.id == i).status == "done"]
    assert [d.id for d in ix.list_documents(statuses=["done"], units=units)] == done


def test_list_documents_counts(ix: SearchIndex) -> None:
    n = {name: len(ix.list_documents(units=s)) for name, s in SCOPES.items()}
    assert n == {name: len(DATA.doc_ids(s)) for name, s in SCOPES.items()}
    assert n["none"] == 0 and n["all"] == len(DATA.docs) > n["A"] + n["B"] > 0
    # the dossier's unit does not matter, the document's does
    assert ix.list_documents(dossier_code=DATA.recs[0].code, units=(B,)) == []


def test_dossier(ix: SearchIndex) -> None:
    code = DATA.recs[0].code  # a dossier of A with one more scan that has no unit
    a_docs = sorted(d.id for d in DATA.docs if d.dossier_code == code and d.unit == A)
    assert len(a_docs) == 3  # two input components and the result
    assert sorted(d.id for d in ix.dossier(code).documents) == sorted([*a_docs, "da0-extra"])
    scoped = ix.dossier(code, units=SCOPE_A)
    assert sorted(d.id for d in scoped.documents) == a_docs and scoped.input_digitized
    assert ix.dossier(code, units=SCOPE_B).documents == []
    assert ix.dossier(code, units=()).documents == []
    b_code = next(r.code for r in DATA.recs if r.unit == B_SUB and any(d.dossier_code == r.code for d in DATA.docs))
    n = len(ix.dossier(b_code).documents)
    assert n > 0 and len(ix.dossier(b_code, units=SCOPE_B).documents) == n  # the sub-unit's scans
    assert ix.dossier(b_code, units=SCOPE_A).documents == []


# -- registry ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("scope", list(SCOPES))
def test_registry(ix: SearchIndex, scope: str) -> None:
    units = SCOPES[scope]
    rows = list(ix.registry(units=units))
    assert [r.code for r, _ in rows] == DATA.codes(units)
    assert len(rows) == N_DOSSIERS[scope]
    for rec, flags in rows:
        assert (flags.has_input, flags.required_ok, flags.has_output or rec.no_result) == DATA.flags(rec)


@pytest.mark.parametrize("scope", list(SCOPES))
def test_unregistered(ix: SearchIndex, scope: str) -> None:
    units = SCOPES[scope]
    expected = sorted(c for c, u in DATA.unregistered.items() if visible(u, units))
    assert ix.unregistered(units=units) == expected
    assert len(expected) == {"A": 2, "B": 2, "all": len(ROWS), "none": 0}[scope]


# -- the QĐ 766 report -------------------------------------------------------------------------------
@pytest.mark.parametrize("rule", ["any", "required"])
@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("scope", list(SCOPES))
def test_rate_report(ix: SearchIndex, scope: str, period: str, rule: str) -> None:
    units = SCOPES[scope]
    p = _period(period)
    rep = ix.rate_report(p, rule, units=units)
    assert rep.rule == rule
    assert _report_numbers(rep) == _expected_numbers(p, rule, units)


def test_rate_report_by_unit(ix: SearchIndex) -> None:
    q3 = parse_period("quarter:2026-Q3")
    for rule in ("any", "required"):
        full = ix.rate_report(q3, rule)
        a = ix.rate_report(q3, rule, units=SCOPE_A)
        b = ix.rate_report(q3, rule, units=SCOPE_B)
        assert {ln.key for ln in a.breakdowns["unit"]} == {A, A_SPELLED}
        assert {ln.key for ln in b.breakdowns["unit"]} == {B, B_SUB}
        by_unit = {ln.key: ln for ln in full.breakdowns["unit"]}
        for scoped in (a, b):
            lines = scoped.breakdowns["unit"]
            assert all(ln == by_unit[ln.key] for ln in lines)  # the same lines as the unrestricted report's
            assert scoped.total.received == sum(ln.received for ln in lines)
            assert scoped.total.resolved_digitized == sum(ln.resolved_digitized for ln in lines)
        # A and B together are less than everything: A1, C and the empty unit are outside both
        assert 0 < a.total.received + b.total.received < full.total.received
        assert "" in by_unit and A1 in by_unit and C in by_unit
        none = ix.rate_report(q3, rule, units=())
        assert none.total.received == none.total.resolved == 0
        assert all(lines == [] for lines in none.breakdowns.values())


# [received, received digitized, resolved, resolved digitized], worked out by hand from the matrix
FIXED = {
    ("quarter:2026-Q3", "any"): {"A": [7, 3, 4, 2], "B": [7, 4, 5, 3], "all": [22, 12, 13, 7], "none": [0, 0, 0, 0]},
    ("quarter:2026-Q3", "required"): {"A": [7, 2, 4, 2], "B": [7, 3, 5, 3], "all": [22, 8, 13, 7],
                                      "none": [0, 0, 0, 0]},
    ("year:2026", "any"): {"A": [8, 4, 6, 3], "B": [8, 4, 5, 3], "all": [25, 13, 17, 9], "none": [0, 0, 0, 0]},
    ("year:2026", "required"): {"A": [8, 3, 6, 3], "B": [8, 3, 5, 3], "all": [25, 9, 17, 9], "none": [0, 0, 0, 0]},
}  # fmt: skip


@pytest.mark.parametrize("case", list(FIXED))
def test_rate_report_fixed_numbers(ix: SearchIndex, case: tuple[str, str]) -> None:
    """Whole months: unrestricted, SQLite reads its per-month table; scoped, it counts over the covering index."""
    period, rule = case
    got = {name: ix.rate_report(_period(period), rule, units=s).total for name, s in SCOPES.items()}
    numbers = {k: [t.received, t.received_digitized, t.resolved, t.resolved_digitized] for k, t in got.items()}
    assert numbers == FIXED[case]
    assert {k: _expected_numbers(_period(period), rule, s)["total"]["total"] for k, s in SCOPES.items()} == numbers


@pytest.mark.parametrize("side", ["input", "output"])
@pytest.mark.parametrize("rule", ["any", "required"])
@pytest.mark.parametrize("scope", list(SCOPES))
def test_undigitized(ix: SearchIndex, scope: str, rule: str, side: str) -> None:
    units = SCOPES[scope]
    p = parse_period("year:2026")
    rows = ix.undigitized(p, rule, side, limit=1000, units=units)
    expected = DATA.undigitized(p, rule, side, units)
    assert sorted(r["code"] for r in rows) == expected
    assert all(visible(r["unit"], units) for r in rows)
    if scope in ("A", "B", "all") and side == "input":
        assert expected
    # the limit applies to the scoped rows
    assert len(ix.undigitized(p, rule, side, limit=2, units=units)) == min(2, len(expected))


# -- portal export -----------------------------------------------------------------------------------
@pytest.mark.parametrize("scope", list(SCOPES))
def test_portal_export(ix: SearchIndex, scope: str) -> None:
    units = SCOPES[scope]
    data = portal_export(ix, units=units)
    assert [d["MaHoSo"] for d in data] == DATA.codes(units)
    assert len(data) == N_DOSSIERS[scope]
    assert all(visible(d["DonViXuLy"], units) for d in data)
    files = {c["DuongDanTep"] for d in data for c in d["ThanhPhanHoSo"] if c["DuongDanTep"]}
    files |= {k["DuongDanTep"] for d in data for k in d["KetQua"]}
    for f in files:
        assert visible(DATA.unit_of(f.split("/")[1]), units), f
    first = DATA.recs[0].code  # A's dossier with a scan without unit
    extra = "documents/da0-extra/out/document.pdf"
    if scope == "all":
        assert extra in files
    if scope == "A":
        assert first in [d["MaHoSo"] for d in data] and extra not in files


# -- both backends, side by side ---------------------------------------------------------------------
@pytest.mark.parametrize("scope", list(SCOPES))
def test_backends_agree(indexes: dict[str, SearchIndex], scope: str) -> None:
    units = SCOPES[scope]
    sq, es = indexes["sqlite"], indexes["es"]
    for period in PERIODS:
        for rule in ("any", "required"):
            p = _period(period)
            assert sq.rate_report(p, rule, units=units).to_dict() == es.rate_report(p, rule, units=units).to_dict()
            for side in ("input", "output"):
                assert sq.undigitized(p, rule, side, units=units) == es.undigitized(p, rule, side, units=units)
    s1, s2 = (ix.search(SearchQuery(q=Q, units=units, size=100)) for ix in (sq, es))
    assert s1.total == s2.total
    assert sorted((h.document_id, h.page) for h in s1.hits) == sorted((h.document_id, h.page) for h in s2.hits)
    assert [d.id for d in sq.list_documents(units=units)] == [d.id for d in es.list_documents(units=units)]
    assert list(sq.registry(units=units)) == list(es.registry(units=units))
    assert sq.unregistered(units=units) == es.unregistered(units=units)
    assert portal_export(sq, units=units) == portal_export(es, units=units)


def test_unscoped_calls_are_unchanged(ix: SearchIndex) -> None:
    """Callers that pass nothing see every row, exactly as before the scope existed."""
    assert len(ix.list_documents()) == len(DATA.docs)
    assert [r.code for r, _ in ix.registry()] == DATA.codes(None)
    assert ix.unregistered() == sorted(DATA.unregistered)
    assert ix.search(SearchQuery(q=Q, size=100)).total == len(DATA.page_hits(None))
    q3 = parse_period("quarter:2026-Q3")
    assert _report_numbers(ix.rate_report(q3)) == _report_numbers(ix.rate_report(q3, units=None))
    assert len(portal_export(ix)) == len(DATA.recs)


# -- an empty index, and a SQLite database from before the scope ------------------------------------
def test_scoped_calls_on_an_empty_index(index: SearchIndex) -> None:
    empty = index  # conftest's fresh index on each backend
    q3 = parse_period("quarter:2026-Q3")
    for units in (SCOPE_A, ()):
        assert empty.search(SearchQuery(q=Q, units=units)).total == 0
        assert empty.list_documents(units=units) == [] and list(empty.registry(units=units)) == []
        assert empty.unregistered(units=units) == [] and empty.undigitized(q3, units=units) == []
        assert _report_numbers(empty.rate_report(q3, units=units))["total"]["total"] == [0, 0, 0, 0]
    # the first rows of a unit are visible at once
    d = next(d for d in DATA.docs if d.unit == A_SPELLED and DATA.pages[d.id])
    empty.replace_pages(d, [PageText(1, "hồ sơ đất đai")])
    empty.upsert_dossiers([r for r in DATA.recs if r.code == d.dossier_code])
    empty.refresh()
    assert empty.search(SearchQuery(q=Q, units=SCOPE_A)).total == 1
    assert [x.id for x in empty.list_documents(units=SCOPE_A)] == [d.id]
    assert [r.code for r, _ in empty.registry(units=SCOPE_A)] == [d.dossier_code]
    assert list(empty.registry(units=SCOPE_B)) == []


def test_sqlite_database_from_before_the_scope(tmp_path: Path) -> None:
    """A database written before ``unit_values`` existed learns its stored unit values when opened."""
    path = tmp_path / "index.sqlite3"
    old = open_index(f"sqlite:///{path}")
    DATA.load(old)
    conn = old._conn()  # type: ignore[attr-defined]
    for trigger in ("documents_unit_ins", "documents_unit_upd", "dossiers_unit_ins", "dossiers_unit_upd"):
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.execute("DROP TABLE unit_values")
    old.close()
    ix = open_index(f"sqlite:///{path}")
    try:
        assert [d.id for d in ix.list_documents(units=SCOPE_B)] == DATA.doc_ids(SCOPE_B)
        assert [r.code for r, _ in ix.registry(units=SCOPE_A)] == DATA.codes(SCOPE_A)
        q3 = parse_period("quarter:2026-Q3")
        assert _report_numbers(ix.rate_report(q3, units=SCOPE_A)) == _expected_numbers(q3, "any", SCOPE_A)
    finally:
        ix.close()
