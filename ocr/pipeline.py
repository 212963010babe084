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
    osd: bool = True  # verify orientation of pages that read with low confidence
    verify_below: float = 70.0  # mean word confidence under which orientation is checked
    verify_margin: float = 5.0  # a turned reading must beat the upright one by this much
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
        gray, skew = deskew(gray)
        t0 = lap("deskew", t0)
    out = run_tesseract(gray, eff_dpi, tessdata, s.lang, s.psm, s.oem, s.timeout_s)
    conf, words = parse_hocr_confidence(out.hocr)
    t0 = lap("tesseract", t0)
    if s.osd and (words < 3 or conf < s.verify_below):
        # Verify orientation only on pages that read badly: an upright page reads at 80–95 %
        # confidence, a turned one far lower, so upright pages never pay for a second OCR pass.
        # OSD proposes a turn; when it sees none (it misses real 180° pages) the turn tried is 180°.
        candidate = detect_orientation(gray, tessdata, 0.0) or 180
        g2 = rotate_right_angle(gray, candidate)
        sk2 = 0.0
        if s.clean:
            g2, sk2 = deskew(g2)
        out2 = run_tesseract(g2, eff_dpi, tessdata, s.lang, s.psm, s.oem, s.timeout_s)
        conf2, words2 = parse_hocr_confidence(out2.hocr)
        if words2 >= 3 and conf2 > conf + s.verify_margin:
            gray, out, conf, words, rotation, skew = g2, out2, conf2, words2, candidate, round(skew + sk2, 2)
        t0 = lap("orientation", t0)
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
