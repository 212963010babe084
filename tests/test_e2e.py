"""End to end, on both deployments: upload → queue → clean → OCR → store → index → search → count.

* embedded: file:// store, SQLite index, in-process queue (the API process runs the workers);
* scaled: S3 (SeaweedFS), Elasticsearch API, Redis broker and a separate ``sohoa worker`` process.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pytest
from fastapi.testclient import TestClient

from api import create_app
from index import open_index
from sohoa.settings import Settings
from storage import open_store

import fixtures
from deploy import CODE, authorize, kill, scaled_settings, sohoa_process, wait_for


@dataclass
class Deployment:
    name: str
    client: TestClient
    settings: Settings


@pytest.fixture(params=["embedded", "scaled"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> Iterator[Deployment]:
    if request.param == "embedded":
        settings = Settings(data_dir=tmp_path / "data", broker_url="memory://")
        with TestClient(create_app(settings)) as client:
            yield Deployment("embedded", authorize(client, settings), settings)
        return
    settings = scaled_settings(request, tmp_path, f"e2e-{unique}", worker_threads=2)
    es = settings.index_url
    worker = sohoa_process(settings, "worker", log=tmp_path / "worker.log")
    try:
        with TestClient(create_app(settings)) as client:
            yield Deployment("scaled", authorize(client, settings), settings)
    finally:
        kill(worker, 15)
        print((tmp_path / "worker.log").read_text(errors="replace")[-3000:])
        ix = open_index(es, f"e2e-{unique}")
        ix.drop()  # type: ignore[attr-defined]


def wait_done(client: TestClient, doc_id: str, timeout: float = 300) -> dict:
    def check() -> dict | None:
        r = client.get(f"/documents/{doc_id}")
        assert r.status_code == 200, r.text
        d = r.json()
        assert d["status"] != "failed", d
        return d if d["status"] == "done" else None

    return wait_for(check, timeout, what=f"document {doc_id} done")


def test_upload_ocr_search_count(deployment: Deployment) -> None:
    c = deployment.client
    pdf_bytes = fixtures.two_page_pdf()
    r = c.post(
        "/documents",
        files=[
            ("files", ("hồ sơ đất.pdf", pdf_bytes, "application/pdf")),
            ("files", ("tờ khai.jpg", fixtures.jpeg_scan(), "image/jpeg")),
        ],
        data={
            "dossier_code": CODE,
            "kind": ["input", "output"],
            "component": ["Đơn đề nghị", "Tờ khai"],
            "unit": "UBND xã Quảng Định",
        },
    )
    assert r.status_code == 202, r.text
    docs = r.json()["documents"]
    assert [d["status"] for d in docs] == ["queued", "queued"]
    assert docs[0]["filename"] == "hồ sơ đất.pdf" and docs[0]["pages"] == 2
    pdf_id, jpg_id = docs[0]["id"], docs[1]["id"]

    m = wait_done(c, pdf_id)
    assert m["page_count"] == 2 and len(m["pages"]) == 2
    assert [h["status"] for h in m["history"]] == ["received", "queued", "processing", "done"]
    assert all(p["mean_confidence"] > 50 for p in m["pages"])
    wait_done(c, jpg_id)

    # diacritics-free query finds the right page of the right document
    r = c.get("/search", params={"q": "ho so dat dai"})
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert hits, r.json()
    assert (hits[0]["document_id"], hits[0]["page"], hits[0]["dossier_code"]) == (pdf_id, 2, CODE)
    assert "<mark>" in hits[0]["snippet"]
    r = c.get("/search", params={"q": "ket hon", "kind": "output"})
    assert [h["document_id"] for h in r.json()["hits"]][:1] == [jpg_id]
    assert c.get("/search", params={"q": "ket hon", "kind": "input"}).json()["total"] == 0

    # page image, searchable PDF and text are downloadable
    r = c.get(f"/documents/{pdf_id}/pages/2")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:3] == b"\xff\xd8\xff"
    r = c.get(f"/documents/{pdf_id}/pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    import io

    assert len(pikepdf.open(io.BytesIO(r.content)).pages) == 2
    text_layer = subprocess.run(["pdftotext", "-", "-"], input=r.content, capture_output=True, check=True).stdout
    assert "Quảng" in text_layer.decode("utf-8")
    r = c.get(f"/documents/{pdf_id}/text")
    assert "đất" in r.text
    assert c.get(f"/documents/{pdf_id}/original").content == pdf_bytes
    assert c.get(f"/documents/{pdf_id}/pages/1/hocr").text.count("x_wconf") > 3

    # counting
    d = c.get(f"/dossiers/{CODE}").json()
    assert d["input_digitized"] and d["output_digitized"]
    assert len(d["documents"]) == 2
    assert c.get("/dossiers/000.00.06.H56-261105-9999").status_code == 404


BAD = [
    ("empty.pdf", b"", {}, 422, "empty file"),
    ("text.pdf", fixtures.text_pretending_pdf(), {}, 415, "not a PDF file"),
    ("corrupt.pdf", fixtures.corrupt_pdf(), {}, 422, "corrupt PDF"),
    ("locked.pdf", fixtures.encrypted_pdf(), {}, 422, "encrypted PDF"),
    ("huge.png", fixtures.huge_png_header(), {}, 413, "50000×50000"),
    ("ok.png", fixtures.png_scan(), {"kind": "ketqua"}, 422, "unknown document kind"),
    ("ok.png", fixtures.png_scan(), {"dossier_code": "HS 01/2026"}, 422, "malformed dossier code"),
]


@pytest.mark.parametrize(("name", "data", "meta", "status", "message"), BAD, ids=[b[4] for b in BAD])
def test_bad_input_leaves_nothing(
    deployment: Deployment, name: str, data: bytes, meta: dict, status: int, message: str
) -> None:
    c = deployment.client
    form = {"dossier_code": CODE, "kind": "input", **meta}
    # a good file in the same batch is not stored either: the batch is all or nothing
    r = c.post(
        "/documents",
        data=form,
        files=[
            ("files", ("good.png", fixtures.png_scan(), "image/png")),
            ("files", (name, data, "application/octet-stream")),
        ],
    )
    assert r.status_code == status, r.text
    body = r.json()["detail"]
    assert "nothing was stored" in body["message"]
    assert any(message in e["message"] for e in body["errors"]), body
    store = open_store(deployment.settings.storage_url)
    assert [k for k in store.list("") if not k.startswith(("auth/", "audit/"))] == []  # accounts and audit only
    assert c.get("/documents").json()["documents"] == []


def test_upload_requires_files_and_metadata(deployment: Deployment) -> None:
    c = deployment.client
    assert c.post("/documents", data={"dossier_code": CODE, "kind": "input"}).status_code == 422
    r = c.post(
        "/documents",
        data={"dossier_code": [CODE, CODE, CODE], "kind": "input"},
        files=[("files", ("a.png", fixtures.png_scan(), "image/png"))],
    )
    assert r.status_code == 422 and "once per file" in r.text
