"""Stack splitting speed and errors: one scanned stack of many dossiers, split at its cover sheets.

    .venv/bin/python bench/stack_split.py [--pages 200] [--seed 7] [--no-ocr-fallback]
    .venv/bin/python bench/stack_split.py --pages 20      # smoke test, well under a minute

The stack is generated with the test generator (tests/fixtures.py: ``cover_image``, ``scanned``): per dossier
a cover sheet then 1–4 pages, each page at 150, 200 or 300 dpi, skewed (sheets ±5°, pages ±3°), some turned
(180°, and 90/270° for a few), with sensor noise and blur, saved as JPEG (quality 80) into one PDF — about 60
dossiers for 200 pages. Then :func:`ingest.stack.split_stack` runs as ``sohoa ingest --split`` does (QR by
zxing-cpp, OCR fallback on a sheet whose QR cannot be read).

Printed: generation time (not counted), split time and pages/min, and the error counts — pages given to the
wrong dossier (mis-assigned, including pages left without a code), cover sheets not recognised (missed
sheets: their page ends up inside a dossier), content pages taken for a sheet (false sheets: dropped).
The machine may be shared and noisy: the speed is indicative, the error counts are exact.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
from pathlib import Path

import img2pdf

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from ingest.stack import split_stack  # noqa: E402
from sohoa.demo import render_page  # noqa: E402
from sohoa.settings import DEFAULT_DOSSIER_CODE_PATTERN  # noqa: E402

from fixtures import cover_image, scanned  # noqa: E402


def make_stack(n_pages: int, seed: int = 7) -> tuple[bytes, dict[int, str], set[int]]:
    """A stack of *n_pages*: returns the PDF, the dossier code of each content page, the cover page indices."""
    rnd = random.Random(seed)
    images: list[bytes] = []
    owner: dict[int, str] = {}
    covers: set[int] = set()
    d = 0
    while len(images) < n_pages:
        code = f"000.00.06.H56-26{(d // 28) % 12 + 1:02d}{d % 28 + 1:02d}-{seed % 100:02d}{d % 100:02d}"
        dpi = rnd.choice([150, 200, 300])
        r = rnd.random()
        turn = 180 if r < 0.15 else 90 if r < 0.2 else 270 if r < 0.25 else 0
        sheet = cover_image(code, dpi, skew=rnd.uniform(-5, 5), turn=turn, seed=d)
        buf = io.BytesIO()
        sheet.save(buf, "JPEG", quality=80, dpi=(dpi, dpi))
        covers.add(len(images))
        images.append(buf.getvalue())
        for k in range(min(rnd.randint(1, 4), max(1, n_pages - len(images)))):
            lines = [f"TRANG {k + 1} CỦA HỒ SƠ", f"Hồ sơ số {d}", "Nội dung giấy tờ của công dân", "Mã số 0361"]
            page = render_page(lines, dpi)
            turn = 180 if rnd.random() < 0.1 else 0
            img = scanned(page, dpi, skew=rnd.uniform(-3, 3), turn=turn, seed=1000 + len(images))
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=80, dpi=(dpi, dpi))
            owner[len(images)] = code
            images.append(buf.getvalue())
        d += 1
    return img2pdf.convert(images), owner, covers


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-ocr-fallback", action="store_true", help="QR only (no OCR of sheets without a QR)")
    args = ap.parse_args()
    t = time.perf_counter()
    data, owner, covers = make_stack(args.pages, args.seed)
    gen_s = time.perf_counter() - t
    n = len(owner) + len(covers)
    print(f"generated {n} pages ({len(covers)} dossiers, {len(owner)} content pages) in {gen_s:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stack.pdf"
        path.write_bytes(data)
        t = time.perf_counter()
        parts = split_stack(
            path, "application/pdf", DEFAULT_DOSSIER_CODE_PATTERN, ocr_fallback=not args.no_ocr_fallback
        )
        split_s = time.perf_counter() - t
    in_parts = {i for p in parts for i in p.pages}
    misassigned = sum(1 for p in parts for i in p.pages if i in owner and owner[i] != p.code)
    missed = len(covers & in_parts)  # a sheet not recognised: its page is inside a dossier
    false = len(set(owner) - in_parts)  # a content page taken for a sheet: dropped
    by_ocr = sum(1 for p in parts if p.cover and p.cover.by_ocr)
    print(f"split {n} pages into {len(parts)} parts in {split_s:.1f} s: {n * 60 / split_s:.0f} pages/min "
          f"(shared machine: indicative)")  # fmt: skip
    print(f"errors: mis-assigned pages {misassigned}, missed sheets {missed}, false sheets {false}; "
          f"sheets read by OCR fallback {by_ocr}")  # fmt: skip
    return 1 if misassigned or missed or false else 0


if __name__ == "__main__":
    sys.exit(main())
