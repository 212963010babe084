"""Colour dropout: red seals and blue signatures separated from the black print.

Measured on a white-balanced copy (each channel divided by its own paper background, so the yellow cast
of a phone photo or of old paper is neutral): a pixel is coloured ink when its chroma (max − min channel)
is well above the page's own paper chroma. Coloured pixels are painted with the local paper grey in the
grey page handed to the rest of the pipeline — unless they are dark in every channel (black print under
a seal stays). Pages without coloured ink (every grey scan, most colour scans of plain text) are returned
unchanged, bit for bit. The coloured regions are kept: red round ones as seals, blue (or other) strokes
as signatures.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ocr.stages import downscale, percentile


@dataclass(frozen=True)
class InkRegion:
    kind: str  # "seal" (red, round), "signature" (blue/other strokes), "mark" (other coloured ink)
    colour: str  # "red", "blue", "other"
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the page's pixels (before orientation/deskew)
    share: float  # share of the box's pixels that are this ink

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "colour": self.colour, "box": list(self.box), "share": round(self.share, 3)}


def _max_background(mx: np.ndarray) -> np.ndarray:
    """Local paper brightness of the brightest channel (closing removes the print; coloured ink is bright
    in its own channel, so even a large seal leaves it)."""
    k = max(9, int(min(mx.shape[:2]) * 0.035) | 1)
    bg = cv2.morphologyEx(mx, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return np.asarray(cv2.GaussianBlur(bg, (k, k), 0), np.float32)


def _saturation(rgb: np.ndarray, paper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(saturation 0–1 of *rgb* white-balanced against the *paper* colour, brightest raw channel)."""
    # channel by channel: numpy's max/min over the last (3-long) axis is ~10× slower than pairwise maxima
    ch = cv2.split(rgb)
    wb = [c.astype(np.float32) / paper[i] for i, c in enumerate(ch)]
    hi, lo = cv2.max(cv2.max(wb[0], wb[1]), wb[2]), cv2.min(cv2.min(wb[0], wb[1]), wb[2])
    return (hi - lo) / np.maximum(hi, 0.05), cv2.max(cv2.max(ch[0], ch[1]), ch[2]).astype(np.float32)


def drop_colour(
    rgb: np.ndarray, low: float = 0.12, high: float = 0.3, dark: float = 0.35, min_share: float = 2e-4
) -> tuple[np.ndarray, list[InkRegion]]:
    """(grey page without its coloured ink, the coloured regions). *rgb*: 8-bit RGB array.

    Colour is judged white-balanced against the page's paper colour (a phone's or an old sheet's cast is
    neutral then) and as saturation, so the light falling off across a photo does not matter. A pixel's
    weight as coloured ink rises from 0 at saturation *low* to 1 at *high* (above the paper's own), one
    pixel further around (the soft outline, JPEG's half-resolution colour); it is painted with the paper
    grey around it in proportion, unless its brightest channel is below *dark* × the paper's (black
    print, or print under the ink). Pages where fewer than *min_share* of the pixels are coloured get the
    plain luminance.
    """
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    small, f = downscale(rgb, 1000)
    paper = np.array([percentile(small[..., c], 90) for c in range(3)], np.float32) + 1.0
    sat_s, mx_s = _saturation(small, paper)
    bg_small = _max_background(mx_s)
    paper_sat = float(np.median(sat_s))
    ink_s = mx_s > dark * bg_small
    if ((sat_s > paper_sat + high) & ink_s).mean() < min_share:
        return gray, []
    regions = _regions(small, (sat_s > paper_sat + low) & ink_s, f)
    h, w = gray.shape
    lum_ratio = float(0.299 * paper[0] + 0.587 * paper[1] + 0.114 * paper[2]) / float(paper.max())
    out = gray
    # full-resolution work only inside the coloured regions (a seal and a signature: a few % of the page)
    for r in regions:
        pad = int(8 / f)
        x0, y0 = max(0, r.box[0] - pad), max(0, r.box[1] - pad)
        x1, y1 = min(w, r.box[2] + pad), min(h, r.box[3] + pad)
        sy0, sy1 = int(y0 * f), max(int(y0 * f) + 1, int(np.ceil(y1 * f)))
        sx0, sx1 = int(x0 * f), max(int(x0 * f) + 1, int(np.ceil(x1 * f)))
        bg = cv2.resize(bg_small[sy0:sy1, sx0:sx1], (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        sat, mx = _saturation(rgb[y0:y1, x0:x1], paper)
        weight: np.ndarray = np.clip((sat - paper_sat - low) / (high - low), 0, 1)
        weight = cv2.dilate(weight, np.ones((5, 5), np.uint8))
        weight *= np.clip((mx / np.maximum(bg, 1.0) - dark) / 0.15, 0, 1)
        if not weight.any():
            continue
        if out is gray:
            out = gray.copy()
        crop = out[y0:y1, x0:x1].astype(np.float32)
        fill = bg * lum_ratio
        out[y0:y1, x0:x1] = np.clip(crop * (1 - weight) + fill * weight + 0.5, 0, 255).astype(np.uint8)
    return out, regions


def _regions(small: np.ndarray, mask: np.ndarray, f: float) -> list[InkRegion]:
    """Coloured ink regions of a downscaled page: blobs of one hue merged, classified by hue and shape."""
    out: list[InkRegion] = []
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hue = hsv[..., 0].astype(np.int16)  # 0–179
    red = mask & ((hue < 12) | (hue > 160))
    blue = mask & (hue >= 95) & (hue <= 135)
    other = mask & ~red & ~blue
    side = max(small.shape[:2])
    for colour, m in (("red", red), ("blue", blue), ("other", other)):
        m8 = m.astype(np.uint8)
        # strokes and ring letters of one seal or signature lie within a few millimetres of each other
        joined = cv2.dilate(m8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15)))
        n, _lab, st, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
        for i in range(1, n):
            x, y, bw, bh, _a = (int(v) for v in st[i])
            ink = int(m8[y : y + bh, x : x + bw].sum())
            if max(bw, bh) < side * 0.02 or ink < 30:
                continue
            share = ink / float(bw * bh)
            round_ = 0.75 <= bw / max(bh, 1) <= 1.33 and max(bw, bh) >= side * 0.06
            kind = "seal" if colour == "red" and round_ else "signature" if colour != "red" else "mark"
            box = (int(x / f), int(y / f), int((x + bw) / f), int((y + bh) / f))
            out.append(InkRegion(kind, colour, box, share))
    return _merge(out, side * 0.02 / f)


def _merge(regions: list[InkRegion], gap: float) -> list[InkRegion]:
    """Regions of one colour that touch (within *gap* px) are one (a seal's star inside its ring, the two
    words of a signature); an "other"-coloured region inside another region belongs to it."""

    def near(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
        return a[0] - gap <= b[2] and b[0] - gap <= a[2] and a[1] - gap <= b[3] and b[1] - gap <= a[3]

    out = list(regions)
    changed = True
    while changed:
        changed = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                if (
                    a.colour == b.colour
                    and near(a.box, b.box)
                    or "other" in (a.colour, b.colour)
                    and near(a.box, b.box)
                ):
                    keep, other = (a, b) if a.colour != "other" else (b, a)
                    box = (min(a.box[0], b.box[0]), min(a.box[1], b.box[1]), max(a.box[2], b.box[2]),
                           max(a.box[3], b.box[3]))  # fmt: skip
                    area = lambda r: (r.box[2] - r.box[0]) * (r.box[3] - r.box[1])  # noqa: E731
                    share = (keep.share * area(keep) + other.share * area(other)) / max(
                        1, area(InkRegion("", "", box, 0))
                    )
                    bw, bh = box[2] - box[0], box[3] - box[1]
                    kind = keep.kind
                    if keep.colour == "red":
                        kind = (
                            "seal"
                            if 0.75 <= bw / max(bh, 1) <= 1.33 and (keep.kind == "seal" or other.kind == "seal")
                            else kind
                        )
                    out[i] = InkRegion(kind, keep.colour, box, min(1.0, share))
                    del out[j]
                    changed = True
                    break
            if changed:
                break
    return out
