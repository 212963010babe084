"""Phone photos of a page: find the sheet of paper in the frame and warp it flat.

A photo shows the page as a bright quadrilateral (perspective, a few degrees of rotation) on a desk, a
cloth or a dark surround, with uneven light; its file says 72 dpi whatever the page's real resolution.
:func:`find_page` finds the quadrilateral on a 1000 px copy (closing removes the print, so the sheet is
one bright, unsaturated region; Otsu separates it from the surround; the convex hull of the largest
region is reduced to four corners whose sides are then fitted as straight lines).
:func:`page_resolution` measures the page's own resolution: from its size (an A4 sheet is 11.69 in
long) checked against the height of its letters, and :func:`warp_page` maps it to an upright rectangle
at the resolution the rest of the pipeline works at. A frame without such a region (every scan: the
page fills it) is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ocr.stages import downscale

A4_LONG_IN, A4_SHORT_IN = 11.69, 8.27


@dataclass(frozen=True)
class PageQuad:
    corners: tuple[tuple[float, float], ...]  # top-left, top-right, bottom-right, bottom-left (frame pixels)
    area: float  # share of the frame the page covers
    contrast: float  # mean grey inside the page minus outside it (closed copy), 0–255

    @property
    def size(self) -> tuple[float, float]:
        """(width, height) of the page in frame pixels: the mean length of opposite sides."""
        c = np.array(self.corners, np.float64)
        w = (np.linalg.norm(c[1] - c[0]) + np.linalg.norm(c[2] - c[3])) / 2
        h = (np.linalg.norm(c[3] - c[0]) + np.linalg.norm(c[2] - c[1])) / 2
        return float(w), float(h)


def _order(pts: np.ndarray) -> np.ndarray:
    """Four points as top-left, top-right, bottom-right, bottom-left."""
    c = pts.mean(axis=0)
    ang = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
    pts = pts[np.argsort(ang)]  # clockwise in image coordinates, starting anywhere
    start = int(np.argmin(pts.sum(axis=1)))
    return np.roll(pts, -start, axis=0)


def _refine(contour: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Fit a straight line to the contour points of each side (away from the corners) and intersect them."""
    pts = contour.reshape(-1, 2).astype(np.float32)
    idx = [int(np.argmin(np.linalg.norm(pts - c, axis=1))) for c in corners]
    lines = []
    n = len(pts)
    for k in range(4):
        a, b = idx[k], idx[(k + 1) % 4]
        seg = pts[a : b + 1] if a <= b else np.concatenate([pts[a:], pts[: b + 1]])
        m = len(seg)
        seg = seg[m // 8 : m - m // 8] if m >= 16 else seg
        if len(seg) < 2 or n < 8:
            return corners
        vx, vy, x0, y0 = cv2.fitLine(seg, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        lines.append((float(vx), float(vy), float(x0), float(y0)))
    out = []
    for k in range(4):
        (ax, ay, ax0, ay0), (bx, by, bx0, by0) = lines[k - 1], lines[k]
        det = ax * (-by) - ay * (-bx)
        if abs(det) < 1e-6:
            return corners
        t = ((bx0 - ax0) * (-by) - (by0 - ay0) * (-bx)) / det
        out.append((ax0 + t * ax, ay0 + t * ay))
    refined = np.array(out, np.float32)
    # a refinement that moves a corner far (a curled corner, a shadow) is not trusted
    if np.abs(refined - corners).max() > 0.05 * max(np.ptp(corners[:, 0]), np.ptp(corners[:, 1])):
        return corners
    return refined


def find_page(image: np.ndarray, side: int = 1000, min_area: float = 0.08, max_area: float = 0.9,
              min_contrast: float = 25.0) -> PageQuad | None:  # fmt: skip
    """The sheet of paper in a photo (RGB or gray array), or None when the frame is the page (a scan)."""
    small, f = downscale(image, side)
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (9, 9))
    gray: np.ndarray
    sat: np.ndarray
    if small.ndim == 3:
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        sat = cv2.morphologyEx(cv2.cvtColor(small, cv2.COLOR_RGB2HSV)[..., 1], cv2.MORPH_OPEN, k)
    else:
        gray, sat = small, np.zeros_like(small)
    closed = cv2.morphologyEx(gray, cv2.MORPH_CLOSE, k)  # print removed: the sheet is one bright region
    score = np.clip(closed.astype(np.float32) - 0.5 * sat.astype(np.float32), 0, 255).astype(np.uint8)
    score = np.asarray(cv2.GaussianBlur(score, (5, 5), 0), np.uint8)
    _, m = cv2.threshold(score, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    n, lab, st, _ = cv2.connectedComponentsWithStats(m, connectivity=4)
    if n < 2:
        return None
    i = 1 + int(np.argmax(st[1:, cv2.CC_STAT_AREA]))
    comp = (lab == i).astype(np.uint8) * 255
    cnts, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not cnts:
        return None
    c = max(cnts, key=cv2.contourArea)
    hull = cv2.convexHull(c)
    area = cv2.contourArea(hull) / float(small.shape[0] * small.shape[1])
    if not min_area <= area <= max_area:
        return None
    peri = cv2.arcLength(hull, True)
    quad = None
    for eps in np.linspace(0.01, 0.08, 15):
        ap = cv2.approxPolyDP(hull, float(eps * peri), True)
        if len(ap) == 4:
            quad = ap.reshape(4, 2).astype(np.float32)
            break
    if quad is None or not cv2.isContourConvex(quad.reshape(-1, 1, 2)):
        return None
    quad = _refine(hull, _order(quad))
    # every corner angle near 90° (perspective of a hand-held shot stays within ±30°)
    for k2 in range(4):
        a, b, c2 = quad[k2 - 1], quad[k2], quad[(k2 + 1) % 4]
        u, v = a - b, c2 - b
        cos = float(np.dot(u, v) / max(1e-6, np.linalg.norm(u) * np.linalg.norm(v)))
        if abs(cos) > 0.5:
            return None
    # a side lying along the frame's edge is the edge of a scan (a shadow or a dark band beside the page),
    # not a sheet photographed on a desk
    fh, fw = small.shape[:2]
    near = 0.015 * max(fh, fw)
    for k2 in range(4):
        a, b = quad[k2], quad[(k2 + 1) % 4]
        for axis, size in ((0, fw), (1, fh)):
            if max(a[axis], b[axis]) < near or min(a[axis], b[axis]) > size - 1 - near:
                return None
    inside = np.zeros(small.shape[:2], np.uint8)
    cv2.fillConvexPoly(inside, quad.astype(np.int32), 1)
    contrast = float(closed[inside > 0].mean() - closed[inside == 0].mean())
    if contrast < min_contrast:
        return None
    corners = tuple((float(x / f), float(y / f)) for x, y in quad)
    return PageQuad(corners, round(area, 4), round(contrast, 1))


def page_resolution(quad: PageQuad, text_height: float = 0.0, body_height: float = 32.0) -> float:
    """Dots per inch of the page in the frame.

    An A4 sheet (sides in ratio √2) gives it by its length; the height of its letters (*text_height*,
    frame pixels, as :func:`ocr.stages.text_height` measures it; *body_height* at 300 dpi) checks it, and
    decides alone when the sheet is not A4-shaped or its letters are a third larger than an A4 sheet's
    would be (an A5 sheet has the same shape at 0.7× the size). Letters that look smaller than body text
    (small print, the dots of a form's leaders) never overrule the sheet's size.
    """
    w, h = quad.size
    long, short = max(w, h), min(w, h)
    by_text = 300.0 * text_height / body_height if text_height > 0 else 0.0
    ratio = long / max(short, 1.0)
    by_size = (long / A4_LONG_IN + short / A4_SHORT_IN) / 2 if 1.25 <= ratio <= 1.6 else 0.0
    if by_size and (not by_text or by_text / by_size <= 1.33):
        return by_size
    return by_text or by_size or 150.0


def warp_page(image: np.ndarray, quad: PageQuad, scale: float = 1.0) -> np.ndarray:
    """The page cut out of the frame and made rectangular, *scale* × its size in the frame."""
    w, h = quad.size
    ow, oh = max(16, round(w * scale)), max(16, round(h * scale))
    src = np.array(quad.corners, np.float32)
    dst = np.array([[0, 0], [ow - 1, 0], [ow - 1, oh - 1], [0, oh - 1]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_LINEAR
    return cv2.warpPerspective(image, m, (ow, oh), flags=interp, borderMode=cv2.BORDER_REPLICATE)
