"""Page-level parallelism (issue 15): the pages of one document OCR'd by the shared process pool give the same
result as one at a time; pages fed lazily; previews instead of full-size page images; old layout still shown."""

from __future__ import annotations

import io
import os
import re
import signal
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pikepdf
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api import create_app
from ingest import UploadItem, accept_batch
from ingest.service import Accepted
from sohoa.context import Context, page_key
from sohoa.demo import TEXTS, pdf_bytes, render_page
from sohoa.models import Manifest
from sohoa.settings import Settings
from workers import pagepool
from workers.process import process_document

from deploy import authorize, wait_for

CODE = "000.00.06.H56-261105-0001"


def _doc(
    ctx: Context, tmp_path: Path, pages: int, name: str = "doc.pdf", blank: tuple[int, ...] = (), first: int = 0
) -> str:
    texts = list(TEXTS.values())
    imgs = [
        Image.new("L", (1654, 2339), 255)
        if p + 1 in blank
        else render_page(texts[(first + p) % len(texts)], 200, skew=p * 0.6)
        for p in range(pages)
    ]
    path = tmp_path / name
    path.write_bytes(pdf_bytes(imgs, 200))
    [acc] = accept_batch(ctx, [UploadItem(path, name, CODE, "input")])
    assert isinstance(acc, Accepted)
    return acc.manifest.id


def _run(tmp_path: Path, workers: int, pages: int) -> tuple[Manifest, dict[str, bytes], list[str]]:
    ctx = Context(Settings(data_dir=tmp_path / f"data{workers}", page_workers=workers, render_dpi=200))
    try:
        doc = _doc(ctx, tmp_path, pages)
        process_document(ctx, doc)
        m = ctx.load_manifest(doc)
        keys = sorted(k for k in ctx.store.list(f"documents/{doc}/out/"))
        # (an hOCR names the temporary image file Tesseract read: different in every run)
        outs = {
            k.rsplit("/", 1)[1]: re.sub(rb"image \"[^\"]*\"", b"image", ctx.store.get_bytes(k))
            for k in keys
            if k.endswith(("txt", "hocr"))
        }
        with pikepdf.open(io.BytesIO(ctx.store.get_bytes(f"documents/{doc}/out/document.pdf"))) as pdf:
            archived = [f"pdf pages {len(pdf.pages)}"]
        return m, outs, [k.rsplit("/", 1)[1] for k in keys] + [str(ctx.index.page_count(doc))] + archived
    finally:
        ctx.close()


def test_parallel_document_equals_sequential(tmp_path: Path) -> None:
    seq, seq_out, seq_keys = _run(tmp_path, 1, 5)
    par, par_out, par_keys = _run(tmp_path, 2, 5)
    assert seq.status == par.status == "done", (seq.error, par.error)
    assert [p.number for p in par.pages] == [1, 2, 3, 4, 5] == [p.source_page for p in par.pages]

    def facts(m: Manifest) -> list[dict[str, Any]]:
        return [{k: v for k, v in asdict(p).items() if k != "seconds"} for p in m.pages]

    assert facts(par) == facts(seq)
    assert par.model == seq.model and par.blank_pages == seq.blank_pages == []
    assert sorted(par.timings) == sorted(seq.timings)
    assert par_out == seq_out  # the same text, raw text and hOCR for every page
    assert par_keys == seq_keys
    assert "page-0001.preview.jpg" in par_keys and "page-0001.jpg" not in par_keys
    assert pagepool.pool_pids(), "the pages went through the process pool"


def test_libtesseract_in_the_process_reads_as_the_program_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """A page process runs Tesseract through its library (the model loaded once): the same text, hOCR and
    PDF as the program, for the page's reading and for a strip check (another configuration)."""
    import ocr
    from ocr import tesseract
    from ocr.pipeline import _strip_confidence

    page = render_page(list(TEXTS.values())[1], 200, skew=0.8)
    norm = re.compile(r"image \"[^\"]*\"")
    tessdata = tesseract.resolve_model(None)[0]
    gray = np.asarray(page.convert("L"))
    results = []
    try:
        for library in (False, True):
            assert tesseract.use_library(library) == library
            if library:  # no program is started from now on
                monkeypatch.setattr(tesseract.pt, "run_tesseract", lambda *a, **k: pytest.fail("program run"))
            res = ocr.process_page(page, 200)
            strip = _strip_confidence(gray, 0, 0.0, 200, tessdata, ocr.OcrSettings())
            with pikepdf.open(io.BytesIO(res.pdf)) as pdf:
                c = pdf.pages[0].obj.Contents
                ops = b"".join(x.read_bytes() for x in (c if isinstance(c, pikepdf.Array) else [c]))
                text_ops = re.sub(rb"/Im\S+ Do", b"/Im Do", ops)  # (the grafted image's name is random)
            results.append((res.text, norm.sub("", res.hocr), res.mean_confidence, strip, text_ops))
    finally:
        tesseract.use_library(False)
    assert results[0] == results[1]
    assert len(results[0][0]) > 200 and b"] TJ" in results[0][4]  # read, with the text in the PDF


def test_a_scans_jpeg_goes_to_the_page_process_as_its_bytes(tmp_path: Path) -> None:
    import ocr
    from workers.pages import PageSourceError, iter_pages

    path = tmp_path / "scan.pdf"
    path.write_bytes(pdf_bytes([render_page(list(TEXTS.values())[0], 100)], 100))
    (src,) = iter_pages(path, "application/pdf", 300, 40_000_000)
    encoded = src.encoded
    task = pagepool.PageTask.make(src, 100, ocr.OcrSettings(), 150, False)
    assert src.lazy and task.jpeg and task.image == encoded  # not 1 MB of pickled pixels
    with Image.open(io.BytesIO(encoded or b"")) as im:
        assert np.array_equal(np.asarray(task.load_image()), np.asarray(im))
    task.image = task.image[: len(task.image) // 2]
    with pytest.raises(PageSourceError, match="cannot be decoded"):
        task.load_image()


def test_warm_up_loads_the_model_before_the_first_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker warms its OCR up at start: the first real page then loads no Tesseract model."""
    import pickle

    import ocr
    from ocr import tesseract

    made: list[Any] = []
    real = tesseract._Api.__init__

    def counted(self: Any, *a: Any) -> None:
        made.append(a)
        real(self, *a)

    monkeypatch.setattr(tesseract._Api, "__init__", counted)
    monkeypatch.setattr(pagepool, "_library_checked", False)
    page = render_page(list(TEXTS.values())[2], 200)
    seen: list[int] = []

    def worker() -> None:  # a thread of its own: its (thread-local) loaded models start empty
        pagepool.warm_up()
        seen.append(len(made))
        pagepool.ocr_page(pagepool.PageTask(1, pickle.dumps(page), 200, 200, "L", ocr.OcrSettings(), 150, False))
        seen.append(len(made))

    try:
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    finally:
        tesseract.use_library(False)
    assert seen[0] >= 1 and seen == [seen[0], seen[0]]


def test_pages_are_fed_lazily_and_results_come_in_page_order(tmp_path: Path) -> None:
    """At most 2 × workers pages are taken from the source before the first result is handed back."""
    page = render_page(list(TEXTS.values())[0], 150)
    pulled: list[int] = []
    first_result_at: list[int] = []

    def tasks() -> Any:
        from workers.pages import SourcePage

        for n in range(1, 9):
            pulled.append(n)
            yield pagepool.PageTask.make(SourcePage(n, page.copy(), 150, "gray"), 150, pagepool.ocr.OcrSettings(),
                                         200, False)  # fmt: skip

    runner = pagepool.PageRunner(2)
    assert not runner.inline and runner.window == 4
    order = []
    for out in runner.run(tasks(), lambda: None):
        if not first_result_at:
            first_result_at.append(len(pulled))
        order.append(out.source)
    assert order == list(range(1, 9))
    assert first_result_at[0] <= 5  # the window (4) and the one the generator is asked for to refill it


def test_a_dead_page_process_fails_the_run_as_an_attempt_and_the_pool_is_replaced(tmp_path: Path) -> None:
    ctx = Context(Settings(data_dir=tmp_path / "data", page_workers=2, render_dpi=200))
    try:
        doc = _doc(ctx, tmp_path, 10)
        pagepool.shared_pool(2)

        def kill_one() -> None:  # once the first page is done (a fixed delay raced a fast host)
            wait_for(lambda: len(ctx.load_manifest(doc).pages) >= 1, 120, interval=0.05, what="one page done")
            os.kill(pagepool.pool_pids()[0], signal.SIGKILL)

        killer = threading.Thread(target=kill_one, daemon=True)
        killer.start()
        with pytest.raises(pagepool.PagePoolBroken, match="page process"):
            process_document(ctx, doc)
        killer.join()
        m = ctx.load_manifest(doc)
        assert m.status == "queued" and m.attempts == 1 and "PagePoolBroken" in (m.error or "")
        process_document(ctx, doc)  # a new pool
        m = ctx.load_manifest(doc)
        assert m.status == "done" and len(m.pages) == 10 and m.attempts == 2
    finally:
        ctx.close()


def test_page_routes_serve_the_preview_and_old_documents_still_display(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", page_workers=2, render_dpi=300)
    ctx = Context(settings)
    try:
        doc = _doc(ctx, tmp_path, 1)
        process_document(ctx, doc)
        m = ctx.load_manifest(doc)
        assert m.status == "done" and m.pages[0].width > 1600
        legacy = _doc(ctx, tmp_path, 1, "old.pdf", first=1)  # the layout of documents processed before previews
        process_document(ctx, legacy)
        big = Image.new("L", (m.pages[0].width, m.pages[0].height), 255)
        buf = io.BytesIO()
        big.save(buf, "JPEG")
        ctx.store.delete(page_key(legacy, 1, "preview.jpg"))
        ctx.store.put_bytes(page_key(legacy, 1, "jpg"), buf.getvalue(), "image/jpeg")
    finally:
        ctx.close()
    with TestClient(create_app(settings)) as c:
        authorize(c, settings)
        h: dict[str, str] = {}
        r = c.get(f"/documents/{doc}/pages/1", headers=h)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(r.content)) as im:
            assert max(im.size) == 1600
        r = c.get(f"/documents/{legacy}/pages/1", headers=h)
        assert r.status_code == 200 and r.content == buf.getvalue()
        for d in (doc, legacy):
            r = c.get(f"/documents/{d}/pages/1/thumb", headers=h)
            assert r.status_code == 200
            with Image.open(io.BytesIO(r.content)) as im:
                assert max(im.size) <= 340
        assert c.get(f"/documents/{doc}/pages/2", headers=h).status_code == 404


@pytest.mark.parametrize("keep", [False, True])
def test_blank_pages_are_listed_not_kept_unless_asked(tmp_path: Path, keep: bool) -> None:
    ctx = Context(Settings(data_dir=tmp_path / "data", page_workers=2, render_dpi=200, keep_blank_pages=keep))
    try:
        doc = _doc(ctx, tmp_path, 4, blank=(2,))
        process_document(ctx, doc)
        m = ctx.load_manifest(doc)
        assert m.status == "done", m.error
        with pikepdf.open(io.BytesIO(ctx.store.get_bytes(f"documents/{doc}/out/document.pdf"))) as pdf:
            archived = len(pdf.pages)
        if keep:
            assert m.blank_pages == [] and [p.source_page for p in m.pages] == [1, 2, 3, 4] and archived == 4
        else:
            assert m.blank_pages == [2]
            assert [(p.number, p.source_page) for p in m.pages] == [(1, 1), (2, 3), (3, 4)]
            assert archived == 3 and ctx.index.page_count(doc) == 3 and m.page_count == 3
            assert not ctx.store.exists(page_key(doc, 4, "txt"))
        assert ctx.store.get_bytes(m.original_key)  # the original keeps every page
    finally:
        ctx.close()


def test_a_small_document_is_not_held_back_behind_a_large_one() -> None:
    """Two documents share the page pool: the large one holds at most 2 × workers pages in it, so a small
    document started while it runs is done after a few of its pages, not after all of them."""
    from workers.pages import SourcePage

    page = render_page(list(TEXTS.values())[1], 150)
    settings = pagepool.ocr.OcrSettings()
    done: list[str] = []
    lock = threading.Lock()
    started = threading.Event()

    def tasks(name: str, n: int) -> Any:
        for k in range(1, n + 1):
            yield pagepool.PageTask.make(SourcePage(k, page.copy(), 150, "gray"), 150, settings, 200, False)

    def run(name: str, n: int) -> None:
        for out in pagepool.PageRunner(2).run(tasks(name, n), lambda: None):
            with lock:
                done.append(f"{name}{out.source}")
            started.set()

    big = threading.Thread(target=run, args=("big", 12))
    big.start()
    assert started.wait(600)
    run("small", 1)
    big.join()
    # big1 done; then at most the window (4) of big pages queued before small1, and a few refills racing it on a
    # loaded machine (unbounded: all 12 before it)
    assert done.index("small1") <= 8 < len(done) - 1, done
