"""Pure page-level OCR functions: image in → image/text/data out.

Stages (each a small function, timed separately): ``to_gray`` → ``normalize_dpi`` → ``remove_borders`` →
``flatten_illumination`` → ``detect_orientation`` (line geometry; Tesseract OSD and a strip OCR only when
unsure) + ``deskew`` (projection profile), applied as one rotation → ``denoise`` → ``normalize_contrast`` →
``run_tesseract`` (one run: text + hOCR + searchable PDF) → ``postcorrect``. The external program is run
from :mod:`ocr.tesseract` only.
"""

from ocr.errors import OcrError
from ocr.hocr import parse_hocr_confidence
from ocr.pipeline import OcrSettings, Orientation, PageResult, detect_orientation, process_page
from ocr.postcorrect import postcorrect
from ocr.stages import (
    Geometry,
    analyse_geometry,
    denoise,
    deskew,
    estimate_noise,
    estimate_skew,
    flatten_illumination,
    normalize_contrast,
    normalize_dpi,
    remove_borders,
    rotate_bound,
    rotate_right_angle,
    to_gray,
    upright_score,
)
from ocr.tesseract import resolve_model, run_osd, run_tesseract

__all__ = [
    "Geometry", "OcrError", "OcrSettings", "Orientation", "PageResult", "analyse_geometry", "denoise", "deskew",
    "detect_orientation", "estimate_noise", "estimate_skew", "flatten_illumination", "normalize_contrast",
    "normalize_dpi", "parse_hocr_confidence", "postcorrect", "process_page", "remove_borders", "resolve_model",
    "rotate_bound", "rotate_right_angle", "run_osd", "run_tesseract", "to_gray", "upright_score",
]  # fmt: skip
