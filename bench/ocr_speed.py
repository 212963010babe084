"""OCR speed: sohoa's per-stage timings against raw Tesseract on the same pages, in the same run.

    .venv/bin/python bench/ocr_speed.py [--set dev/scan_sim] [--pages 6] [--jobs 2]

For every page (one Tesseract thread each, --jobs pages at a time):
  raw-best      `tesseract IMG stdout -l vie` with the tessdata_best model (text only)
  raw-best-all  the same writing txt + hOCR + PDF, as sohoa does
  sohoa         ocr.process_page (cleanup, orientation, deskew, OCR, post-correction, PDF)
Prints the median seconds per page of each, sohoa's median per stage, and pages per minute.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent / "shared" / "ocr-eval"


def run_one(args: tuple[str, str]) -> tuple[str, float, dict[str, float]]:
    config, path = args
    from ocr.tesseract import resolve_model

    tessdata = resolve_model(None)[0]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    t = time.perf_counter()
    timings: dict[str, float] = {}
    if config == "raw-best":
        cmd = ["tesseract", path, "stdout", "-l", "vie", "--tessdata-dir", tessdata]
        subprocess.run(cmd, capture_output=True, env=env, check=True)
    elif config == "raw-best-all":
        with tempfile.TemporaryDirectory() as tmp:
            outputs = [a for c in ("txt", "hocr", "pdf") for a in ("-c", f"tessedit_create_{c}=1")]
            cmd = ["tesseract", path, str(Path(tmp) / "o"), "-l", "vie", "--tessdata-dir", tessdata, *outputs]
            subprocess.run(cmd, capture_output=True, env=env, check=True)
    else:
        from PIL import Image

        from ocr import process_page

        timings = process_page(Image.open(path), 300).timings
    return config, time.perf_counter() - t, timings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="dev/scan_sim")
    ap.add_argument("--pages", type=int, default=6)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    folder = EVAL / args.set
    if not folder.is_dir():
        raise SystemExit(f"no evaluation set {folder}: needs ../shared/ocr-eval, or --set /abs/folder")
    pages = sorted(p for p in folder.iterdir() if p.suffix in (".png", ".jpg"))[: args.pages]
    configs = ["raw-best", "raw-best-all", "sohoa"]
    print(f"{len(pages)} pages of {args.set}, {args.jobs} at a time, one Tesseract thread each")
    medians: dict[str, float] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        pool.submit(run_one, ("sohoa", str(pages[0]))).result()  # warm-up: imports, lexicon
        for config in configs:
            t0 = time.perf_counter()
            res = list(pool.map(run_one, [(config, str(p)) for p in pages]))
            wall = time.perf_counter() - t0
            medians[config] = statistics.median(r[1] for r in res)
            print(f"{config:>13}: median {medians[config]:.2f} s/page, {60 * len(pages) / wall:.1f} pages/min")
            if config == "sohoa":
                stages = sorted({k for r in res for k in r[2]})
                per = {k: statistics.median(r[2].get(k, 0.0) for r in res) for k in stages}
                print("       stages: " + ", ".join(f"{k} {v:.3f}" for k, v in per.items()))
    print(f"sohoa / raw-best: {medians['sohoa'] / medians['raw-best']:.2f}×   "
          f"sohoa / raw-best-all: {medians['sohoa'] / medians['raw-best-all']:.2f}×")  # fmt: skip


if __name__ == "__main__":
    main()
