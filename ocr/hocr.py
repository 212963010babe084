"""Reading word confidences from Tesseract's hOCR."""

from __future__ import annotations

import re

_WORD = re.compile(r"<span class=['\"]ocrx_word['\"][^>]*?x_wconf (\d+)[^>]*>(.*?)</span>", re.S)
_TAG = re.compile(r"<[^>]+>")


def parse_hocr_confidence(hocr: str) -> tuple[float, int]:
    """(mean word confidence 0–100, number of non-empty words)."""
    confs = [int(c) for c, body in _WORD.findall(hocr) if _TAG.sub("", body).strip()]
    if not confs:
        return 0.0, 0
    return sum(confs) / len(confs), len(confs)
