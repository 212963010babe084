"""OCR quality and speed, side by side, on ../shared/ocr-eval sets.

    .venv/bin/python bench/ocr_quality.py [--sets dev dev/scan_sim synth sev2] [--configs raw-debian raw-best sohoa]
                                          [--jobs 2] [--limit N] [--save-dir bench/out/pred]

Configurations measured in the same run on the same pages, interleaved page by page (one tesseract
thread per page, --jobs pages in parallel; `--ocr-option psm=4` passes an OcrSettings field to sohoa):
  raw-debian  `tesseract IMG - -l vie` with Debian's model
  raw-best    the same with the tessdata_best (int) model
  sohoa       the sohoa pipeline (ocr.process_page: cleanup, orientation, deskew, OCR, post-correction)
  ocrmypdf    `ocrmypdf --deskew --clean --rotate-pages` with the best model, when ocrmypdf (and unpaper for
              --clean) is installed (`pip install ocrmypdf`, `apt-get install unpaper`)
Set `sev2` is generated on first use with `make_synthetic.py --severity 2 --seed 77 --n 10` into bench/out/.
CER/WER: NFC + whitespace-collapsed Levenshtein (same normalisation as score.py), micro-averaged.
The ground truth is only read to score; nothing in sohoa is derived from it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rapidfuzz.distance import Levenshtein

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent / "shared" / "ocr-eval"
OUT = ROOT / "bench" / "out"


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", s)).strip()


def ensure_sev2() -> Path:
    d = OUT / "sev2"
    if not (d / "synth_0009.txt").exists():
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(EVAL / "make_synthetic.py"), "--severity", "2", "--seed", "77",
                        "--n", "10", "--out", str(d)], check=True)  # fmt: skip
    return d


def pages_of(set_name: str) -> list[Path]:
    folder = ensure_sev2() if set_name == "sev2" else EVAL / set_name
    return sorted(p for p in folder.iterdir() if p.suffix in (".png", ".jpg") and p.with_suffix(".txt").exists())


def _raw(img: Path, tessdata: str) -> str:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    cmd = ["tesseract", str(img), "stdout", "-l", "vie", "--tessdata-dir", tessdata]
    return subprocess.run(cmd, capture_output=True, env=env, check=True).stdout.decode("utf-8", "replace")


def ocrmypdf_bin() -> str | None:
    here = Path(sys.executable).parent / "ocrmypdf"
    return str(here) if here.exists() else shutil.which("ocrmypdf")


def _ocrmypdf_tessdata(tessdata: str) -> str:
    """OCRmyPDF needs Tesseract's configs/ (hocr, txt) beside the model: a folder of links to both."""
    from ocr.tesseract import SYSTEM_TESSDATA

    d = Path(tempfile.mkdtemp(prefix="sohoa-bench-tessdata-"))
    for folder in (Path(SYSTEM_TESSDATA[0]), Path(tessdata)):  # the best model replaces Debian's
        for src in folder.iterdir():
            (d / src.name).unlink(missing_ok=True)
            (d / src.name).symlink_to(src.resolve())
    return str(d)


def _ocrmypdf(img: Path, tessdata: str) -> str:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1", "TESSDATA_PREFIX": os.environ["SOHOA_BENCH_OCRMYPDF_TESSDATA"]}
    with tempfile.TemporaryDirectory() as tmp:
        out, side = Path(tmp) / "o.pdf", Path(tmp) / "o.txt"
        subprocess.run([str(ocrmypdf_bin()), "-q", "-l", "vie", "--deskew", "--clean", "--rotate-pages",
                        "--image-dpi", "300", "--output-type", "pdf", "--sidecar", str(side), "--jobs", "1",
                        str(img), str(out)], env=env, check=True)  # fmt: skip
        return side.read_text(encoding="utf-8")


def run_one(args: tuple[str, str]) -> tuple[str, str, float]:
    config, path = args
    img = Path(path)
    from ocr.tesseract import SYSTEM_TESSDATA, resolve_model

    t = time.perf_counter()
    if config == "raw-debian":
        text = _raw(img, SYSTEM_TESSDATA[0])
    elif config == "raw-best":
        text = _raw(img, resolve_model(None)[0])
    elif config == "ocrmypdf":
        text = _ocrmypdf(img, resolve_model(None)[0])
    else:
        from PIL import Image

        from ocr import OcrSettings, process_page

        opts = json.loads(os.environ.get("SOHOA_BENCH_OCR_OPTIONS", "{}"))
        text = process_page(Image.open(img), 300, OcrSettings(**opts)).text
    return path, text, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", nargs="+", default=["dev", "dev/scan_sim", "synth", "sev2"])
    ap.add_argument("--configs", nargs="+", default=["raw-debian", "raw-best", "sohoa", "ocrmypdf"])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--save-dir", type=Path)
    ap.add_argument("--ocr-option", action="append", default=[], metavar="NAME=VALUE",
                    help="an OcrSettings field for sohoa (JSON value), e.g. psm=4")  # fmt: skip
    args = ap.parse_args()
    opts = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.ocr_option)}
    os.environ["SOHOA_BENCH_OCR_OPTIONS"] = json.dumps(opts)  # read by the worker processes
    if opts:
        print(f"sohoa options: {opts}")
    from ocr.tesseract import resolve_model

    ocrmypdf_ok = bool(ocrmypdf_bin() and shutil.which("unpaper"))
    configs = [c for c in args.configs if c != "ocrmypdf" or ocrmypdf_ok]
    if "ocrmypdf" in args.configs and "ocrmypdf" not in configs:
        print("ocrmypdf: not installed (pip install ocrmypdf; apt-get install unpaper), skipped")
    if "ocrmypdf" in configs:  # made before the worker processes start
        os.environ["SOHOA_BENCH_OCRMYPDF_TESSDATA"] = _ocrmypdf_tessdata(resolve_model(None)[0])
    from ocr.lexicon import syllable_freq, syllable_pairs, word_list_path

    print(
        f"model: {resolve_model(None)[1]}; lexicon: {len(syllable_freq())} syllables (wordfreq), "
        f"{len(syllable_pairs())} syllable pairs ({word_list_path()}); jobs={args.jobs}",
        flush=True,
    )
    rows = []
    t_start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        for set_name in args.sets:
            pages = pages_of(set_name)[: args.limit or None]
            # the configurations interleaved page by page, so that a machine slowing down or speeding up
            # during the run weighs on all of them alike (the time ratios are the figures that matter)
            done = list(pool.map(run_one, [(c, str(p)) for p in pages for c in configs]))
            for k, config in enumerate(configs):
                results = done[k :: len(configs)]
                ce = cn = we = wn = 0
                secs = []
                for path, text, s in results:
                    gt = norm(Path(path).with_suffix(".txt").read_text(encoding="utf-8"))
                    pred = norm(text)
                    ce += Levenshtein.distance(pred, gt)
                    cn += len(gt)
                    we += Levenshtein.distance(pred.split(), gt.split())
                    wn += len(gt.split())
                    secs.append(s)
                    if args.save_dir:
                        d = args.save_dir / config / set_name.strip("/").replace("/", "_")  # never into the set
                        d.mkdir(parents=True, exist_ok=True)
                        (d / (Path(path).stem + ".txt")).write_text(text, encoding="utf-8")
                rows.append((set_name, config, 100 * ce / cn, 100 * we / wn, statistics.median(secs), len(pages)))
                print(
                    f"{set_name:>13} {config:>11}: CER {rows[-1][2]:6.2f} %  WER {rows[-1][3]:6.2f} %  "
                    f"median {rows[-1][4]:.2f} s/page  ({len(pages)} pages)",
                    flush=True,
                )
    print(f"\nwall time {time.perf_counter() - t_start:.0f} s")
    print("\n| set | configuration | CER % | WER % | median s/page | × raw-best time |")
    print("|---|---|---|---|---|---|")
    for set_name, config, cer, wer, med, _n in rows:
        base = next((r[4] for r in rows if r[0] == set_name and r[1] == "raw-best"), None)
        ratio = f"{med / base:.2f}" if base else "—"
        print(f"| {set_name} | {config} | {cer:.2f} | {wer:.2f} | {med:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
