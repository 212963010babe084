"""CER on real Vietnamese legal pages (../shared/ocr-eval) stays under a bound."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from PIL import Image
from rapidfuzz.distance import Levenshtein

from ocr import process_page

EVAL = Path(__file__).resolve().parents[2] / "shared" / "ocr-eval"
PAGES = [("dev", "anle_432021AL_p01.png", 2.5), ("dev/scan_sim", "anle_552022AL_p02.jpg", 4.5)]


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", s)).strip()


@pytest.mark.parametrize(("folder", "name", "bound"), PAGES)
def test_cer_bound(folder: str, name: str, bound: float) -> None:
    img = EVAL / folder / name
    assert img.exists(), f"evaluation data missing: {img} (../shared/ocr-eval must sit beside the repo)"
    gt = norm(img.with_suffix(".txt").read_text(encoding="utf-8"))
    res = process_page(Image.open(img), 300)
    cer = 100 * Levenshtein.distance(norm(res.text), gt) / len(gt)
    assert cer <= bound, f"CER {cer:.2f}% > {bound}% on {folder}/{name}"
