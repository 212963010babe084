"""Pure page-level stages: numpy image in → numpy image / numbers out. No I/O, no external programs."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

WORK_WIDTH = 1000  # analysis (orientation, skew) runs on a downscaled copy this wide


def to_gray(image: Image.Image) -> tuple[np.ndarray, str]:
    """PIL image of any mode → (8-bit grayscale array, original colour mode)."""
    mode = image.mode
    if mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        bg = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(bg, image)
    if mode == "I;16" or mode == "I":
        arr = np.asarray(image, dtype=np.float32)
        arr = (255 * (arr - arr.min()) / max(1.0, float(arr.max() - arr.min()))).astype(np.uint8)
        return arr, mode
    gray = np.asarray(image.convert("L"), dtype=np.uint8)
    return np.ascontiguousarray(gray), mode


def normalize_dpi(gray: np.ndarray, dpi: int | None, target: int = 300, low: int = 250) -> tuple[np.ndarray, int]:
    """Upscale pages scanned below *low* dpi to *target* (Tesseract wants ~20–30 px x-height)."""
    if not dpi or dpi <= 0:
        return gray, target
    if dpi < low:
        f = target / dpi
        return cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC), target
    return gray, dpi


def _small(gray: np.ndarray, width: int = WORK_WIDTH) -> tuple[np.ndarray, float]:
    h, w = gray.shape[:2]
    if w <= width:
        return gray, 1.0
    f = width / w
    return cv2.resize(gray, (width, max(1, int(h * f))), interpolation=cv2.INTER_AREA), f


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Binary mask (uint8 0/1) of dark ink, by Otsu on a lightly blurred copy."""
    blur = cv2.GaussianBlur(gray, (3, 3), 0)
    _, m = cv2.threshold(blur, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    return m


def remove_borders(gray: np.ndarray, dark_fraction: float = 0.5, max_fraction: float = 0.15) -> np.ndarray:
    """Whiten dark scanner borders: edge rows/columns that are mostly ink, up to *max_fraction* of the page.

    The border widths are measured on a downscaled copy (cheap) and applied to the full page.
    """
    small, f = _small(gray, 800)
    m = ink_mask(small)
    h, w = m.shape
    rows = m.mean(axis=1)
    cols = m.mean(axis=0)

    def run(profile: np.ndarray, limit: int) -> int:
        n = 0
        while n < limit and profile[n] > dark_fraction:
            n += 1
        # include the soft shadow next to the border
        while n and n < limit and profile[n] > dark_fraction / 4:
            n += 1
        return n

    top, bottom = run(rows, int(h * max_fraction)), run(rows[::-1], int(h * max_fraction))
    left, right = run(cols, int(w * max_fraction)), run(cols[::-1], int(w * max_fraction))
    if not (top or bottom or left or right):
        return gray
    out = gray.copy()
    H, W = gray.shape  # noqa: N806
    scale = 1.0 / f
    t, b, lft, r = (int(np.ceil((x + 1) * scale)) if x else 0 for x in (top, bottom, left, right))
    if t:
        out[:t] = 255
    if b:
        out[H - b :] = 255
    if lft:
        out[:, :lft] = 255
    if r:
        out[:, W - r :] = 255
    return out


def flatten_illumination(gray: np.ndarray, kernel_frac: float = 0.04, even: float = 6.0) -> np.ndarray:
    """Divide by the estimated paper background (shadows, uneven light) → white paper, dark ink.

    A page whose background is already even (spread of the background estimate below *even*
    grey levels) is returned unchanged: clean pages pay nothing and lose nothing.
    """
    small, f = _small(gray, 800)
    k = max(15, int(min(small.shape) * kernel_frac) | 1)
    bg = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    bg = cv2.GaussianBlur(bg, (k, k), 0)
    lo, hi = np.percentile(bg, (2, 98))
    if hi - lo < even:
        return gray
    bg = cv2.resize(bg, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    flat = cv2.divide(gray.astype(np.float32), np.maximum(bg.astype(np.float32), 1.0), scale=255.0)
    return np.clip(flat, 0, 255).astype(np.uint8)


def _profile_score(mask: np.ndarray, axis: int) -> float:
    prof = mask.sum(axis=axis).astype(np.float64)
    if prof.mean() <= 0:
        return 0.0
    return float(prof.var() / (prof.mean() ** 2))


def estimate_skew(gray: np.ndarray, max_angle: float = 6.0) -> float:
    """Skew angle in degrees (counter-clockwise positive, as cv2) by projection-profile search."""
    small, _ = _small(gray)
    m = ink_mask(small).astype(np.float32)
    if m.mean() < 0.002:
        return 0.0
    h, w = m.shape
    centre = (w / 2, h / 2)

    def score(angle: float) -> float:
        rot = cv2.getRotationMatrix2D(centre, angle, 1.0)
        r = cv2.warpAffine(m, rot, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
        return _profile_score(r, 1)

    coarse = np.arange(-max_angle, max_angle + 1e-9, 0.5)
    best = max(coarse, key=score)
    fine = np.arange(best - 0.5, best + 0.5 + 1e-9, 0.1)
    return round(float(max(fine, key=score)), 2)


def rotate_bound(gray: np.ndarray, angle: float) -> np.ndarray:
    """Rotate by *angle* degrees (counter-clockwise positive), white fill, same size."""
    if abs(angle) < 0.05:
        return gray
    h, w = gray.shape
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(gray, rot, (w, h), flags=cv2.INTER_CUBIC, borderValue=255)


def deskew(gray: np.ndarray, max_angle: float = 6.0) -> tuple[np.ndarray, float]:
    angle = estimate_skew(gray, max_angle)
    return rotate_bound(gray, angle), angle


def rotate_right_angle(gray: np.ndarray, clockwise: int) -> np.ndarray:
    clockwise %= 360
    if clockwise == 90:
        return cv2.rotate(gray, cv2.ROTATE_90_CLOCKWISE)
    if clockwise == 180:
        return cv2.rotate(gray, cv2.ROTATE_180)
    if clockwise == 270:
        return cv2.rotate(gray, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return gray
