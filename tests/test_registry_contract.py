"""ONE contract suite for the registry interface (:class:`sohoa.registry.Registry`) on SQLite and Elasticsearch.

* the interface is narrow and apart from search;
* digitization rules are report parameters: every combination of rule × confidence threshold × signature gives
  the independently computed numbers on both backends, is stated in the report, and changes no stored data;
* imports are stored in the object store and replayed into an emptied registry with identical reports;
* dates with an offset or ``Z`` count on their date in Vietnam; duplicate codes in one file are errors naming
  both lines, with the same counts on both backends.
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_rates_contract import build, expected, load

from index import IndexBackend, SearchIndex, open_index
from ingest.registry_file import parse_date, parse_rows
from sohoa.domain import DossierRecord, parse_period
from sohoa.registry import Registry, RegistryJournal
from sohoa.reports import to_csv
from storage import open_store

CODE_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.]{0,39}-\d{6}-\d{4,6}$"


def _open(kind: str, folder: Path, es_url: str | None) -> IndexBackend:
    if kind == "sqlite":
        return open_index(f"sqlite:///{folder / 'index.sqlite3'}")
    assert es_url
    return open_index(es_url, es_prefix=f"reg-{uuid.uuid4().hex[:10]}")


@pytest.fixture(params=["sqlite", "es"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexBackend]:
    es = request.getfixturevalue("es_url") if request.param == "es" else None
    ix = _open(request.param, tmp_path, es)
    yield ix
    if request.param == "es":
        ix.drop()  # type: ignore[attr-defined]
    ix.close()


@pytest.fixture(scope="module")
def both(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, IndexBackend]]:
    """Both backends loaded once with the same generated registry and documents (read-only tests)."""
    recs, docs = build(seed=11, n=400)
    out = {"sqlite": _open("sqlite", tmp_path_factory.mktemp("reg"), None),
           "es": _open("es", tmp_path_factory.mktemp("reg"), request.getfixturevalue("es_url"))}  # fmt: skip
    for ix in out.values():
        load(ix, recs, docs)
    yield out
    out["es"].drop()  # type: ignore[attr-defined]
    for ix in out.values():
        ix.close()


def _numbers(rep) -> dict:  # noqa: ANN001
    t = rep.total
    out = {"total": [t.received, t.received_digitized, t.resolved, t.resolved_digitized]}
    for dim, lines in rep.breakdowns.items():
        out[dim] = {ln.key: [ln.received, ln.received_digitized, ln.resolved, ln.resolved_digitized] for ln in lines}
    return out


def _expected_numbers(recs, docs, p, rule, conf, sig) -> dict:  # noqa: ANN001
    exp = expected(recs, docs, p.start, p.end, rule, min_conf=conf, require_signature=sig)
    out = {"total": exp["total"]["total"]}
    for dim in ("unit", "level", "field", "procedure", "channel", "month"):
        out[dim] = dict(exp[dim])
    return out


def test_the_registry_is_its_own_narrow_interface() -> None:
    registry_methods = {n for n, f in inspect.getmembers(Registry) if getattr(f, "__isabstractmethod__", False)}
    search_methods = {n for n, f in inspect.getmembers(SearchIndex) if getattr(f, "__isabstractmethod__", False)}
    assert registry_methods == {"apply_dossiers", "rebuild_flags", "clear_registry", "dossier_record", "registry",
                                "unregistered", "rate_report", "undigitized"}  # fmt: skip
    assert not registry_methods & search_methods and len(search_methods) == 8
    for name in ("upsert_dossiers", "rate_report", "registry", "undigitized", "dossier_record"):
        assert not hasattr(SearchIndex, name), name
    from sohoa import domain

    assert domain.DossierRecord.__module__ == "sohoa.domain" and domain.Report.__module__ == "sohoa.domain"


@pytest.mark.parametrize("sig", [False, True])
@pytest.mark.parametrize("conf", [0.0, 65.0, 80.0])
@pytest.mark.parametrize("rule", ["any", "required"])
@pytest.mark.parametrize("period", ["year:2026", "quarter:2026-Q3", "2026-02-15..2026-05-10"])
def test_rules_are_report_parameters(both: dict[str, IndexBackend], rule: str, conf: float, sig: bool,
                                     period: str) -> None:  # fmt: skip
    recs, docs = build(seed=11, n=400)
    p = parse_period(None, *period.split("..")) if ".." in period else parse_period(period)
    want = _expected_numbers(recs, docs, p, rule, conf, sig)
    for name, ix in both.items():
        rep = ix.rate_report(p, rule, min_confidence=conf, require_signature=sig)
        assert _numbers(rep) == want, (name, rule, conf, sig, period)
        assert (rep.min_confidence, rep.require_signature, rep.rule) == (conf, sig, rule)
        stated = rep.to_dict()
        assert stated["parameters"] == {"rule": rule, "min_confidence": conf, "require_signature": sig}
        if conf:
            assert f"≥ {conf:g}" in stated["digitized_means"]
        if sig:
            assert "DaKySo" in stated["digitized_means"]
        assert f"min_confidence={conf:g}" in to_csv(rep).splitlines()[0]
    # the drill-down follows the same parameters on both backends
    und = [sorted(u["code"] for u in ix.undigitized(p, rule, "input", 10_000, min_confidence=conf,
                                                      require_signature=sig)) for ix in both.values()]  # fmt: skip
    assert und[0] == und[1]
    assert len(und[0]) == want["total"][0] - want["total"][1]


def test_defaults_come_from_settings_and_change_no_stored_data(both: dict[str, IndexBackend]) -> None:
    recs, docs = build(seed=11, n=400)
    p = parse_period("year:2026")
    for ix in both.values():
        before = [(r.key(), f) for r, f in ix.registry(min_confidence=0, require_signature=False)]
        ix.digitized_min_confidence, ix.digitized_require_signature = 80.0, True
        try:
            rep = ix.rate_report(p, "required")  # the defaults, as SOHOA_DIGITIZED_* set them
            assert _numbers(rep) == _expected_numbers(recs, docs, p, "required", 80.0, True)
            assert rep.min_confidence == 80.0 and rep.require_signature
        finally:
            ix.digitized_min_confidence, ix.digitized_require_signature = 0.0, False
        assert [(r.key(), f) for r, f in ix.registry()] == before  # nothing was rewritten
        assert _numbers(ix.rate_report(p, "required")) == _expected_numbers(recs, docs, p, "required", 0, False)


def test_flags_of_one_dossier_follow_the_parameters(both: dict[str, IndexBackend]) -> None:
    recs, docs = build(seed=11, n=400)
    unsigned = next(r for r in recs if not r.signed and any(d.dossier_code == r.code and d.kind == "input"
                                                            and d.status == "done" for d in docs))  # fmt: skip
    for ix in both.values():
        got = ix.dossier_record(unsigned.code)
        assert got is not None and got[1].has_input
        got = ix.dossier_record(unsigned.code, require_signature=True)
        assert got is not None and not got[1].has_input and not got[1].required_ok
        best = max(d.mean_confidence or 0 for d in docs if d.dossier_code == unsigned.code and d.kind == "input"
                   and d.status == "done")  # fmt: skip
        got = ix.dossier_record(unsigned.code, min_confidence=best + 0.01)
        assert got is not None and not got[1].has_input


def test_imports_are_stored_and_replayed_identically(registry: IndexBackend, tmp_path: Path) -> None:
    store = open_store((tmp_path / "objects").as_uri())
    registry.journal = RegistryJournal(store)
    recs, docs = build(seed=5, n=250)
    load(registry, recs[:200], docs)  # first import
    changed = [DossierRecord(**{**r.__dict__, "status": "Đã trả kết quả", "resolved": r.resolved or r.received})
               for r in recs[150:200]]  # fmt: skip
    res = registry.upsert_dossiers(changed + recs[200:], source="second.csv")  # a later import updates 50 rows
    assert (res.inserted, res.updated) == (50, 50)
    keys = [k for k in store.list("registry/")]
    assert len([k for k in keys if k.startswith("registry/imports/")]) == 2 and "registry/current.jsonl.gz" in keys
    p = parse_period("year:2026")
    before = {(rule, sig): _numbers(registry.rate_report(p, rule, require_signature=sig))
              for rule in ("any", "required") for sig in (False, True)}  # fmt: skip
    rows_before = [r.key() for r, _ in registry.registry()]
    registry.clear_registry()
    assert registry.rate_report(p).total.received == 0 and list(registry.registry()) == []
    RegistryJournal(store).replay(registry)
    assert [r.key() for r, _ in registry.registry()] == rows_before
    for (rule, sig), nums in before.items():
        assert _numbers(registry.rate_report(p, rule, require_signature=sig)) == nums
    # replaying again on top is idempotent
    RegistryJournal(store).replay(registry)
    assert [r.key() for r, _ in registry.registry()] == rows_before


def test_replay_without_snapshot_uses_every_import_in_order(registry: IndexBackend, tmp_path: Path) -> None:
    store = open_store((tmp_path / "objects").as_uri())
    registry.journal = RegistryJournal(store)
    rec = DossierRecord(code="000.00.06.H56-260101-0001", procedure="1.1", received="2026-01-01", unit="A")
    registry.upsert_dossiers([rec])
    registry.upsert_dossiers([DossierRecord(**{**rec.__dict__, "unit": "B"})])
    store.delete("registry/current.jsonl.gz")
    registry.clear_registry()
    RegistryJournal(store).replay(registry)
    got = registry.dossier_record(rec.code)
    assert got is not None and got[0].unit == "B"


def test_offset_dates_count_on_their_vietnam_date(registry: IndexBackend) -> None:
    assert parse_date("2026-03-31T17:30:00Z") == "2026-04-01"  # 00:30 on 1 April in Hà Nội
    assert parse_date("2026-03-31T17:30:00+00:00") == "2026-04-01"
    assert parse_date("2026-03-31T23:30:00+07:00") == "2026-03-31"
    assert parse_date("2026-04-01T01:00:00+09:00") == "2026-03-31"  # 23:00 on 31 March in Vietnam
    assert parse_date("2026-03-31T17:30:00") == "2026-03-31"  # naive: local time
    assert parse_date("2026-03-31 23:59") == "2026-03-31"
    assert parse_date("31/03/2026 23:59") == "2026-03-31"
    rows = [{"MaHoSo": "000.00.06.H56-260331-0001", "NgayTiepNhan": "2026-03-31T17:30:00Z"},
            {"MaHoSo": "000.00.06.H56-260331-0002", "NgayTiepNhan": "2026-03-31T10:00:00Z"}]  # fmt: skip
    records, errors = parse_rows(rows, CODE_PATTERN)
    assert errors == []
    registry.upsert_dossiers(records)
    assert registry.rate_report(parse_period("month:2026-04")).total.received == 1
    assert registry.rate_report(parse_period("month:2026-03")).total.received == 1


def test_duplicate_codes_in_one_file_name_both_lines_same_counts(registry: IndexBackend) -> None:
    code = "000.00.06.H56-260105-0007"
    rows = [{"MaHoSo": code, "NgayTiepNhan": "05/01/2026", "DonViXuLy": "A"},
            {"MaHoSo": "000.00.06.H56-260105-0008", "NgayTiepNhan": "05/01/2026"},
            {"MaHoSo": code, "NgayTiepNhan": "06/01/2026", "DonViXuLy": "B"}]  # fmt: skip
    records, errors = parse_rows(rows, CODE_PATTERN)  # lines 2, 3, 4 of a CSV
    assert len(records) == 2 and len(errors) == 1
    line, msg = errors[0]
    assert line == 4 and "line 4" in msg and "line 2" in msg and code in msg
    res = registry.upsert_dossiers(records)
    assert (res.inserted, res.updated, res.unchanged) == (2, 0, 0)
    got = registry.dossier_record(code)
    assert got is not None and got[0].unit == "A"  # the first row is kept, never "last wins" silently
    # records given directly with a repeated code: one row, the repeat reported, the same on both backends
    again = registry.upsert_dossiers([DossierRecord(code=code, received="2026-01-07", unit="C"),
                                      DossierRecord(code=code, received="2026-01-08", unit="D")])  # fmt: skip
    assert (again.inserted, again.updated, again.unchanged, len(again.errors)) == (0, 1, 0, 1)
    got = registry.dossier_record(code)
    assert got is not None and got[0].unit == "C"


def test_old_sqlite_registry_is_migrated_to_report_time_rules(tmp_path: Path) -> None:
    """A database whose flags had the rules baked in (schema 1) is recomputed from its documents on open."""
    import sqlite3

    db = tmp_path / "old.sqlite3"
    ix = open_index(f"sqlite:///{db}")
    recs, docs = build(seed=2, n=120)
    load(ix, recs, docs)
    p = parse_period("year:2026")
    want = _numbers(ix.rate_report(p, "required", min_confidence=70, require_signature=True))
    ix.close()
    conn = sqlite3.connect(db)  # what a schema-1 database looks like: no confidences, user_version 0
    conn.execute("UPDATE dossiers SET has_input = 1, required_ok = 1, in_conf = -1, req_conf = -1, out_conf = -1")
    conn.execute("PRAGMA user_version = 0")
    conn.commit()
    conn.close()
    ix = open_index(f"sqlite:///{db}")
    try:
        assert _numbers(ix.rate_report(p, "required", min_confidence=70, require_signature=True)) == want
        assert json.loads(json.dumps(_numbers(ix.rate_report(p))))  # counters rebuilt and readable
    finally:
        ix.close()
