"""End-to-end throughput on the embedded default: pages/min for a generated batch.

    .venv/bin/python bench/pipeline_speed.py [--docs 6] [--pages 3] [--threads 2]

Uploads generated multi-page scans into a temporary data dir, waits until every document is done,
and prints pages/min, per-stage seconds per page and the p95 search latency over the result.
Figures depend on the machine: compare runs made side by side.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from ingest import UploadItem, accept_batch
from ingest.service import Accepted
from sohoa.context import Context
from sohoa.demo import TEXTS, pdf_bytes, render_page
from sohoa.models import SearchQuery, Status
from sohoa.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=6)
    ap.add_argument("--pages", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    texts = list(TEXTS.values())
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", worker_threads=args.threads)
        ctx = Context(settings)
        items = []
        for d in range(args.docs):
            pages = [render_page(texts[(d + p) % len(texts)], 300, skew=(p - 1) * 0.8) for p in range(args.pages)]
            path = Path(tmp) / f"doc{d}.pdf"
            path.write_bytes(pdf_bytes(pages))
            items.append(UploadItem(path, path.name, f"000.00.06.H56-261105-{d:04d}", "input"))
        ctx.queue.start_worker(args.threads)
        t0 = time.perf_counter()
        ids = [r.manifest.id for r in accept_batch(ctx, items) if isinstance(r, Accepted)]
        while not all(Status(ctx.load_manifest(i).status).terminal for i in ids):
            time.sleep(0.2)
        elapsed = time.perf_counter() - t0
        ms = [ctx.load_manifest(i) for i in ids]
        n_pages = sum(m.page_count for m in ms)
        print(f"documents: {len(ms)} ({sum(m.status == 'done' for m in ms)} done), pages: {n_pages}")
        print(f"wall time: {elapsed:.1f} s -> {n_pages / elapsed * 60:.1f} pages/min with {args.threads} thread(s)")
        stages: dict[str, list[float]] = {}
        for m in ms:
            for k, v in m.timings.items():
                stages.setdefault(k, []).append(v / max(1, m.page_count))
        for k, vs in sorted(stages.items()):
            print(f"  {k:>16}: {statistics.mean(vs):.3f} s/page")
        lat = []
        for q in ["ho so dat dai", "quyền sử dụng đất", "khai sinh", "quyet dinh cap giay"] * 25:
            t = time.perf_counter()
            ctx.index.search(SearchQuery(q=q))
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        print(
            f"search latency over {len(lat)} queries: p50 {lat[len(lat) // 2]:.1f} ms, "
            f"p95 {lat[int(len(lat) * 0.95)]:.1f} ms"
        )
        ctx.close()


if __name__ == "__main__":
    main()
