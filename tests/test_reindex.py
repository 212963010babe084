"""The object store holds everything needed to rebuild: delete the index, ``sohoa reindex``, and every report,
search, drill-down and export comes back identical (SQLite and Elasticsearch). Accounts and the audit log
(``auth/``, ``audit/``) are left untouched."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_rates_contract import build

from sohoa.audit import AuditEvent, AuditLog
from sohoa.auth import AuthStore
from sohoa.context import Context, page_key
from sohoa.domain import parse_period
from sohoa.models import Manifest, PageInfo, PageText, SearchQuery, Status
from sohoa.reports import portal_export
from sohoa.settings import Settings


@pytest.fixture(params=["sqlite", "es"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path / "data")
        return
    prefix = f"rx-{uuid.uuid4().hex[:8]}"
    s = Settings(data_dir=tmp_path / "data", index_url=request.getfixturevalue("es_url"), es_index_prefix=prefix)
    yield s
    from index import open_index

    open_index(s.index_url, prefix).drop()  # type: ignore[attr-defined]


def _manifest(d: Any, i: int) -> tuple[Manifest, list[PageText]]:
    m = Manifest(id=f"m{i:05d}", dossier_code=d.dossier_code, kind=d.kind, component=d.component, unit=d.unit,
                 filename=f"{i}.png", media_type="image/png", size=1, sha256=f"{i:064x}",
                 original_key=f"documents/m{i:05d}/original.png", received_at=d.received_at,
                 declared_pages=1)  # fmt: skip
    m.set_status(Status.RECEIVED)
    m.set_status(Status.QUEUED)
    texts: list[PageText] = []
    if d.status == "done":
        m.pages = [PageInfo(1, 300, "L", 10, 10, float(d.mean_confidence), False, 5)]
        texts = [PageText(1, f"Hồ sơ đất đai số {i} của {d.dossier_code}")]
    m.set_status(Status(d.status), "OCR engine crashed" if d.status == "failed" else None)
    return m, texts


def _snapshot(ctx: Context) -> dict[str, Any]:
    reg = ctx.registry
    out: dict[str, Any] = {}
    for period in ("year:2026", "quarter:2026-Q3", "month:2026-10"):
        p = parse_period(period)
        for rule in ("any", "required"):
            for conf, sig in ((0.0, False), (75.0, False), (0.0, True), (75.0, True)):
                rep = reg.rate_report(p, rule, min_confidence=conf, require_signature=sig)
                out[f"{period}/{rule}/{conf}/{sig}"] = rep.to_dict()
                out[f"und/{period}/{rule}/{conf}/{sig}"] = reg.undigitized(p, rule, "input", 10_000,
                                                                           min_confidence=conf, require_signature=sig)
        out[f"und-out/{period}"] = reg.undigitized(p, "any", "output", 10_000)
    out["unregistered"] = reg.unregistered()
    out["registry"] = [(r.key(), f) for r, f in reg.registry()]
    out["portal"] = portal_export(ctx.index)
    res = ctx.index.search(SearchQuery(q="ho so dat dai", size=100))
    out["search"] = (res.total, sorted((h.document_id, h.page) for h in res.hits))
    out["docs"] = [(d.id, d.status, d.page_count, d.mean_confidence) for d in ctx.index.list_documents(limit=100_000)]
    return out


def _delete_index(ctx: Context) -> None:
    s = ctx.settings
    if s.index_url.startswith("sqlite"):
        from index.base import sqlite_path

        path = Path(sqlite_path(s.index_url))
        ctx.close()
        for p in path.parent.glob(path.name + "*"):
            p.unlink()
    else:
        ctx.index.drop()  # type: ignore[attr-defined]
        ctx.close()


def test_delete_the_index_and_rebuild_identical_reports(settings: Settings, tmp_path: Path) -> None:
    recs, docs = build(seed=21, n=120)
    ctx = Context(settings)
    auth = AuthStore(ctx.store)
    token = auth.create_token("scanner", ["clerk"], ["*"])
    audit = AuditLog(ctx.store)
    audit.record(AuditEvent(actor="cli:test", actor_kind="cli", action="report.read"))
    audit.close()
    # the registry arrives in two imports (the second updates rows), scans before and after it
    half = len(docs) // 2
    for i, d in enumerate(docs[:half]):
        m, texts = _manifest(d, i)
        ctx.put_manifest(m)
        for t in texts:
            ctx.store.put_bytes(page_key(m.id, t.number, "txt"), t.text.encode())
        ctx.save_manifest(m, pages=texts if m.status == "done" else None)
    ctx.registry.upsert_dossiers(recs[:90], source="q1.xlsx")
    changed = [type(r)(**{**r.__dict__, "status": "Đã trả kết quả"}) for r in recs[60:90]]
    ctx.registry.upsert_dossiers(changed + recs[90:], source="q2.xlsx")
    for i, d in enumerate(docs[half:], half):
        m, texts = _manifest(d, i)
        ctx.put_manifest(m)
        for t in texts:
            ctx.store.put_bytes(page_key(m.id, t.number, "txt"), t.text.encode())
        ctx.save_manifest(m, pages=texts if m.status == "done" else None)
    before = _snapshot(ctx)
    assert before["year:2026/any/0.0/False"]["total"]["received"] == len(recs)
    kept = {k: ctx.store.get_bytes(k) for k in ctx.store.list("") if k.startswith(("auth/", "audit/"))}
    assert any(k.startswith("audit/") for k in kept) and any(k.startswith("auth/") for k in kept)
    _delete_index(ctx)

    ctx = Context(settings)
    try:
        assert ctx.index.list_documents() == [] and list(ctx.registry.registry()) == []
        n = ctx.reindex()
        assert n == len(docs)
        after = _snapshot(ctx)
        for key in before:
            assert after[key] == before[key], key
        assert {k: ctx.store.get_bytes(k) for k in ctx.store.list("") if k.startswith(("auth/", "audit/"))} == kept
        assert AuthStore(ctx.store).verify_token(token) is not None
    finally:
        ctx.close()


def test_reindex_keeps_a_registry_imported_before_imports_were_stored(tmp_path: Path) -> None:
    """Upgrading: rows that exist only in the index are written to the store before the index is cleared."""
    ctx = Context(Settings(data_dir=tmp_path / "data"))
    try:
        recs, _ = build(seed=1, n=30)
        ctx.index.journal = None  # as before this version: rows only in the index
        ctx.registry.upsert_dossiers(recs)
        assert not list(ctx.store.list("registry/"))
        ctx.reindex()
        assert [r.code for r, _ in ctx.registry.registry()] == sorted(r.code for r in recs)
        assert list(ctx.store.list("registry/imports/"))
    finally:
        ctx.close()
