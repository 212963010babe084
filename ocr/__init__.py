"""Pure page-level OCR functions: image in → image/text/data out.

Stages (each a small function, timed separately): ``to_gray`` → ``normalize_dpi`` →
``remove_borders`` → ``flatten_illumination`` → ``detect_orientation`` (Tesseract OSD) →
``deskew`` (projection profile) → ``run_tesseract`` (one run: text + hOCR + searchable PDF) →
``postcorrect``. The external program is wrapped in :mod:`ocr.tesseract` only.
"""

from ocr.errors import OcrError
from ocr.hocr import parse_hocr_confidence
from ocr.pipeline import OcrSettings, PageResult, detect_orientation, process_page
from ocr.postcorrect import postcorrect
from ocr.stages import (
    deskew,
    estimate_skew,
    flatten_illumination,
    normalize_dpi,
    remove_borders,
    rotate_bound,
    rotate_right_angle,
    to_gray,
)
from ocr.tesseract import resolve_model, run_osd, run_tesseract

__all__ = [
    "OcrError", "OcrSettings", "PageResult", "deskew", "detect_orientation", "estimate_skew",
    "flatten_illumination", "normalize_dpi", "parse_hocr_confidence", "postcorrect", "process_page",
    "remove_borders", "resolve_model", "rotate_bound", "rotate_right_angle", "run_osd", "run_tesseract", "to_gray",
]  # fmt: skip
