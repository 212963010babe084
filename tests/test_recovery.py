"""Kill a worker mid-job, restart it: the document still reaches ``done``, indexed once."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import httpx
import pytest

from ingest import UploadItem, accept_batch
from ingest.service import Accepted
from sohoa.context import Context
from sohoa.demo import pdf_bytes
from sohoa.settings import Settings

import fixtures
from deploy import CODE, api_token, kill, scaled_settings, sohoa_process, wait_for

# enough pages that a kill after the first page lands mid-document on a fast host too (two page processes
# finished 3 pages in 2.0 s on CI: a 4-page document left the poll-then-kill window too narrow)
PAGES = 10


def multi_page_pdf(n: int = PAGES) -> bytes:
    return pdf_bytes(
        [fixtures.small_page([f"Trang số {i}: biên bản kiểm tra hiện trạng thửa đất"] * 6) for i in range(1, n + 1)],
        dpi=200,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_embedded_server_killed_mid_job_recovers(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(data_dir=tmp_path / "data", broker_url="memory://", worker_threads=1, port=port)
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"

    def up() -> bool:
        try:
            return httpx.get(base + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    server = sohoa_process(settings, "serve", log=log)
    auth = {"Authorization": f"Bearer {api_token(settings)}"}
    try:
        wait_for(up, 60, what="API up")
        r = httpx.post(
            base + "/documents",
            data={"dossier_code": CODE, "kind": "input"},
            files=[("files", ("bien-ban.pdf", multi_page_pdf(), "application/pdf"))],
            headers=auth,
            timeout=60,
        )
        assert r.status_code == 202, r.text
        doc_id = r.json()["documents"][0]["id"]

        def mid_job() -> bool:
            d = httpx.get(f"{base}/documents/{doc_id}", headers=auth, timeout=5).json()
            assert d["status"] != "done", "finished before it could be killed: make the document longer"
            return d["status"] == "processing" and d["progress"]["pages_done"] >= 1

        wait_for(mid_job, 120, interval=0.1, what="processing with one page done")
        kill(server)  # SIGKILL: no chance to clean up
        server = sohoa_process(settings, "serve", log=log)
        wait_for(up, 60, what="API up again")
        d = wait_for(
            lambda: (
                (x := httpx.get(f"{base}/documents/{doc_id}", headers=auth, timeout=5).json())["status"] == "done" and x
            ),
            300,
            what="done after restart",
        )
        assert d["page_count"] == PAGES and [p["number"] for p in d["pages"]] == list(range(1, PAGES + 1))
        assert d["attempts"] == 2
        r = httpx.get(base + "/search", params={"q": "bien ban kiem tra", "size": 50}, headers=auth).json()
        assert sorted(h["page"] for h in r["hits"]) == list(range(1, PAGES + 1))  # indexed once, not twice
    finally:
        kill(server)
        print(log.read_text(errors="replace")[-3000:])


def test_redis_worker_killed_mid_job_recovers(tmp_path: Path, request: pytest.FixtureRequest, unique: str) -> None:
    settings = scaled_settings(
        request, tmp_path, f"kill-{unique}", worker_threads=1, redis_heartbeat_ms=1500,
        redis_maintenance_chance=1_000_000,
    )  # fmt: skip
    ctx = Context(settings)
    log = tmp_path / "worker.log"
    worker = sohoa_process(settings, "worker", log=log)
    try:
        src = tmp_path / "bien-ban.pdf"
        src.write_bytes(multi_page_pdf())
        [acc] = accept_batch(ctx, [UploadItem(src, src.name, CODE, "input")])
        assert isinstance(acc, Accepted)
        doc_id = acc.manifest.id

        def mid_job() -> bool:
            m = ctx.load_manifest(doc_id)
            assert m.status != "done", "finished before it could be killed"
            return m.status == "processing" and len(m.pages) >= 1

        wait_for(mid_job, 120, interval=0.1, what="processing with one page done")
        kill(worker)
        worker = sohoa_process(settings, "worker", log=log)
        m = wait_for(lambda: (x := ctx.load_manifest(doc_id)).status == "done" and x, 300, what="done after restart")
        assert m.page_count == PAGES and m.attempts == 2
        assert ctx.index.page_count(doc_id) == PAGES
        assert ctx.store.exists(f"documents/{doc_id}/out/document.pdf")
        import pikepdf

        assert len(pikepdf.open(io.BytesIO(ctx.store.get_bytes(f"documents/{doc_id}/out/document.pdf"))).pages) == PAGES
    finally:
        kill(worker)
        print(log.read_text(errors="replace")[-3000:])
        ctx.index.drop()  # type: ignore[attr-defined]
        ctx.close()
