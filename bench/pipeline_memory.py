"""Peak memory of a worker processing one long PDF: flat in the page count? (goal ≤ 1 GiB at 2,000 pages)

    .venv/bin/python bench/pipeline_memory.py [--pages 300 2000] [--workers 0]
    .venv/bin/python bench/pipeline_memory.py --pages 20 100     # smoke test, about a minute

Each run makes a PDF of N small generated pages (A6 at 300 dpi, two lines of text: fast to OCR, so 2,000 pages
take minutes; the per-page memory of a full A4 page is measured by bench/pipeline_speed.py), processes it as a
worker does (:func:`workers.process.process_document`, embedded backends, the page pool), and prints the peak
resident memory (VmHWM, reset before each run) of the worker process and of each page process, with seconds
and pages/min. Shared, noisy machine: times vary; memory does not much.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import img2pdf
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest import UploadItem, accept_batch  # noqa: E402
from ingest.service import Accepted  # noqa: E402
from sohoa.context import Context  # noqa: E402
from sohoa.settings import Settings  # noqa: E402
from workers import pagepool  # noqa: E402
from workers.process import process_document  # noqa: E402


def status_kb(field: str, pid: int | str = "self") -> int:
    """A memory figure of /proc/PID/status in kB (``VmHWM``: peak resident, ``VmRSS``: resident now); 0 if gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def hwm_kb(pid: int | str = "self") -> int:
    return status_kb("VmHWM", pid)


def reset_hwm(pid: int | str = "self") -> None:
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def small_page(n: int) -> bytes:
    img = Image.new("L", (1240, 1748), 255)  # A6 at 300 dpi
    draw = ImageDraw.Draw(img)
    try:
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.truetype("DejaVuSans.ttf", 40)
    except OSError:
        font = ImageFont.load_default()
    draw.text((120, 200), f"Trang số {n}", font=font, fill=0)
    draw.text((120, 280), "Ủy ban nhân dân xã Hòa Bình", font=font, fill=0)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80, dpi=(300, 300))
    return buf.getvalue()


def make_pdf(path: str, n: int) -> None:
    """Written by a child process: the pages and the 70 MB PDF made in the measured process would stay in its
    heap (freed, not returned to the system) and count in its peak (300 → 2,000 pages read 135 → 345 MiB)."""
    out = img2pdf.convert([small_page(i + 1) for i in range(n)])
    assert out is not None
    Path(path).write_bytes(bytes(out))


def _nap(s: float) -> int:
    time.sleep(s)
    return os.getpid()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, nargs="+", default=[300, 2000])
    ap.add_argument("--workers", type=int, default=0, help="SOHOA_PAGE_WORKERS (0 = cores)")
    args = ap.parse_args()
    n_workers = pagepool.page_workers(args.workers)
    pool = pagepool.shared_pool(n_workers)
    list(pool.map(_nap, [0.5] * n_workers))  # every page process started
    rows = []
    with tempfile.TemporaryDirectory(prefix="sohoa-memory-bench-") as t:
        tmp = Path(t)
        for n in args.pages:
            pdf = tmp / f"p{n}.pdf"
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as maker:
                maker.submit(make_pdf, str(pdf), n).result()
            settings = Settings(data_dir=tmp / f"data{n}", page_workers=n_workers, max_pages=max(n, 2000),
                                max_upload_mb=2048)  # fmt: skip
            ctx = Context(settings)
            [acc] = accept_batch(ctx, [UploadItem(pdf, pdf.name, "000.00.06.H56-261105-0001", "input")])
            assert isinstance(acc, Accepted)
            for pid in [*map(str, pagepool.pool_pids()), "self"]:
                reset_hwm(pid)
            start = status_kb("VmRSS")
            t0 = time.perf_counter()
            process_document(ctx, acc.manifest.id)
            secs = time.perf_counter() - t0
            m = ctx.load_manifest(acc.manifest.id)
            kids = [hwm_kb(pid) for pid in pagepool.pool_pids()]
            rows.append((n, m.status, len(m.pages), len(m.blank_pages), secs, hwm_kb(), kids))
            print(f"{n} pages: {m.status} ({len(m.pages)} kept, {len(m.blank_pages)} blank) in {secs:.0f} s, "
                  f"worker {hwm_kb() / 1024:.0f} MiB (resident at the start {start / 1024:.0f}), page processes "
                  f"{', '.join(f'{k / 1024:.0f}' for k in kids)} MiB", flush=True)  # fmt: skip
            ctx.close()
    pagepool.shutdown()
    print("\npages  status  s       pages/min  worker peak MiB  page processes peak MiB")
    for n, status, _kept, _blank, secs, parent, kids in rows:
        print(f"{n:5}  {status:6} {secs:6.0f}  {n / secs * 60:9.1f}  {parent / 1024:15.0f}  "
              f"{' '.join(f'{k / 1024:.0f}' for k in kids)}")  # fmt: skip
    print("(VmHWM, reset before each run; goal: ≤ 1024 MiB per process at 2,000 pages, flat in the page count)")


if __name__ == "__main__":
    main()
