"""A page through the stages: gray → dpi → borders → illumination → orientation → deskew → OCR → post-correction."""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from ocr.hocr import parse_hocr_confidence
from ocr.postcorrect import postcorrect
from ocr.stages import (
    deskew,
    flatten_illumination,
    normalize_dpi,
    remove_borders,
    rotate_right_angle,
    to_gray,
)
from ocr.tesseract import resolve_model, run_osd, run_tesseract


@dataclass(frozen=True)
class OcrSettings:
    lang: str = "vie"
    tessdata_dir: str | None = None
    psm: int = 3
    oem: int = 1
    timeout_s: float = 300
    low_confidence: float = 70.0
    osd_min_confidence: float = 2.0  # rotate only when OSD is at least this sure
    osd: bool = True
    clean: bool = True


@dataclass
class PageResult:
    text: str
    raw_text: str
    hocr: str
    pdf: bytes
    mean_confidence: float
    word_count: int
    low_confidence: bool
    rotation: int
    skew: float
    dpi: int
    colour_mode: str
    width: int
    height: int
    model: str
    timings: dict[str, float] = field(default_factory=dict)
    image: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), np.uint8), repr=False)


def detect_orientation(gray: np.ndarray, tessdata: str, min_confidence: float) -> int:
    """Clockwise rotation (0/90/180/270) that makes the page upright, from OSD on a downscaled copy."""
    h, w = gray.shape
    f = min(1.0, 1600 / max(h, w))
    small = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else gray
    rotate, conf = run_osd(small, tessdata)
    return rotate if rotate in (90, 180, 270) and conf >= min_confidence else 0


def process_page(image: Image.Image, dpi: int | None = None, settings: OcrSettings | None = None) -> PageResult:
    s = settings or OcrSettings()
    tessdata, model = resolve_model(s.tessdata_dir, s.lang)
    t: dict[str, float] = {}

    def lap(name: str, t0: float) -> float:
        now = time.perf_counter()
        t[name] = round(now - t0, 4)
        return now

    t0 = time.perf_counter()
    gray, mode = to_gray(image)
    gray, eff_dpi = normalize_dpi(gray, dpi)
    t0 = lap("load", t0)
    rotation, skew = 0, 0.0
    if s.clean:
        gray = remove_borders(gray)
        gray = flatten_illumination(gray)
        t0 = lap("clean", t0)
    if s.osd:
        rotation = detect_orientation(gray, tessdata, s.osd_min_confidence)
        gray = rotate_right_angle(gray, rotation)
        t0 = lap("orientation", t0)
    if s.clean:
        gray, skew = deskew(gray)
        t0 = lap("deskew", t0)
    out = run_tesseract(gray, eff_dpi, tessdata, s.lang, s.psm, s.oem, s.timeout_s)
    t0 = lap("tesseract", t0)
    conf, words = parse_hocr_confidence(out.hocr)
    text = postcorrect(out.text)
    lap("postcorrect", t0)
    return PageResult(
        text=text,
        raw_text=unicodedata.normalize("NFC", out.text),
        hocr=out.hocr,
        pdf=out.pdf,
        mean_confidence=round(conf, 2),
        word_count=words,
        low_confidence=words == 0 or conf < s.low_confidence,
        rotation=rotation,
        skew=skew,
        dpi=eff_dpi,
        colour_mode=mode,
        width=int(gray.shape[1]),
        height=int(gray.shape[0]),
        model=model,
        timings=t,
        image=gray,
    )
