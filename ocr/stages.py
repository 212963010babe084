"""Pure page-level stages: numpy image in → numpy image / numbers out. No I/O, no external programs.

Every measurement (borders, background, noise, skew, orientation) runs on a downscaled copy, so the
whole cleanup of an A4 page at 300 dpi costs about a tenth of a second; only the final corrections
(division by the background, one rotation, an optional blur) touch the full-size image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

ANALYSIS_SIDE = 1240  # long side of the copy that orientation and skew are measured on (~105 dpi for A4)


def to_gray(image: Image.Image) -> tuple[np.ndarray, str]:
    """PIL image of any mode → (8-bit grayscale array, original colour mode). Transparency goes to white."""
    mode = image.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        bg = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(bg, image)
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (255 * (arr - lo) / max(1.0, hi - lo)).astype(np.uint8)
        return np.ascontiguousarray(arr), mode
    gray = np.asarray(image.convert("L"), dtype=np.uint8)
    return np.ascontiguousarray(gray), mode


def to_array(image: Image.Image) -> tuple[np.ndarray, str]:
    """PIL image → (8-bit RGB array for a colour image, else 8-bit gray, original mode); alpha → white."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
        if mode in ("RGBA", "PA", "RGBa") or (mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            rgb = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
        else:
            rgb = image.convert("RGB")
        arr = np.asarray(rgb, dtype=np.uint8)
        if mode == "P" and _is_gray(arr):
            return np.ascontiguousarray(arr[..., 0]), mode
        return np.ascontiguousarray(arr), mode
    return to_gray(image)


def _is_gray(rgb: np.ndarray) -> bool:
    small = rgb[:: max(1, rgb.shape[0] // 200), :: max(1, rgb.shape[1] // 200)].astype(np.int16)
    return bool(np.abs(small[..., 0] - small[..., 1]).max() <= 2 and np.abs(small[..., 1] - small[..., 2]).max() <= 2)


def normalize_dpi(
    gray: np.ndarray, dpi: int | None, target: int = 300, low: int = 250, max_pixels: int = 40_000_000
) -> tuple[np.ndarray, int]:
    """Upscale pages scanned below *low* dpi to *target* (Tesseract wants ~20–30 px x-height).

    Never above *max_pixels* (the per-page budget, ``SOHOA_MAX_PAGE_PIXELS``): a 6000×6000 px page that
    says 72 dpi is upscaled only as far as the budget allows, and the dpi returned is the one reached.
    """
    if not dpi or dpi <= 0:
        return gray, target
    if dpi < low:
        h, w = gray.shape[:2]
        f = min(target / dpi, float(np.sqrt(max_pixels / max(1, h * w))))
        if f <= 1.0:
            return gray, dpi
        size = (max(1, round(w * f)), max(1, round(h * f)))
        return cv2.resize(gray, size, interpolation=cv2.INTER_CUBIC), round(dpi * f)
    return gray, dpi


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """*image* (gray or colour) reduced to *size* = (width, height) by area averaging.

    OpenCV's area resize is ~15× faster for an exact factor of 2 than for a fractional one (30 ms for a
    300 dpi A4 page to 800 px here): while the target is at most half the image, the image is first halved
    that way (an odd last row or column dropped), then area-resized to *size* from the smaller copy
    (6–17 ms in all). Box filters compose: the result is the direct area resize up to rounding.
    """
    w, h = size
    src = image
    while src.shape[0] // 2 >= h and src.shape[1] // 2 >= w:
        hh, ww = src.shape[0] // 2, src.shape[1] // 2
        src = cv2.resize(src[: 2 * hh, : 2 * ww], (ww, hh), interpolation=cv2.INTER_AREA)
    if (src.shape[1], src.shape[0]) != (w, h):
        src = cv2.resize(src, (w, h), interpolation=cv2.INTER_AREA)
    return src


def downscale(gray: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """Copy (gray or colour) whose long side is at most *side* pixels, and the scale factor used; the image
    itself when it is small enough."""
    h, w = gray.shape[:2]
    f = side / max(h, w)
    if f >= 1:
        return gray, 1.0
    return shrink(gray, (max(1, round(w * f)), max(1, round(h * f)))), f


def percentile(gray: np.ndarray, q: float, mask: np.ndarray | None = None) -> float:
    """*q*-th percentile of an 8-bit image (optionally where *mask* ≠ 0), from its histogram: fast."""
    if mask is not None and mask.dtype != np.uint8:
        mask = mask.view(np.uint8) if mask.dtype == np.bool_ else mask.astype(np.uint8)  # a view: no copy
    hist = cv2.calcHist([gray], [0], mask, [256], [0, 256]).ravel()
    total = hist.sum()
    if total <= 0:
        return 0.0
    return float(np.searchsorted(np.cumsum(hist), q / 100 * total))


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Binary mask (uint8 0/1) of dark ink, by Otsu on a lightly blurred copy."""
    blur = cv2.GaussianBlur(gray, (3, 3), 0)
    _, m = cv2.threshold(blur, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    return m


# --- borders -------------------------------------------------------------------------------------------


def _edge_runs(dark: np.ndarray) -> np.ndarray:
    """Per row: how many pixels from the left edge are dark before the first light one."""
    light = dark == 0
    return np.where(light.any(axis=1), light.argmax(axis=1), dark.shape[1])


def _side_border(
    d: np.ndarray, paper: float, max_fraction: float, fringe: int, margin: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Border along the left edge of *d* (downscaled page): per row its width and the paper grey beside it."""
    level = float(np.median(d[:, :3]))  # the outermost pixels: border grey, or paper when there is none
    if level > 0.45 * paper:
        return None
    limit = min(255, max(4, int(d.shape[1] * max_fraction)))
    band = d[:, :limit]
    # the paper level near this edge, per row (a shadow along the edge darkens it): a high percentile of
    # the band, smoothed along the side; rows that are border all along (corners) take the page's paper
    local = np.percentile(band, 80, axis=1).astype(np.float32)
    local = cv2.blur(local.reshape(-1, 1), (1, 31)).ravel()
    local = np.where(local - level < 0.25 * (paper - level), paper, local)
    dark = (band < (level + 0.5 * (local - level))[:, None]).astype(np.uint8)
    runs = _edge_runs(dark)
    runs = np.where(dark[:, 0] > 0, runs, 0)  # a border starts at the edge itself
    # ragged edges vary smoothly from row to row; a run longer than its neighbours' is text touching it
    runs = np.minimum(runs, cv2.medianBlur(runs.astype(np.uint8).reshape(-1, 1), 5).ravel())
    if not runs.any():
        return None
    # the paper just beyond the border, per row: the fill colour (so flattening sees no step)
    cols = np.minimum(runs[:, None] + fringe + np.arange(8)[None, :], d.shape[1] - 1)
    beyond = np.median(np.take_along_axis(d, cols, axis=1), axis=1).astype(np.float32)
    beyond = np.where(beyond < level + 0.5 * (local - level), local, beyond)
    beyond = cv2.medianBlur(np.clip(beyond, 0, 255).astype(np.uint8).reshape(-1, 1), 31).ravel()
    # the soft fringe (blur, JPEG): up to *fringe* more pixels still darker than that paper, then a margin
    rows = np.arange(d.shape[0])
    going = runs > 0
    threshold = level + 0.75 * (beyond.astype(np.float32) - level)
    for _ in range(fringe):
        going &= d[rows, np.minimum(runs, d.shape[1] - 1)] < threshold
        runs = runs + going
    runs = np.where(runs > 0, np.minimum(runs + margin, d.shape[1]), 0)
    return runs, beyond


def remove_borders(
    gray: np.ndarray, max_fraction: float = 0.15, fringe: int = 2, margin: int = 3, side: int = 1000
) -> np.ndarray:
    """Paint dark scanner borders and page edges with the colour of the paper next to them.

    Run on the scan as it is (before :func:`flatten_illumination`, which would turn a wide border into
    grey texture). Measured on a copy downscaled to *side* px (noise averages out): an edge has a border
    when its outermost pixels are darker than 45 % of the paper; then, per row (column), the border is
    the run of pixels from the edge darker than halfway to the *local* paper grey (so a shadow along the
    same edge is not mistaken for it), capped at *max_fraction* of the page and median-smoothed across
    rows, plus its soft fringe and a *margin* (in downscaled pixels). It is filled with the paper grey
    found just beyond it, so no step is left for Tesseract to read as a line. Pages without dark edges
    are returned unchanged (the same array).
    """
    small, _ = downscale(gray, side)
    paper = percentile(small, 90)
    mask = np.zeros(small.shape, np.uint8)
    fill = np.zeros(small.shape, np.uint8)
    for flip, transpose in ((False, False), (True, False), (False, True), (True, True)):
        d = small.T if transpose else small
        d = np.ascontiguousarray(d[:, ::-1] if flip else d)
        found = _side_border(d, paper, max_fraction, fringe, margin)
        if found is None:
            continue
        runs, beyond = found
        m = (np.arange(d.shape[1])[None, :] < runs[:, None]).astype(np.uint8)
        v = m * beyond[:, None]
        if flip:
            m, v = m[:, ::-1], v[:, ::-1]
        if transpose:
            m, v = m.T, v.T
        mask |= m
        fill = np.maximum(fill, v)
    if not mask.any():
        return gray
    h, w = gray.shape
    where = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST) > 0
    out = gray.copy()
    out[where] = cv2.resize(fill, (w, h), interpolation=cv2.INTER_LINEAR)[where]
    return out


# --- illumination, noise, contrast -------------------------------------------------------------------


def background(gray: np.ndarray, kernel_frac: float = 0.035) -> tuple[np.ndarray, float]:
    """Paper background estimated on a downscaled copy (closing removes the ink), and the scale used."""
    small, f = downscale(gray, 800)
    k = max(9, int(min(small.shape) * kernel_frac) | 1)
    bg = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    bg = cv2.GaussianBlur(bg, (k, k), 0)
    return bg, f


def flatten_illumination(gray: np.ndarray, kernel_frac: float = 0.035, even: float = 6.0) -> np.ndarray:
    """Divide by the estimated paper background (shadows, uneven light) → white paper, dark ink.

    A page whose background is already even (spread of the background estimate below *even* grey
    levels, and near white) is returned unchanged: clean pages pay nothing and lose nothing.
    """
    bg, _ = background(gray, kernel_frac)
    lo, hi = percentile(bg, 2), percentile(bg, 98)
    if hi - lo < even and lo > 240:
        return gray
    bg_full = cv2.resize(bg, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.divide(gray, np.maximum(bg_full, 1), scale=255)


DENOISE_THRESHOLD = 1.5  # grain (estimate_noise, grey levels) from which a page is median-filtered


def estimate_noise(gray: np.ndarray) -> float:
    """Noise level of the paper in grey levels (robust σ from the Laplacian's median absolute value)."""
    h, w = gray.shape
    # a central crop at full resolution: noise is a pixel-level property
    crop = gray[h // 4 : 3 * h // 4 : 1, w // 4 : 3 * w // 4 : 1]
    lap = cv2.Laplacian(crop, cv2.CV_16S, ksize=1)
    return float(np.median(np.abs(lap))) * 1.4826 / np.sqrt(20)


def estimate_specks(gray: np.ndarray) -> float:
    """Salt-and-pepper level: ink specks of ≤ 3 pixels per pixel of the central crop (Otsu ink mask).

    The Laplacian noise estimate is blind to sparse specks by design (it is a median); Tesseract reads
    them as dots and commas. A clean render has none; office scans ~0.0003–0.001.
    """
    h, w = gray.shape
    crop = gray[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    _, m = cv2.threshold(crop, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    _, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    return float(np.count_nonzero(stats[1:, cv2.CC_STAT_AREA] <= 3) / max(crop.size, 1))


def denoise(
    gray: np.ndarray,
    noise: float | None = None,
    specks: float | None = None,
    threshold: float = DENOISE_THRESHOLD,
    speck_threshold: float = 0.0008,
) -> np.ndarray:
    """Remove scanner noise (salt-and-pepper, sensor grain) when there is any; clean pages pass unchanged."""
    if noise is None:
        noise = estimate_noise(gray)
    if specks is None:
        specks = estimate_specks(gray) if noise < threshold else 0.0
    if noise < threshold and specks < speck_threshold:
        return gray
    out = cv2.medianBlur(gray, 3)
    if noise > 4 * threshold:
        out = cv2.GaussianBlur(out, (0, 0), min(1.2, 0.25 + noise / 20))
    return out


def normalize_contrast(gray: np.ndarray, ink_pct: float = 3.0) -> np.ndarray:
    """Stretch grey levels so the darkest ink is black and the paper white (after flattening)."""
    small, _ = downscale(gray, 800)
    m = ink_mask(small)
    if m.sum() < 50:
        return gray
    ink = percentile(small, ink_pct, m)
    paper = percentile(small, 60, 1 - m)
    if paper - ink < 8 or (ink < 20 and paper > 235):
        return gray
    lut = np.clip((np.arange(256, dtype=np.float32) - ink) * 255.0 / (paper - ink), 0, 255).astype(np.uint8)
    return cv2.LUT(gray, lut)


# --- skew and orientation ----------------------------------------------------------------------------


def _line_score(ys: np.ndarray, xs: np.ndarray, angle: float) -> float:
    """Sharpness of the horizontal projection of ink points rotated by *angle* (sum of squared bins)."""
    r = np.deg2rad(angle)
    y = ys * np.cos(r) - xs * np.sin(r)
    prof = np.bincount((y - y.min()).astype(np.int64))
    return float(np.dot(prof, prof))


def _best_angle(mask: np.ndarray, max_angle: float, max_points: int = 30000) -> tuple[float, float]:
    """(skew angle, normalised projection score) of the text lines of a binary mask, horizontal lines assumed."""
    idx = np.flatnonzero(mask)  # row-major, as np.nonzero orders them, without unravelling every point
    if len(idx) < 50:
        return 0.0, 0.0
    if len(idx) > max_points:  # an even subsample keeps the profile's shape at a fraction of the cost
        idx = idx[:: len(idx) // max_points + 1]
    h, w = mask.shape
    ys, xs = np.divmod(idx, w)
    ys = ys.astype(np.float64) - h / 2
    xs = xs.astype(np.float64) - w / 2
    coarse = np.arange(-max_angle, max_angle + 1e-9, 0.5)
    scores = [_line_score(ys, xs, a) for a in coarse]
    best = float(coarse[int(np.argmax(scores))])
    fine = np.arange(best - 0.45, best + 0.451, 0.05)
    scores = [_line_score(ys, xs, a) for a in fine]
    i = int(np.argmax(scores))
    return round(float(fine[i]), 2), scores[i] / len(ys)


def estimate_skew(gray: np.ndarray, max_angle: float = 6.0) -> float:
    """Skew angle in degrees (counter-clockwise positive, as cv2) by projection-profile search.

    Rotating the page by the returned angle (``rotate_bound``) makes the text lines horizontal.
    """
    small, _ = downscale(gray, ANALYSIS_SIDE)
    m = text_mask(small)
    if m.mean() < 0.002:
        return 0.0
    angle, _ = _best_angle(m, max_angle)
    return angle


def rotate_bound(gray: np.ndarray, angle: float, fill: int = 255) -> np.ndarray:
    """Rotate by *angle* degrees (counter-clockwise positive), paper-coloured fill, same size."""
    if abs(angle) < 0.05:
        return gray
    h, w = gray.shape
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(gray, rot, (w, h), flags=cv2.INTER_LINEAR, borderValue=fill)


def deskew(gray: np.ndarray, max_angle: float = 6.0) -> tuple[np.ndarray, float]:
    """Straighten the text lines: (rotated page, degrees of rotation applied, counter-clockwise positive)."""
    angle = estimate_skew(gray, max_angle)
    return rotate_bound(gray, angle), angle


def rotate_right_angle(gray: np.ndarray, clockwise: int) -> np.ndarray:
    """Turn the page clockwise by 0/90/180/270 degrees."""
    clockwise %= 360
    if clockwise == 90:
        return cv2.rotate(gray, cv2.ROTATE_90_CLOCKWISE)
    if clockwise == 180:
        return cv2.rotate(gray, cv2.ROTATE_180)
    if clockwise == 270:
        return cv2.rotate(gray, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return gray


def _mass_above_below(mask: np.ndarray) -> tuple[float, float]:
    """Ink above and below the x-height band of every text line of a (deskewed, horizontal-text) mask."""
    prof = mask.sum(axis=1).astype(np.float64)
    if not (prof > 0).any():
        return 0.0, 0.0
    rows = prof > 0.15 * np.percentile(prof[prof > 0], 90)
    above = below = 0.0
    h = len(prof)
    y = 0
    while y < h:
        if not rows[y]:
            y += 1
            continue
        y0 = y
        while y < h and rows[y]:
            y += 1
        if y - y0 < 3:
            continue
        seg = prof[y0:y]
        core = np.nonzero(seg >= 0.5 * seg.max())[0]
        c0, c1 = int(core[0]), int(core[-1])
        reach = c1 - c0  # marks separated from the line by a blank row still count
        above += prof[max(0, y0 - reach) : y0 + c0].sum()
        below += prof[y0 + c1 + 1 : min(h, y + reach)].sum()
    return above, below


def upright_score(mask: np.ndarray, strips: int = 4) -> float:
    """In (-1, 1): > 0 when the horizontal text of *mask* is upright, < 0 when upside down.

    Vietnamese lines carry far more ink above the x-height band (ascenders and the tone and vowel
    marks) than below it (descenders, the dot below). Measured in vertical strips so that columns
    and a residual skew do not blur the line profile.
    """
    w = mask.shape[1]
    a = b = 0.0
    for i in range(strips):
        da, db = _mass_above_below(mask[:, i * w // strips : (i + 1) * w // strips])
        a += da
        b += db
    return (a - b) / (a + b) if a + b else 0.0


@dataclass(frozen=True)
class Geometry:
    """What the page needs to be upright and straight."""

    rotation: int  # clockwise right-angle turn (0/90/180/270)
    skew: float  # then rotate by this many degrees (counter-clockwise positive, as cv2)
    upright: float  # upright_score after the turn; |value| is the confidence of the up/down decision
    sideways: float  # horizontal/vertical line-score ratio; > 1 means the chosen axis is clearly the text's
    text_height: float = 0.0  # median height of the ink components (≈ x-height), full-resolution pixels


def _text_components(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ink's connected components (labels, stats, centroids) and which of them are text: not touching
    the image edge (border remnants, page edges), not huge (pictures), not the background."""
    m = ink_mask(gray)
    h, w = m.shape
    _, labels, stats, centroids = cv2.connectedComponentsWithStats(m, connectivity=8)
    x, y, bw, bh = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]
    drop = (x == 0) | (y == 0) | (x + bw == w) | (y + bh == h) | (bw > w / 3) & (bh > h / 20)
    drop[0] = True  # background label
    return labels, stats, centroids, ~drop


def text_mask(gray: np.ndarray) -> np.ndarray:
    """Ink mask without what touches the image edge (border remnants, page edges) or is huge (pictures)."""
    labels, _, _, keep = _text_components(gray)
    return keep.astype(np.uint8)[labels]


def analyse_geometry(gray: np.ndarray, max_angle: float = 6.0) -> Geometry:
    """Orientation and skew from line projections of a downscaled copy (no OCR; ~50 ms for A4)."""
    small, f = downscale(gray, ANALYSIS_SIDE)
    m = text_mask(small)
    if m.mean() < 0.001:
        return Geometry(0, 0.0, 0.0, 0.0)
    ah, sh = _best_angle(m, max_angle)
    turned = cv2.rotate(m, cv2.ROTATE_90_CLOCKWISE)
    av, sv = _best_angle(turned, max_angle)
    sideways = sv > sh
    mm, angle = (turned, av) if sideways else (m, ah)
    ratio = max(sh, sv) / max(1e-9, min(sh, sv))
    hh, ww = mm.shape
    rot = cv2.getRotationMatrix2D((ww / 2, hh / 2), angle, 1.0)
    straight = cv2.warpAffine(mm, rot, (ww, hh), flags=cv2.INTER_NEAREST, borderValue=0)
    u = upright_score(straight)
    height = text_height(straight) / f
    turn = 90 if sideways else 0
    if u < 0:
        turn, u = (turn + 180) % 360, -u
    # rotations about the centre commute: the angle that straightens also straightens after a 180° turn
    return Geometry(turn, angle, round(float(u), 4), round(float(ratio), 3), round(height, 1))


def text_height(mask: np.ndarray) -> float:
    """Median height of the letter-sized connected components of an ink mask (≈ the x-height)."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    hs, ws = stats[1:, 3], stats[1:, 2]
    sel = (hs >= 3) & (ws >= 2) & (hs <= mask.shape[0] / 20)
    if sel.sum() < 20:
        return 0.0
    # mean of the middle of the distribution: sub-pixel, unlike the median of integer heights
    lo, hi = np.percentile(hs[sel], (35, 65))
    mid = hs[sel][(hs[sel] >= lo) & (hs[sel] <= hi)]
    return float(mid.mean())


# --- reading check -------------------------------------------------------------------------------------

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in the image's pixels


def text_coverage(gray: np.ndarray, words: list[Box], side: int = ANALYSIS_SIDE) -> float:
    """Share of the page's letter-sized ink (by area) whose centre lies inside one of the *words* boxes.

    The check that Tesseract's page layout read the whole page: a block it took for a picture, or a
    paragraph lost to a wrong column split, leaves letters outside every word box. 1.0 when the page
    has no letter-sized ink.
    """
    small, f = downscale(gray, side)
    _, stats, cen, keep = _text_components(small)  # the text mask's components, without labelling it again
    hs, ws, area = stats[:, 3], stats[:, 2], stats[:, 4]
    big = max(small.shape)
    sel = keep & (hs >= 3) & (hs <= big / 25) & (ws <= big / 15) & (area >= 4)  # letters, not specks or rules
    if not sel.any():
        return 1.0
    inside = np.zeros(small.shape, bool)
    for x0, y0, x1, y1 in words:
        inside[int(y0 * f) : int(y1 * f) + 1, int(x0 * f) : int(x1 * f) + 1] = True
    cx = np.clip(cen[:, 0][sel].astype(int), 0, small.shape[1] - 1)
    cy = np.clip(cen[:, 1][sel].astype(int), 0, small.shape[0] - 1)
    weights = area[sel].astype(np.float64)
    return float((weights * inside[cy, cx]).sum() / weights.sum())


def edge_width(gray: np.ndarray) -> float:
    """Mean width in pixels of the ink/paper transitions in the middle of the page: how blurred it is.

    Pixels between 20 % and 80 % of the way from ink to paper, per pixel of the ink's outline (Otsu),
    on the central two thirds: ≈ 0.5 on a sharp render at 300 dpi, 1–2 on office scans, ≥ 2.5 on a
    blurred copy or fax. 0.0 when there is no ink.
    """
    h, w = gray.shape
    c = gray[h // 6 : 5 * h // 6, w // 6 : 5 * w // 6]
    _, m = cv2.threshold(c, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    n_dark = cv2.countNonZero(m)
    if n_dark == 0 or n_dark == m.size:
        return 0.0
    # OpenCV's counting passes instead of numpy's boolean temporaries (same counts, fewer full-size copies)
    ink, paper = percentile(c, 10, m), percentile(c, 90, cv2.bitwise_not(m))
    lo, hi = ink + 0.2 * (paper - ink), ink + 0.8 * (paper - ink)
    mid = cv2.countNonZero(cv2.inRange(c, math.floor(lo) + 1, math.ceil(hi) - 1))  # lo < v < hi
    # the outline: dark pixels with a light neighbour (the erosion keeps a subset of the dark ones)
    outline = n_dark - cv2.countNonZero(cv2.erode(m, np.ones((3, 3), np.uint8)))
    return mid / max(outline, 1)
