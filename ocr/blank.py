"""Is this cleaned page blank? Ink coverage and connected components, after removing what a scanner adds.

:func:`classify_blank` takes the CLEANED grayscale page (``ocr.process_page(...).image``) and its resolution.
Cleanup (``normalize_contrast``) stretches the darkest marks of a page to black, so on a page holding only
bleed-through (the faint mirrored text of the back side) that text is as dark as ink: darkness alone cannot
tell them apart. What does is the edge: ink printed or written on this side has a sharp edge (paper-white
within 0.2–0.45 mm of the stroke), while text seen through the paper is diffused (grey there). So, in order:

1. a frame of 2 mm is ignored and marks touching the image edge are dropped (border shadows, torn edges);
2. marks smaller than 0.5 mm² or 1.2 mm across are scanner noise (speckle), and compact dots under 2 mm
   are dust;
3. long thin marks spanning 40 % of the page are scanner streaks or fold lines;
4. marks whose surroundings are grey (a quarter of the ring 0.2–0.45 mm around them darker than 225) are
   bleed-through or shadows.

Whatever remains is content: one mark is enough (a page number, a stamp, a signature, a short line), so a
page is blank only when nothing remains. All sizes are physical (mm), so the verdict holds from 150 to
300 dpi (a higher resolution is looked at as 300 dpi). Pure: no I/O.

Known limit: a page whose only ink is strongly blurred (σ ≥ 0.3 mm, e.g. a defocused photo) looks like
bleed-through; scanner pages are far sharper than that.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WORK_DPI = 300  # pages at a higher resolution are looked at at this one
FRAME_MM = 2.0
SPECK_AREA_MM2 = 0.5
SPECK_SIZE_MM = 1.2
DUST_SIZE_MM = 2.0
STREAK_WIDTH_MM = 1.2
STREAK_SPAN = 0.4  # share of the page's height or width
RING_MM = (0.2, 0.45)
SOFT_LEVEL = 225  # ring pixels darker than this are "grey surroundings"
SOFT_SHARE = 0.25  # … and a mark with this share of grey surroundings is diffused (bleed-through)


@dataclass(frozen=True)
class BlankVerdict:
    blank: bool
    ink_ratio: float  # share of the page covered by the marks kept as content
    components: int  # how many marks were kept as content
    reason: str  # for the clerk and the logs


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3:
        code = cv2.COLOR_RGBA2GRAY if image.shape[2] == 4 else cv2.COLOR_RGB2GRAY
        image = cv2.cvtColor(image, code)
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image


def classify_blank(gray: np.ndarray, dpi: int) -> BlankVerdict:
    """Blank or not, with the ink share, the number of content marks and why (see the module docstring)."""
    img = _gray(np.asarray(gray))
    dpi = int(dpi) if dpi and dpi > 0 else WORK_DPI
    if dpi > WORK_DPI:
        f = WORK_DPI / dpi
        img = cv2.resize(img, (max(1, round(img.shape[1] * f)), max(1, round(img.shape[0] * f))),
                         interpolation=cv2.INTER_AREA)  # fmt: skip
        dpi = WORK_DPI
    h, w = img.shape
    mm = dpi / 25.4
    if h < 8 or w < 8:
        return BlankVerdict(True, 0.0, 0, "ảnh quá nhỏ (image too small to hold content)")
    paper = float(np.median(img))
    ink = (img < min(128.0, paper * 0.5)).astype(np.uint8)
    frame = max(1, round(FRAME_MM * mm))
    ink[:frame, :] = 0
    ink[-frame:, :] = 0
    ink[:, :frame] = 0
    ink[:, -frame:] = 0
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if n <= 1:
        return BlankVerdict(True, 0.0, 0, "không có vết mực (no ink at all)")
    x, y, bw, bh, area = (stats[1:, i].astype(np.int64) for i in range(5))
    big = np.maximum(bw, bh)
    small = np.minimum(bw, bh)
    fill = area / np.maximum(bw * bh, 1)
    edge = (x <= frame) | (y <= frame) | (x + bw >= w - frame) | (y + bh >= h - frame)
    speck = (area < SPECK_AREA_MM2 * mm * mm) | (big < SPECK_SIZE_MM * mm)
    dust = ~speck & (big < DUST_SIZE_MM * mm) & (fill >= 0.6) & (big <= 2 * np.maximum(small, 1))
    streak = (small <= STREAK_WIDTH_MM * mm) & ((bh >= STREAK_SPAN * h) | (bw >= STREAK_SPAN * w))
    candidate = ~(edge | speck | dust | streak)
    soft = np.zeros_like(candidate)
    if candidate.any():
        soft = _soft(img, labels, candidate, mm)
    content = candidate & ~soft
    k = int(content.sum())
    ratio = float(area[content].sum()) / float(h * w)
    dropped = (f"{int(speck.sum() + dust.sum())} vết nhiễu/bụi, {int((candidate & soft).sum())} vết mờ thấm/bóng, "
               f"{int((edge & ~speck).sum())} vết sát mép, {int((streak & ~edge & ~speck).sum())} vệt dài")  # fmt: skip
    if k == 0:
        return BlankVerdict(True, 0.0, 0, f"trang trắng: chỉ có {dropped} (blank: only scanner marks)")
    largest = int(np.argmax(np.where(content, area, -1)))
    size = f"{bw[largest] / mm:.1f}×{bh[largest] / mm:.1f} mm"
    return BlankVerdict(False, round(ratio, 6), k, f"{k} vết mực (lớn nhất {size}); đã bỏ {dropped}")


def _soft(img: np.ndarray, labels: np.ndarray, candidate: np.ndarray, mm: float) -> np.ndarray:
    """Per mark (index = label - 1): is its surrounding ring grey (diffused edge: bleed-through, shadow)?"""
    keep = np.zeros(len(candidate) + 1, bool)
    keep[1:] = candidate
    marks = keep[labels]
    # distance of every pixel to the nearest candidate mark, and which mark that is
    src = np.where(marks, 0, 255).astype(np.uint8)
    dist, nearest = cv2.distanceTransformWithLabels(src, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    owner = labels[marks]  # the k-th zero pixel (row-major) has pixel label k+1
    lo, hi = RING_MM[0] * mm, max(RING_MM[1] * mm, RING_MM[0] * mm + 1.0)
    ring = (dist > lo) & (dist <= hi)
    ring_owner = owner[nearest[ring] - 1]
    grey = img[ring] < SOFT_LEVEL
    total = np.bincount(ring_owner, minlength=len(keep))
    dark = np.bincount(ring_owner, weights=grey, minlength=len(keep))
    share = dark / np.maximum(total, 1)
    return (share >= SOFT_SHARE)[1:] & candidate
