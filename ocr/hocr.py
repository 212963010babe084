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


_BBOX = re.compile(r"bbox (\d+) (\d+) (\d+) (\d+)")
_NUM_PROP = re.compile(r"(x_size|x_descenders|x_ascenders) ([\d.]+)")
_BASELINE = re.compile(r"baseline ([-\d.]+) ([-\d.]+)")
_SCAN_RES = re.compile(r"scan_res (\d+) (\d+)")


def scale_hocr(hocr: str, factor: float, dpi: int | None = None, factor_y: float | None = None) -> str:
    """Multiply every pixel coordinate of *hocr* by *factor* (boxes, baselines, sizes); set ``scan_res``.

    *factor_y*, when given, scales the vertical coordinates (default: *factor*).
    """
    fy = factor if factor_y is None else factor_y
    if factor == 1.0 and fy == 1.0 and dpi is None:
        return hocr

    def box(m: re.Match[str]) -> str:
        x0, y0, x1, y1 = (int(v) for v in m.groups())
        return f"bbox {round(x0 * factor)} {round(y0 * fy)} {round(x1 * factor)} {round(y1 * fy)}"

    out = _BBOX.sub(box, hocr)
    out = _NUM_PROP.sub(lambda m: f"{m.group(1)} {float(m.group(2)) * fy:.2f}", out)
    out = _BASELINE.sub(lambda m: f"baseline {m.group(1)} {round(float(m.group(2)) * fy)}", out)
    if dpi:
        out = _SCAN_RES.sub(f"scan_res {dpi} {dpi}", out)
    return out


_WORD_BOX = re.compile(r"<span class=['\"]ocrx_word['\"][^>]*?bbox (\d+) (\d+) (\d+) (\d+); x_wconf (\d+)")


def parse_hocr_boxes(hocr: str, min_conf: int = 0) -> list[tuple[int, int, int, int]]:
    """Word boxes (x0, y0, x1, y1) of an hOCR page whose confidence is at least *min_conf*."""
    return [(int(a), int(b), int(c), int(d)) for a, b, c, d, k in _WORD_BOX.findall(hocr) if int(k) >= min_conf]
