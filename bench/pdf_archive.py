"""The archival PDF/A (sohoa.pdfa): bytes per page, text-layer quality, memory and speed.

    .venv/bin/python bench/pdf_archive.py [--sets dev dev/scan_sim] [--limit N] [--memory 300 2000]

1. Pages of ../shared/ocr-eval (default: dev/*.png, clean 300 dpi renders, and dev/scan_sim/*.jpg,
   office-scan simulations): each page is OCRed (ocr.process_page) and written as a one-page PDF/A
   with each encoding choice, side by side:
     auto     ocr.pdf.archive_page(writer, res, budget=1.2 × the input file's bytes): encode_page with
              that budget less the text layer - what the worker does
     jpeg75   JPEG quality 75 of res.image (gray)
     g4       CCITT G4 of res.image binarised (Otsu), whether or not it looks lossless
     original the input file's own bytes as the page image (only valid when cleanup changed nothing:
              listed to show what keeping the scan costs)
   Printed per page: input bytes, output bytes per choice, ratio of auto to input, the encoding
   auto chose; CER (NFC, whitespace collapsed, as bench/ocr_quality.py) vs the ground truth of
   res.text (/text) and of `pdftotext` of the auto PDF, and their difference; the same for
   `pdftotext -raw` (text in content-stream order, which is res.text's order: the order viewers
   search in), since pdftotext's own layout analysis may order side-by-side blocks differently.
2. Memory: one child process per run writes N pages (a real page's image and words, the bytes
   copied per page as if new) with the streaming ArchiveWriter, and - for 300 pages - the previous
   assembly (one PDF per page, concatenated by pikepdf as workers/process.py did): resident memory
   before the first page and the highest sampled while writing (every 25 pages, around the save),
   the process's peak (ru_maxrss, which includes import-time transients), pages/s, file size.
The machine is shared with other work (2 cores): times are noisy; sizes, CER and RSS are not.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import resource
import subprocess
import sys
import tempfile
import time
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
from rapidfuzz.distance import Levenshtein  # noqa: E402

from ocr.pdf import archive_page  # noqa: E402
from ocr.textlayer import corrected_words  # noqa: E402
from sohoa.pdfa import ArchiveMeta, ArchiveWriter, PageImage, _ccitt_g4  # noqa: E402

EVAL = ROOT.parent / "shared" / "ocr-eval"
META = ArchiveMeta("bench", "000.00.01.H01-261130-0001", "bench", "bench", "bench", datetime(2026, 11, 30, tzinfo=UTC))


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", s)).strip()


def cer_counts(text: str, gt: str) -> tuple[int, int]:
    g = norm(gt)
    return Levenshtein.distance(norm(text), g), len(g)


def _label(p: Path) -> str:
    """*p* relative to the evaluation set when it is in it (sets may also be given as other folders)."""
    return str(p.relative_to(EVAL)) if p.is_relative_to(EVAL) else str(p)


def rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(ln.split()[1]) for ln in fh if ln.startswith("VmRSS:")) / 1024


def one_page_pdf(path: Path, image: PageImage, words: list, frame: tuple[int, int], dpi: int) -> int:
    with ArchiveWriter(path, META) as w:
        w.add_page(image, words, frame, (frame[0] * 72 / dpi, frame[1] * 72 / dpi))
    return path.stat().st_size


def page_sizes(args: argparse.Namespace) -> Path | None:
    from PIL import Image

    from ocr import process_page

    files: list[Path] = []
    for s in args.sets:
        files += sorted(
            p for p in (EVAL / s).iterdir() if p.suffix in (".png", ".jpg") and p.with_suffix(".txt").exists()
        )
    if args.limit:
        files = files[: args.limit]
    if not files:
        print(f"no pages under {EVAL}")
        return None
    print(
        f"{'page':44} {'input':>9} {'auto':>9} {'jpeg75':>9} {'g4':>8} {'original':>9} {'auto/in':>7} "
        f"{'chosen':16} {'CER/text':>8} {'CER pdf':>8} {'diff':>6} {'raw':>6} {'s':>5}"
    )
    tot = {"input": 0, "auto": 0, "jpeg75": 0, "g4": 0, "original": 0}
    per_set: dict[str, list[int]] = {}
    errs = {"text": [0, 0], "pdf": [0, 0], "raw": [0, 0]}
    kinds: dict[str, int] = {}
    times: list[float] = []
    keep = None
    tmp = Path(tempfile.mkdtemp(prefix="pdfa-bench-"))
    for f in files:
        res = process_page(Image.open(f), 300)
        gt = f.with_suffix(".txt").read_text(encoding="utf-8")
        h, w = res.image.shape[:2]
        words = corrected_words(res.hocr, res.text)
        inp = f.stat().st_size
        t0 = time.perf_counter()
        with ArchiveWriter(tmp / "auto.pdf", META) as wr:  # what the worker does
            auto = archive_page(wr, res, budget=int(1.2 * inp))
        t_auto = time.perf_counter() - t0
        times.append(t_auto)
        ok, jpg = cv2.imencode(".jpg", res.image, [cv2.IMWRITE_JPEG_QUALITY, 75, cv2.IMWRITE_JPEG_OPTIMIZE, 1])
        j75 = PageImage(encoded=jpg.tobytes(), width=w, height=h)
        _, binary = cv2.threshold(
            res.image if res.image.ndim == 2 else cv2.cvtColor(res.image, cv2.COLOR_BGR2GRAY),
            0,
            255,
            cv2.THRESH_BINARY | cv2.THRESH_OTSU,
        )
        g4d = _ccitt_g4(binary > 0)
        assert g4d is not None
        g4 = PageImage(encoded=g4d[0], filter="CCITTFaxDecode", width=w, height=h, bpc=1,
                       decode_parms={"K": -1, "Columns": w, "Rows": h, "BlackIs1": g4d[1]})  # fmt: skip
        sizes = {"input": inp}
        sizes["auto"] = (tmp / "auto.pdf").stat().st_size
        for name, img in (("jpeg75", j75), ("g4", g4)):
            sizes[name] = one_page_pdf(tmp / f"{name}.pdf", img, words, (w, h), res.dpi or 300)
        if f.suffix == ".jpg":
            orig = PageImage.from_jpeg(f.read_bytes())
            sizes["original"] = one_page_pdf(tmp / "orig.pdf", orig, words, (w, h), res.dpi or 300)
        else:
            sizes["original"] = 0
        text = subprocess.run(
            ["pdftotext", str(tmp / "auto.pdf"), "-"], capture_output=True, text=True, check=True
        ).stdout
        raw = subprocess.run(
            ["pdftotext", "-raw", str(tmp / "auto.pdf"), "-"], capture_output=True, text=True, check=True
        ).stdout
        e_raw, _ = cer_counts(raw, gt)
        errs["raw"][0] += e_raw
        errs["raw"][1] += len(norm(gt))
        e_text, n = cer_counts(res.text, gt)
        e_pdf, _ = cer_counts(text, gt)
        errs["text"][0] += e_text
        errs["pdf"][0] += e_pdf
        errs["text"][1] += n
        errs["pdf"][1] += n
        for k in tot:
            tot[k] += sizes[k]
        key = _label(f.parent)
        per_set.setdefault(key, [0, 0])
        per_set[key][0] += inp
        per_set[key][1] += sizes["auto"]
        kinds[auto.kind] = kinds.get(auto.kind, 0) + 1
        print(f"{_label(f):44} {inp:9d} {sizes['auto']:9d} {sizes['jpeg75']:9d} {sizes['g4']:8d} "
              f"{sizes['original']:9d} {sizes['auto'] / inp:7.2f} {auto.kind:16} {100 * e_text / n:8.3f} "
              f"{100 * e_pdf / n:8.3f} {100 * (e_pdf - e_text) / n:+6.3f} "
              f"{100 * (e_raw - e_text) / n:+6.3f} {t_auto:5.2f}")  # fmt: skip
        if keep is None or f.suffix == ".jpg":
            keep = (auto, words, (w, h), res.dpi or 300)
    print(
        f"{'total':44} {tot['input']:9d} {tot['auto']:9d} {tot['jpeg75']:9d} {tot['g4']:8d} {tot['original']:9d} "
        f"{tot['auto'] / tot['input']:7.2f}"
    )
    for k, (i, o) in per_set.items():
        print(f"  set {k}: auto / input = {o / i:.3f} ({o} / {i} bytes)")
    print(f"  encodings chosen: {kinds}")
    print(
        f"  archive_page (encode + write one page): {len(times) / sum(times):.2f} pages/s, slowest {max(times):.2f} s"
    )
    ct, cp, cr = (100 * errs[k][0] / errs[k][1] for k in ("text", "pdf", "raw"))
    print(f"  CER micro: /text {ct:.3f} %, pdftotext of the PDF/A {cp:.3f} % ({cp - ct:+.3f} points), "
          f"pdftotext -raw (content order, as viewers search) {cr:.3f} % ({cr - ct:+.3f} points)")  # fmt: skip
    sample = tmp / "sample.pkl"
    with open(sample, "wb") as fh:
        pickle.dump(keep, fh)
    return sample


def child_memory(n: int, mode: str, sample: Path) -> None:
    """Run in a child: write n pages, print one result line."""
    with open(sample, "rb") as fh:
        image, words, frame, dpi = pickle.load(fh)
    base = current_rss_mb()
    during = base
    out = Path(tempfile.mkdtemp(prefix="pdfa-mem-")) / "doc.pdf"
    size_pt = (frame[0] * 72 / dpi, frame[1] * 72 / dpi)
    t = time.perf_counter()
    if mode == "stream":
        with ArchiveWriter(out, META) as w:
            for k in range(n):
                img = PageImage(**{**image.__dict__, "encoded": bytes(bytearray(image.encoded))})
                w.add_page(img, words, frame, size_pt)
                if k % 25 == 0:
                    during = max(during, current_rss_mb())
    else:  # the previous assembly: one PDF per page on disk, concatenated by pikepdf
        import pikepdf

        pages = []
        for k in range(n):
            p = out.with_name(f"page-{k:04d}.pdf")
            one_page_pdf(p, image, words, frame, dpi)
            pages.append(p)
        with pikepdf.new() as doc:
            opened = [pikepdf.open(p) for p in pages]
            for src in opened:
                doc.pages.extend(src.pages)
            during = max(during, current_rss_mb())
            doc.save(out)
            during = max(during, current_rss_mb())
            for src in opened:
                src.close()
    dt = time.perf_counter() - t
    size = out.stat().st_size
    during = max(during, current_rss_mb())
    print(f"{mode:8} {n:6d} pages  RSS before page 1 {base:6.1f} MB, max while writing {during:6.1f} MB "
          f"(+{during - base:5.1f}), process peak {rss_mb():6.1f} MB"
          f"  {n / dt:7.1f} pages/s  {size / 1e6:8.1f} MB")  # fmt: skip
    for p in out.parent.iterdir():
        p.unlink()
    out.parent.rmdir()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["dev", "dev/scan_sim"])
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--memory", nargs="*", type=int, default=[300, 2000])
    ap.add_argument("--child", nargs=3, metavar=("N", "MODE", "SAMPLE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_memory(int(args.child[0]), args.child[1], Path(args.child[2]))
        return
    print(f"machine: {os.cpu_count()} cores, shared with other work; times are noisy")
    sample = page_sizes(args)
    if sample is None or not args.memory:
        return
    with open(sample, "rb") as fh:
        image = pickle.load(fh)[0]
    print(f"\nmemory: each page {len(image.encoded)} image bytes ({image.kind}) + its text layer")
    for n in args.memory:
        modes = ["stream", "pikepdf"] if n <= 300 else ["stream"]
        for mode in modes:
            subprocess.run([sys.executable, __file__, "--child", str(n), mode, str(sample)], check=True)


if __name__ == "__main__":
    main()
