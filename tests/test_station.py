"""The scanning station: cover sheets read back from scans (150 dpi, skewed, upside down, QR unreadable), a
generated stack of 20 dossiers split with 0 mis-assigned pages, the stack over HTTP and the CLI, and a hot
folder fed 50 files while its watcher is restarted twice (each file ingested once)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import img2pdf
import numpy as np
import pikepdf
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api import create_app
from ingest.stack import Cover, SheetInfo, cover_pdf, read_cover, split_stack
from sohoa.context import Context
from sohoa.demo import render_page
from sohoa.settings import DEFAULT_DOSSIER_CODE_PATTERN as PATTERN
from sohoa.settings import Settings

import fixtures
from deploy import ROOT, authorize, wait_for
from fixtures import cover_image, make_stack, scanned

CODE = "000.00.06.H56-260715-0361"


@pytest.mark.parametrize(
    ("dpi", "skew", "turn"), [(150, 0, 0), (150, 5, 0), (150, -5, 180), (200, 2, 90), (300, 0, 270)]
)
def test_cover_sheet_is_read_back(dpi: int, skew: float, turn: int) -> None:
    cover = read_cover(cover_image(CODE, dpi, skew=skew, turn=turn), PATTERN, ocr_fallback=False)
    assert cover == Cover(CODE, "input", "Đơn đề nghị")


def test_content_page_is_not_a_cover() -> None:
    page = scanned(render_page(["ỦY BAN NHÂN DÂN", "QUYẾT ĐỊNH số 12/QĐ-UBND", "Mã hồ sơ " + CODE], 150), 150)
    assert read_cover(page, PATTERN) is None


def test_cover_without_readable_qr_is_read_by_ocr_and_flagged() -> None:
    img = np.array(cover_image(CODE, 200))
    h, w = img.shape
    img[int(h * 0.07) : int(h * 0.37), int(w * 0.55) :] = 255  # the QR torn off
    cover = read_cover(Image.fromarray(img).rotate(180), PATTERN)
    assert cover is not None and cover.code == CODE and cover.by_ocr


def test_cover_pdf_embeds_its_fonts() -> None:
    data = cover_pdf([SheetInfo(CODE, required=["Đơn đề nghị", "Giấy chứng nhận quyền sử dụng đất"])] * 2)
    pdf = pikepdf.open(io.BytesIO(data))
    assert len(pdf.pages) == 2 and abs(float(pdf.pages[0].mediabox[2]) - 595.28) < 1  # A4
    fonts = [f for p in pdf.pages for f in p.Resources.Font.values()]
    assert fonts and all("/FontFile2" in f.DescendantFonts[0].FontDescriptor for f in fonts)


def test_stack_of_20_dossiers_is_split_without_misassigned_pages(tmp_path: Path) -> None:
    data, expected, _ = make_stack(20)
    path = tmp_path / "chồng hồ sơ.pdf"
    path.write_bytes(data)
    t = time.perf_counter()
    parts = split_stack(path, "application/pdf", PATTERN, ocr_fallback=False)
    print(f"split 20 dossiers in {time.perf_counter() - t:.1f} s")
    assert {p.code: p.pages for p in parts} == expected  # right codes, right pages, covers removed
    for p in parts:
        assert len(pikepdf.open(io.BytesIO(p.data)).pages) == len(p.pages)


def test_stack_pages_that_are_scans_are_taken_without_rendering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages are read through the format registry, as the worker reads them: a scanner's PDF page (one image)
    is that image, never sent to pdftoppm; a multi-page TIFF stack at 300 dpi is looked at at 150 dpi."""
    import pdf2image

    from ingest.stack import _pages

    def no_render(*args: object, **kwargs: object) -> None:
        raise AssertionError("a page that is one scanned image was rendered")

    monkeypatch.setattr(pdf2image, "convert_from_path", no_render)
    data, expected, _ = make_stack(4, seed=5)
    path = tmp_path / "chồng.pdf"
    path.write_bytes(data)
    parts = split_stack(path, "application/pdf", PATTERN, ocr_fallback=False)
    assert {p.code: p.pages for p in parts} == expected
    frames = [cover_image(CODE, 300), scanned(render_page(["TRANG 1 CỦA HỒ SƠ", "Nội dung"], 300), 300)]
    tif = tmp_path / "chồng.tif"
    frames[0].save(tif, "TIFF", save_all=True, append_images=frames[1:], dpi=(300, 300), compression="tiff_lzw")
    assert [im.size for im in _pages(tif, "image/tiff")] == [(round(f.width / 2), round(f.height / 2)) for f in frames]
    [part] = split_stack(tif, "image/tiff", PATTERN, ocr_fallback=False)
    assert part.code == CODE and part.pages == [1]


def test_stack_without_sheets_stays_one_document(tmp_path: Path) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(fixtures.two_page_pdf())
    parts = split_stack(path, "application/pdf", PATTERN)
    assert len(parts) == 1 and parts[0].cover is None and parts[0].pages == [0, 1]


def test_stack_over_http_and_cover_sheet_route(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", worker_threads=1)
    data, expected, _ = make_stack(4, seed=3)
    with TestClient(create_app(settings)) as c:
        authorize(c, settings)
        r = c.get(f"/dossiers/{CODE}/cover.pdf", params={"component": "Tờ khai"})
        assert r.status_code == 200 and r.content.startswith(b"%PDF")
        assert c.get("/dossiers/not-a-code/cover.pdf").status_code == 422
        leading = img2pdf.convert([fixtures.jpeg_scan()])
        stack = pikepdf.open(io.BytesIO(leading))
        stack.pages.extend(pikepdf.open(io.BytesIO(data)).pages)
        buf = io.BytesIO()
        stack.save(buf)
        r = c.post("/stacks", files={"file": ("stack.pdf", buf.getvalue(), "application/pdf")}, data={"kind": "input"})
        assert r.status_code == 202, r.text
        body = r.json()
        assert len(body["rejected"]) == 1 and "phiếu tách" in body["rejected"][0]["message"]  # the leading page
        got = {d["dossier_code"]: d["pages"] for d in body["documents"]}
        assert got == {code: len(pages) for code, pages in expected.items()}
        ctx: Context = c.app.state.sohoa.ctx  # type: ignore[attr-defined]
        for d in body["documents"]:
            wait_for(lambda i=d["id"]: ctx.load_manifest(i).status == "done", 180, what="stack part done")
        stack_file = {"file": ("stack.pdf", buf.getvalue(), "application/pdf")}
        again = c.post("/stacks", files=stack_file, data={"kind": "input"}).json()["documents"]
        assert [(d["id"], d["duplicate"]) for d in again] == [(d["id"], True) for d in body["documents"]]
        kept = c.post("/stacks", files=stack_file, data={"kind": "input", "keep_duplicate": "1"}).json()["documents"]
        assert [(d["duplicate"], d["duplicate_of"]) for d in kept] == [(False, d["id"]) for d in body["documents"]]


def _watch(folder: Path, data: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOHOA_")}
    env.update(SOHOA_DATA_DIR=str(data), SOHOA_WORKER_THREADS="1", SOHOA_LOG_LEVEL="INFO")
    with open(log, "ab") as f:
        return subprocess.Popen([sys.executable, "-m", "sohoa.cli", "watch", str(folder), "--interval", "0.3",
                                 "--settle", "1.0"], cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def test_hot_folder_ingests_50_files_once_across_two_restarts(tmp_path: Path) -> None:
    folder, data, log = tmp_path / "scans", tmp_path / "data", tmp_path / "watch.log"
    folder.mkdir()
    (folder / "Thumbs.db").write_bytes(b"x")  # a scanner's sidecar: ignored
    blobs = [fixtures.png_scan([f"Tờ khai số {i}", "Hồ sơ đất đai", f"Trang quét {i}"]) for i in range(50)]

    def drop() -> None:  # written in two halves, as a scanner over the network does
        for i, blob in enumerate(blobs):
            p = folder / f"{CODE[:-4]}{2000 + i} tờ khai.png"
            tmp = folder / (p.name + ".part")
            tmp.write_bytes(blob[: len(blob) // 2])
            p.write_bytes(blob[: len(blob) // 2])
            tmp.unlink()
            time.sleep(0.3)
            with open(p, "ab") as f:
                f.write(blob[len(blob) // 2 :])
            time.sleep(0.05)

    writer = threading.Thread(target=drop)
    watcher = _watch(folder, data, log)
    writer.start()
    try:
        time.sleep(6)
        os.killpg(watcher.pid, signal.SIGKILL)  # a crash
        watcher.wait(10)
        watcher = _watch(folder, data, log)
        time.sleep(6)
        os.killpg(watcher.pid, signal.SIGTERM)  # a clean restart
        watcher.wait(60)
        watcher = _watch(folder, data, log)
        writer.join(120)

        def handled() -> bool:
            return len(list((folder / "done").glob("*.png"))) + len(list((folder / "failed").glob("*.png"))) == 50

        wait_for(handled, 300, what="all 50 files handled")
    finally:
        if watcher.poll() is None:
            os.killpg(watcher.pid, signal.SIGTERM)
            watcher.wait(60)
        print(log.read_text(errors="replace")[-3000:])
    assert not list((folder / "failed").iterdir()), [p.name for p in (folder / "failed").iterdir()]
    assert (folder / "Thumbs.db").exists()
    ctx = Context(Settings(data_dir=data))
    try:
        manifests = [ctx.load_manifest(i) for i in ctx.manifest_ids()]
        assert len(manifests) == 50, len(manifests)  # each once: a file resubmitted after the crash is recognised
        assert len({m.sha256 for m in manifests}) == 50
        assert {m.dossier_code for m in manifests} == {f"{CODE[:-4]}{2000 + i}" for i in range(50)}
    finally:
        ctx.close()
