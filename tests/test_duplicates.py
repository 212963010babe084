"""Duplicates (issue 14): the same file, a re-encoded copy and a turned copy of the same scan are answered with
the stored document (not stored twice) unless kept as a new version; two filled-in copies of one form are
NOT merged; a page seen again in another document of the dossier is flagged. Embedded default, and the
content check on S3 + Elasticsearch (the dossier listing comes from the index there)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import img2pdf
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api import create_app
from ingest import UploadItem, accept_batch
from ingest.dedupe import MATCH_BITS, distance, page_hashes
from ingest.service import Accepted
from sohoa.context import Context
from sohoa.demo import render_page
from sohoa.settings import Settings

from conftest import s3_url
from deploy import authorize
from fixtures import scanned

CODE = "000.00.06.H56-260715-0361"
OTHER = "000.00.06.H56-260715-0362"


def _form(name: str, number: str, seed: int) -> Image.Image:
    """A filled-in declaration: the same printed lines on every copy, the citizen's own data differ."""
    lines = ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc", "TỜ KHAI ĐĂNG KÝ",
             f"Họ và tên: {name}", f"Số CCCD: {number}", "Địa chỉ: thôn 3, xã Phú Lộc"]  # fmt: skip
    return scanned(render_page(lines, 200), 200, seed=seed)


PAGE_A = _form("Nguyễn Văn An", "001099012345", 1)
PAGE_B = _form("Trần Thị Bình", "079188004321", 2)
PAGE_C = _form("Lê Văn Cường", "038077005678", 3)


def _pdf(pages: list[Image.Image], quality: int = 85, scale: float = 1.0, dpi: int = 200) -> bytes:
    out = []
    for im in pages:
        if scale != 1.0:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality, dpi=(round(dpi * scale),) * 2)
        out.append(buf.getvalue())
    return img2pdf.convert(out)


def _put(ctx: Context, tmp: Path, data: bytes, code: str = CODE, keep: bool = False, name: str = "") -> Accepted:
    path = tmp / f"{uuid.uuid4().hex}.pdf"
    path.write_bytes(data)
    [r] = accept_batch(ctx, [UploadItem(path, name or path.name, code, "input", "Tờ khai", keep_duplicate=keep)],
                       all_or_nothing=False)  # fmt: skip
    assert isinstance(r, Accepted), r
    return r


@pytest.fixture(params=["embedded", "s3+es"])
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Context]:
    if request.param == "embedded":
        settings = Settings(data_dir=tmp_path / "data")
    else:
        store = s3_url(request.getfixturevalue("s3_server"))
        prefix = f"dup-{uuid.uuid4().hex[:8]}"
        settings = Settings(data_dir=tmp_path / "data", storage_url=store, index_url=request.getfixturevalue("es_url"),
                            es_index_prefix=prefix)  # fmt: skip
    c = Context(settings)
    yield c
    if request.param != "embedded":
        c.index.drop()  # type: ignore[attr-defined]
    c.close()


def test_same_scan_again_is_one_document_and_a_form_copy_is_another(ctx: Context, tmp_path: Path) -> None:
    first = _put(ctx, tmp_path, _pdf([PAGE_A, PAGE_B]))
    assert not first.duplicate and len(first.manifest.page_hashes) == 2
    again = _put(ctx, tmp_path, _pdf([PAGE_A, PAGE_B]))  # the same bytes
    reencoded = _put(ctx, tmp_path, _pdf([PAGE_A, PAGE_B], quality=40, scale=0.75))  # other bytes, same scan
    turned = {t: _put(ctx, tmp_path, _pdf([PAGE_A.rotate(t, expand=True), PAGE_B.rotate(t, expand=True)]))
              for t in (90, 180, 270)}  # fmt: skip
    for r in (again, reencoded, *turned.values()):
        assert r.duplicate and r.manifest.id == first.manifest.id
    other = _put(ctx, tmp_path, _pdf([PAGE_C, PAGE_B.rotate(180)]))  # another citizen's form + page B again
    assert not other.duplicate and other.manifest.id != first.manifest.id
    assert other.manifest.similar_pages == [{"page": 2, "document": first.manifest.id, "other_page": 2}]
    assert any("giống trang 2" in w for w in other.manifest.warnings)
    ids = {d.id for d in ctx.index.list_documents(dossier_code=CODE)}
    assert ids == {first.manifest.id, other.manifest.id}  # nothing stored twice


def test_pages_of_one_form_are_not_merged(tmp_path: Path) -> None:
    ctx = Context(Settings(data_dir=tmp_path / "data"))
    try:
        a = _put(ctx, tmp_path, _pdf([PAGE_A]))
        b = _put(ctx, tmp_path, _pdf([PAGE_B]))
        c = _put(ctx, tmp_path, _pdf([PAGE_C]))
        assert len({a.manifest.id, b.manifest.id, c.manifest.id}) == 3 and not (b.duplicate or c.duplicate)
        assert not b.manifest.similar_pages and not c.manifest.similar_pages
        # the hash alone would have merged them: the close look on the pages is what keeps them apart
        assert distance(a.manifest.page_hashes[0], b.manifest.page_hashes[0]) <= MATCH_BITS
        p = tmp_path / "b.pdf"
        p.write_bytes(_pdf([PAGE_B]))
        assert len(page_hashes(p, "application/pdf")[0]) == 4  # the page and its three turns
    finally:
        ctx.close()


def test_keep_as_new_version_and_other_dossier(tmp_path: Path) -> None:
    ctx = Context(Settings(data_dir=tmp_path / "data"))
    try:
        first = _put(ctx, tmp_path, _pdf([PAGE_A]))
        kept = _put(ctx, tmp_path, _pdf([PAGE_A], quality=50), keep=True)
        assert not kept.duplicate and kept.manifest.duplicate_of == first.manifest.id
        same_file_kept = _put(ctx, tmp_path, _pdf([PAGE_A]), keep=True)
        assert same_file_kept.manifest.duplicate_of == first.manifest.id
        elsewhere = _put(ctx, tmp_path, _pdf([PAGE_A], quality=50), code=OTHER)  # checked within a dossier
        assert not elsewhere.duplicate and elsewhere.manifest.duplicate_of is None
    finally:
        ctx.close()


def test_api_answers_a_duplicate_with_the_stored_document(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", worker_threads=1)
    form = {"dossier_code": CODE, "kind": "input"}
    with TestClient(create_app(settings)) as c:
        authorize(c, settings)
        r = c.post("/documents", files={"files": ("a.pdf", _pdf([PAGE_A]), "application/pdf")}, data=form)
        assert r.status_code == 202, r.text
        first = r.json()["documents"][0]["id"]
        r = c.post("/documents", files={"files": ("b.pdf", _pdf([PAGE_A.rotate(90, expand=True)], 50))}, data=form)
        assert r.status_code == 200, r.text
        doc = r.json()["documents"][0]
        assert doc["duplicate"] and doc["duplicate_of"] == first and doc["id"] == first
        r = c.post("/documents", files={"files": ("c.pdf", _pdf([PAGE_A], 60))}, data={**form, "keep_duplicate": "1"})
        assert r.status_code == 202, r.text
        doc = r.json()["documents"][0]
        assert not doc["duplicate"] and doc["duplicate_of"] == first and doc["id"] != first
        ctx: Context = c.app.state.sohoa.ctx  # type: ignore[attr-defined]
        m = ctx.load_manifest(doc["id"])
        m.blank_pages = [2, 5]  # as the worker lists them
        ctx.save_manifest(m)
        r = c.get(f"/doc/{doc['id']}")
        assert r.status_code == 200, r.text
        assert f'Cùng nội dung với <a href="/doc/{first}">' in r.text and "Trang trắng đã bỏ: 2, 5" in r.text


def _rendezvous_before_storing(monkeypatch: pytest.MonkeyPatch, parties: object) -> None:
    """Every upload that is about to store waits there for the other (up to 2 s): without the dossier lock both
    uploads have checked and found nothing by then, and both store."""
    import contextlib
    import threading

    import ingest.service as service

    real = service._store

    def store(*args: object) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            parties.wait(timeout=2)  # type: ignore[attr-defined]
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "_store", store)


@pytest.mark.parametrize("copy", ["same bytes", "re-encoded"])
def test_two_identical_uploads_at_the_same_moment_store_one(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, copy: str
) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    _rendezvous_before_storing(monkeypatch, threading.Barrier(2))
    data = [_pdf([PAGE_A, PAGE_C]), _pdf([PAGE_A, PAGE_C], quality=40 if copy == "re-encoded" else 85)]
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda b: _put(ctx, tmp_path, b), data))
    stored = [r for r in got if not r.duplicate]
    assert len(stored) == 1, [(r.manifest.id, r.duplicate) for r in got]
    [dup] = [r for r in got if r.duplicate]
    assert dup.manifest.id == stored[0].manifest.id  # the other answered with the stored document
    assert [d.id for d in ctx.index.list_documents(dossier_code=CODE)] == [stored[0].manifest.id]
    assert ctx.leases.get(f"dossier:{CODE}") is None  # released


def _upload_in_a_process(data_dir: str, path: str, parties: object, answers: object) -> None:
    ctx = Context(Settings(data_dir=Path(data_dir)))
    try:
        [r] = accept_batch(ctx, [UploadItem(Path(path), Path(path).name, CODE, "input", "Tờ khai")],
                           all_or_nothing=False)  # fmt: skip
        assert isinstance(r, Accepted)
        answers.put((r.manifest.id, r.duplicate))  # type: ignore[attr-defined]
    finally:
        ctx.close()


def test_two_processes_uploading_the_same_file_store_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    mp = multiprocessing.get_context("fork")  # the children inherit the rendezvous patched in below
    parties = mp.Barrier(2)
    _rendezvous_before_storing(monkeypatch, parties)
    answers = mp.Queue()
    data = _pdf([PAGE_B, PAGE_C])
    paths = [tmp_path / "a.pdf", tmp_path / "b.pdf"]
    for p in paths:
        p.write_bytes(data)
    procs = [mp.Process(target=_upload_in_a_process, args=(str(tmp_path / "data"), str(p), parties, answers))
             for p in paths]  # fmt: skip
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    got = sorted(answers.get(timeout=5) for _ in procs)
    assert [dup for _, dup in got].count(False) == 1 and got[0][0] == got[1][0], got  # one stored, one answered
    ctx = Context(Settings(data_dir=tmp_path / "data"))
    try:
        assert [d.id for d in ctx.index.list_documents(dossier_code=CODE)] == [got[0][0]]
    finally:
        ctx.close()


def test_one_scan_hashes_alike_whichever_way_its_pages_are_read(tmp_path: Path) -> None:
    # a PDF page that is one JPEG is hashed from that JPEG thumbnailed (Pillow drafts it at 1/2–1/8 scale); a
    # lossless page image is decoded whole; an image file is thumbnailed; earlier versions rendered every PDF
    # page at 36 dpi (pdftoppm), and their stored hashes must still match
    from pdf2image import convert_from_path

    from ingest.dedupe import RENDER_DPI, image_hashes

    jpg, png = io.BytesIO(), io.BytesIO()
    PAGE_A.save(jpg, "JPEG", quality=85, dpi=(200, 200))
    PAGE_A.save(png, "PNG", dpi=(200, 200))
    files = {
        "jpeg-in-pdf.pdf": img2pdf.convert([jpg.getvalue()]),
        "png-in-pdf.pdf": img2pdf.convert([png.getvalue()]),
        "scan.jpg": jpg.getvalue(),
    }
    hashes = {}
    for name, data in files.items():
        p = tmp_path / name
        p.write_bytes(data)
        [h] = page_hashes(p, "application/pdf" if name.endswith(".pdf") else "image/jpeg")
        hashes[name] = h[0]
    rendered = image_hashes(convert_from_path(str(tmp_path / "jpeg-in-pdf.pdf"), dpi=RENDER_DPI, grayscale=True)[0])
    for name, h in hashes.items():
        # measured 4–8 bits; a hash within MATCH_BITS (40) leads to the close look, which decides
        assert distance(h, rendered[0]) <= 12, name
