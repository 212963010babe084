"""The error tree, the retry policy, leases, batches and the HTTP answers during outages, in one process (fast;
the same faults on real servers are in ``test_faults.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import ocr
from api import create_app
from ingest import UploadItem, accept_batch
from ingest.service import Accepted
from sohoa.batches import Batches
from sohoa.context import Context, lease_name
from sohoa.errors import ConfigError, LeaseLost, PermanentError, TransientError, kind_of
from sohoa.leases import LeaseKeeper, holder_dead, thread_owner
from sohoa.settings import Settings
from storage import ObjectStore, StorageUnavailable, open_store
from workers.process import MAX_ATTEMPTS, backoff_ms, process_document, run_job

import fixtures
from deploy import CODE, ROOT, authorize


class FlakyStore(ObjectStore):
    """A file store that can be switched off, wholly or for keys containing a marker."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner, self.url = inner, inner.url
        self.down = False
        self.down_for: str | None = None

    def _gate(self, key: str) -> None:
        if self.down or (self.down_for and self.down_for in key):
            raise StorageUnavailable("store down (test)")

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._gate(key)
        self.inner.put_bytes(key, data, content_type)

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        self._gate(key)
        self.inner.put_file(key, path, content_type)

    def get_bytes(self, key: str) -> bytes:
        self._gate(key)
        return self.inner.get_bytes(key)

    def download(self, key: str, path: Path) -> None:
        self._gate(key)
        self.inner.download(key, path)

    def exists(self, key: str) -> bool:
        self._gate(key)
        return self.inner.exists(key)

    def size(self, key: str) -> int:
        return self.inner.size(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        self._gate(prefix)
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self._gate(key)
        self.inner.delete(key)

    def check(self) -> None:
        self._gate("health-check")


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    s = Settings(data_dir=tmp_path / "data", retry_min_backoff_ms=100, retry_max_backoff_ms=200, lease_ttl_s=3)
    c = Context(s, store=FlakyStore(open_store((tmp_path / "data" / "objects").as_uri())))
    yield c
    c.close()


def _accept(ctx: Context, tmp_path: Path, name: str = "a.png", lines: list[str] | None = None) -> str:
    p = tmp_path / name
    p.write_bytes(fixtures.png_scan(lines or [f"Giấy tờ {name}"]))
    [acc] = accept_batch(ctx, [UploadItem(p, name, CODE, "input")])
    assert isinstance(acc, Accepted)
    return acc.manifest.id


def test_error_kinds_and_backoff() -> None:
    from index.base import IndexUnavailable
    from workers.pages import PageSourceError
    from workers.queue import QueueUnavailable

    assert kind_of(StorageUnavailable("x")) == kind_of(IndexUnavailable("x")) == kind_of(QueueUnavailable("x"))
    assert kind_of(StorageUnavailable("x")) == "transient"
    assert kind_of(PageSourceError("x")) == "permanent" and kind_of(ConfigError("x")) == "config"
    assert kind_of(RuntimeError("x")) == "unknown"
    delays = [backoff_ms(n, 2000, 30000) for n in range(8)]
    assert 1600 <= delays[0] <= 2000 and all(d <= 30000 for d in delays) and delays[6] >= 24000


def test_transient_error_mid_run_is_not_an_attempt(ctx: Context, tmp_path: Path) -> None:
    doc = _accept(ctx, tmp_path)
    store = ctx.store
    assert isinstance(store, FlakyStore)
    store.down_for = "/out/page-"  # the store fails while the outputs are written
    run_job(ctx, doc)
    m = ctx.load_manifest(doc)
    assert m.status == "queued" and m.attempts == 0 and (m.error or "").startswith("waiting"), m.error
    assert doc in (ctx.queue.pending() or set())  # sent again, with a delay
    store.down_for = None
    process_document(ctx, doc)
    m = ctx.load_manifest(doc)
    assert m.status == "done" and m.attempts == 1
    assert ctx.index.get_document(doc).status == "done"  # type: ignore[union-attr]


def test_refund_when_the_waiting_state_cannot_be_recorded(ctx: Context, tmp_path: Path) -> None:
    doc = _accept(ctx, tmp_path)
    store = ctx.store
    assert isinstance(store, FlakyStore)
    orig = store.inner.put_bytes
    calls = {"n": 0}

    def fail_after_processing(key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        if "/out/page-" in key:
            store.down = True  # down from the first output on: the run cannot even record that it waits
        if store.down:
            raise StorageUnavailable("down")
        calls["n"] += 1
        orig(key, data, content_type)

    store.put_bytes = fail_after_processing  # type: ignore[method-assign]
    with pytest.raises(TransientError) as e:
        process_document(ctx, doc)
    assert getattr(e.value, "refund", 0) == 1
    store.down = False
    assert ctx.load_manifest(doc).attempts == 1  # recorded by the start of the run
    store.put_bytes = orig  # type: ignore[method-assign]
    process_document(ctx, doc, refund=1)
    m = ctx.load_manifest(doc)
    assert m.status == "done" and m.attempts == 1  # the failed attempt was given back


def test_permanent_error_fails_with_its_true_reason(ctx: Context, tmp_path: Path) -> None:
    doc = _accept(ctx, tmp_path)
    ctx.store.put_bytes(ctx.load_manifest(doc).original_key, b"\x89PNG\r\n\x1a\n broken")
    run_job(ctx, doc)
    m = ctx.load_manifest(doc)
    assert m.status == "failed" and "cannot decode image" in (m.error or "") and m.attempts == 1
    assert ctx.index.get_document(doc).status == "failed"  # type: ignore[union-attr]


def test_unknown_errors_count_and_fail_with_the_error(ctx: Context, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    doc = _accept(ctx, tmp_path)

    def crash(*a: Any, **k: Any) -> Any:
        raise ocr.OcrError("tesseract failed (-11): segfault")

    monkeypatch.setattr(ocr, "process_page", crash)
    for _ in range(MAX_ATTEMPTS):
        run_job(ctx, doc)
    m = ctx.load_manifest(doc)
    assert m.status == "failed" and m.attempts == MAX_ATTEMPTS and "segfault" in (m.error or ""), m.error


def test_outage_longer_than_the_window_fails_with_the_outage(ctx: Context, tmp_path: Path) -> None:
    doc = _accept(ctx, tmp_path)
    store = ctx.store
    assert isinstance(store, FlakyStore)
    store.down_for = "/out/page-"
    run_job(ctx, doc, retries=40, since=time.time() - ctx.settings.outage_window_s - 1)
    m = ctx.load_manifest(doc)
    assert m.status == "failed" and "SOHOA_OUTAGE_WINDOW_S" in (m.error or "") and "store down" in (m.error or "")


def test_missing_tesseract_is_a_configuration_error_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.process import check_ocr_installed

    monkeypatch.setenv("PATH", str(tmp_path))
    from ocr.tesseract import _resolve

    _resolve.cache_clear()
    try:
        with pytest.raises(ConfigError, match="tesseract is not installed"):
            check_ocr_installed()
    finally:
        _resolve.cache_clear()
    env = {**os.environ, "PATH": f"{tmp_path}:{Path(sys.executable).parent}", "SOHOA_DATA_DIR": str(tmp_path),
           "SOHOA_BROKER_URL": "redis://127.0.0.1:1/0"}  # fmt: skip
    r = subprocess.run([sys.executable, "-m", "sohoa.cli", "worker"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and "tesseract is not installed" in r.stdout, r.stdout + r.stderr


def test_a_live_lease_drops_a_second_delivery(ctx: Context, tmp_path: Path) -> None:
    doc = _accept(ctx, tmp_path)
    other = "otherhost:1:abc:1"
    assert ctx.leases.acquire(lease_name(doc), other, 30) is not None
    process_document(ctx, doc)  # dropped: someone holds it
    m = ctx.load_manifest(doc)
    assert m.status == "queued" and m.attempts == 0
    assert ctx.recover() == []  # the reconciler never touches a live lease
    ctx.leases.release(lease_name(doc), other)


def test_lease_of_a_dead_process_is_taken_over(ctx: Context) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    import socket

    dead = f"{socket.gethostname()}:{proc.pid}:x:1"
    lease = ctx.leases.acquire("doc:x", dead, 600)
    assert lease is not None and holder_dead(lease)
    assert ctx.leases.acquire("doc:x", thread_owner(), 5) is None  # alive by its expiry …
    assert ctx.leases.acquire("doc:x", thread_owner(), 5, dead=holder_dead) is not None  # … but its process is gone


def test_a_run_that_loses_its_lease_stops(ctx: Context) -> None:
    me, other = thread_owner(), "otherhost:1:abc:1"
    lease = ctx.leases.acquire("doc:y", me, 0.6)
    assert lease is not None
    keeper = LeaseKeeper(ctx.leases, lease, 0.6)
    keeper.check()
    time.sleep(0.9)  # expired, renewed by the heartbeat in time? it renews every 0.2 s
    keeper.check()
    ctx.leases.release("doc:y", me)
    assert ctx.leases.acquire("doc:y", other, 30) is not None  # someone else takes it
    time.sleep(0.5)
    with pytest.raises(LeaseLost):
        keeper.check()
    keeper.release()
    assert ctx.leases.get("doc:y").owner == other  # type: ignore[union-attr]


def test_staging_failure_leaves_nothing(ctx: Context, tmp_path: Path) -> None:
    store = ctx.store
    assert isinstance(store, FlakyStore)
    files = []
    for i in range(3):
        p = tmp_path / f"{i}.png"
        p.write_bytes(fixtures.png_scan([f"Giấy {i}"]))
        files.append(UploadItem(p, p.name, CODE, "input"))
    store.down_for = "/manifest.json"  # originals stored, then the store fails
    with pytest.raises(StorageUnavailable):
        accept_batch(ctx, files)
    store.down_for = None
    assert list(ctx.store.list("")) == [] and ctx.index.list_documents() == []


def test_uncommitted_batch_of_a_dead_process_is_swept(ctx: Context, tmp_path: Path) -> None:
    from ingest.service import _prepare

    p = tmp_path / "a.png"
    p.write_bytes(fixtures.png_scan())
    m = _prepare(ctx, UploadItem(p, "a.png", CODE, "input"))
    b = Batches(ctx)
    rec = b.begin([m])
    ctx.store.put_file(m.original_key, p, m.media_type)
    ctx.put_manifest(m)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    rec.owner = rec.owner.replace(f":{os.getpid()}:", f":{proc.pid}:")  # staged by a process that died
    ctx.store.put_bytes(rec.key, rec.to_json())
    assert ctx.recover() == []  # the sweep is part of every pass
    assert list(ctx.store.list("")) == []


def test_committed_batch_is_finished_and_a_lost_duplicate_is_queued(ctx: Context, tmp_path: Path) -> None:
    doc = _accept(ctx, tmp_path)
    ctx.queue._outstanding.clear()  # the message was lost (a broker restarted without persistence)
    p = tmp_path / "again.png"
    p.write_bytes(ctx.store.get_bytes(ctx.load_manifest(doc).original_key))
    [acc] = accept_batch(ctx, [UploadItem(p, "again.png", CODE, "input")])
    assert isinstance(acc, Accepted) and acc.duplicate and acc.manifest.id == doc
    assert doc in (ctx.queue.pending() or set())  # the retry queued it again


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(ctx.settings, ctx=ctx, run_workers=False)) as c:
        yield authorize(c, ctx.settings)


def test_outage_answers_503_with_retry_after(client: TestClient, ctx: Context, tmp_path: Path) -> None:
    doc = _accept(ctx, tmp_path)
    store = ctx.store
    assert isinstance(store, FlakyStore)
    r = client.get("/health/ready", headers={"Authorization": ""})
    assert r.status_code == 200 and set(r.json()["checks"]) == {"storage", "index", "broker"}
    assert all(v["status"] == "ok" and v["latency_ms"] >= 0 for v in r.json()["checks"].values())
    store.down_for = "documents/"  # the documents are unreachable (the accounts still answer)
    r = client.get(f"/documents/{doc}")
    assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
    assert r.json()["detail"]["message"].startswith("kho lưu trữ tạm thời") and "(temporarily unavailable" in r.text
    r = client.post("/documents", data={"dossier_code": CODE, "kind": "input"},
                    files=[("files", ("b.png", fixtures.png_scan(["khác"]), "image/png"))])  # fmt: skip
    assert r.status_code == 503 and r.headers["retry-after"], r.text
    store.down_for = "health-check"
    r = client.get("/health/ready", headers={"Authorization": ""})
    assert r.status_code == 503 and r.headers["retry-after"]
    body = r.json()
    assert body["checks"]["storage"]["status"] == "unavailable" and body["checks"]["index"]["status"] == "ok"
    assert "file:" not in r.text and "error" not in body["checks"]["storage"]  # public: no URL, no message
    assert client.get("/health/live", headers={"Authorization": ""}).json() == {"status": "ok"}
    assert client.get("/health", headers={"Authorization": ""}).json() == {"status": "ok"}
    assert client.get("/health/details", headers={"Authorization": ""}).status_code == 401
    d = client.get("/health/details")
    assert d.status_code == 503 and "store down" in d.json()["checks"]["storage"]["error"]


def test_permanent_storage_error_is_not_a_bare_500(client: TestClient, ctx: Context,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from storage.base import StorageError

    def broken(doc_id: str) -> Any:
        raise StorageError("corrupt object")

    monkeypatch.setattr(ctx, "load_manifest", broken)
    r = client.get("/documents/abc")
    assert r.status_code == 500 and "internal error" in r.json()["detail"]["message"]
    assert isinstance(PermanentError("x"), Exception)


def test_recover_beside_a_running_embedded_server_leaves_its_queue_alone(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    import workers.reconcile

    monkeypatch.setattr(workers.reconcile, "MIN_AGE_S", 0.0)
    doc = _accept(ctx, tmp_path)  # queued in this "server's" in-process queue
    server = f"{socket.gethostname()}:{os.getpid()}:server"
    assert ctx.leases.acquire("reconciler", server, 60) is not None  # the server's reconciler is active
    cli = Context(ctx.settings)  # `sohoa recover` in another process: it cannot see the server's memory
    try:
        assert cli.recover() == []
        ctx.leases.release("reconciler", server)  # the server is gone
        assert cli.recover() == [doc]
    finally:
        cli.close()
