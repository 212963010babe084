"""Blank-page detection (ocr/blank.py) on a generated set: truly blank scans (sensor noise, speckle, dust,
bleed-through of the back side, dark scanner borders) against near-blank pages that carry content (a page
number only, a stamp only, a signature only, one short line, faint ink, content over bleed-through), at
150, 200 and 300 dpi, each passed through the OCR cleanup stages first (what ``process_page`` gives the
detector). No content page may be called blank."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from ocr import (
    denoise,
    estimate_noise,
    flatten_illumination,
    normalize_contrast,
    normalize_dpi,
    process_page,
    remove_borders,
    to_gray,
)
from ocr.blank import BlankVerdict, classify_blank
from ocr.stages import estimate_specks
from sohoa.demo import font, render_page

A4 = (8.27, 11.69)


def _paper(dpi: int) -> Image.Image:
    return Image.new("L", (int(A4[0] * dpi), int(A4[1] * dpi)), 255)


def _scan(img: Image.Image, dpi: int, seed: int, noise: float = 8.0, specks: int = 0) -> Image.Image:
    """Sensor noise, optional salt-and-pepper speckle, a slight blur: as a sheet feeder gives it back."""
    rnd = np.random.default_rng(seed)
    a = np.asarray(img.convert("L")).astype(np.float32) + rnd.normal(0, noise, (img.height, img.width))
    if specks:
        ys, xs = rnd.integers(0, img.height, specks), rnd.integers(0, img.width, specks)
        a[ys, xs] = rnd.choice([0.0, 255.0], specks)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))


def _bleed(dpi: int, level: int, over: Image.Image | None = None) -> Image.Image:
    """The back side's text seen through the paper: mirrored, diffused (σ 0.4 mm), *level* = its darkest grey."""
    lines = ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc", "Mặt sau của tờ giấy"] * 4
    back = ImageOps.mirror(render_page(lines, dpi)).filter(ImageFilter.GaussianBlur(dpi * 0.4 / 25.4))
    a = 255 - (255 - np.asarray(back).astype(np.float32)) * (255 - level) / 255
    if over is not None:
        a = np.minimum(a, np.asarray(over.convert("L")).astype(np.float32))
    return Image.fromarray(a.astype(np.uint8))


def _borders(img: Image.Image, dpi: int) -> Image.Image:
    """Dark scanner borders: a black band on the left, a grey shadow at the top, a dark corner."""
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, int(0.12 * dpi), img.height), fill=15)
    d.rectangle((0, 0, img.width, int(0.05 * dpi)), fill=90)
    w, h = img.width, img.height
    d.polygon([(w, h), (w - int(0.5 * dpi), h), (w, h - int(0.4 * dpi))], fill=30)
    return img


def _dust(img: Image.Image, dpi: int, seed: int) -> Image.Image:
    rnd = np.random.default_rng(seed)
    d = ImageDraw.Draw(img)
    for _ in range(25):  # dust and dirt dots up to 0.5 mm
        x, y, r = rnd.integers(dpi, img.width - dpi), rnd.integers(dpi, img.height - dpi), dpi * 0.25 / 25.4
        d.ellipse((x - r, y - r, x + r, y + r), fill=int(rnd.integers(0, 120)))
    return img


def _page_number(dpi: int) -> Image.Image:
    img = _paper(dpi)
    ImageDraw.Draw(img).text((img.width // 2, img.height - int(0.6 * dpi)), "3", font=font(int(11 * dpi / 72)), fill=30)
    return img


def _stamp(dpi: int, fill: int = 120) -> Image.Image:
    img = _paper(dpi)
    d = ImageDraw.Draw(img)
    r, cx, cy, w = int(0.8 * dpi), int(5.5 * dpi), int(7.5 * dpi), max(2, round(0.6 / 25.4 * dpi))
    d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=fill, width=w)
    d.ellipse((cx - r * 0.75, cy - r * 0.75, cx + r * 0.75, cy + r * 0.75), outline=fill, width=w)
    d.regular_polygon((cx, cy, r * 0.3), 5, fill=fill)
    return img


def _signature(dpi: int, fill: int = 60) -> Image.Image:
    img = _paper(dpi)
    rnd = np.random.default_rng(dpi)
    x0, y0 = int(5 * dpi), int(7 * dpi)
    pts = [(x0 + i * dpi * 0.08, y0 + np.sin(i * 1.3) * dpi * 0.15 + rnd.normal(0, dpi * 0.03)) for i in range(20)]
    ImageDraw.Draw(img).line(pts, fill=fill, width=max(1, round(0.3 / 25.4 * dpi)))
    return img


def _short_line(dpi: int) -> Image.Image:
    return render_page(["Trang này để trống."], dpi, size_pt=11)


def cleaned(img: Image.Image, dpi: int) -> tuple[np.ndarray, int]:
    """The cleanup stages of ocr.process_page (without orientation and Tesseract): what the detector sees."""
    g, _ = to_gray(img)
    g, eff = normalize_dpi(g, dpi)
    noise, specks = estimate_noise(g), estimate_specks(g)
    g = flatten_illumination(remove_borders(g))
    return normalize_contrast(denoise(g, noise, specks)), eff


Make = Callable[[int, int], Image.Image]  # (dpi, seed) → scanned page
BLANK: dict[str, Make] = {
    "noise": lambda dpi, s: _scan(_paper(dpi), dpi, s, noise=12),
    "speckle+dust": lambda dpi, s: _scan(_dust(_paper(dpi), dpi, s), dpi, s, specks=4000),
    "bleed-through 205": lambda dpi, s: _scan(_bleed(dpi, 205), dpi, s),
    "bleed-through 190": lambda dpi, s: _scan(_bleed(dpi, 190), dpi, s),
    "dark borders": lambda dpi, s: _scan(_borders(_paper(dpi), dpi), dpi, s),
}
CONTENT: dict[str, Make] = {
    "page number": lambda dpi, s: _scan(_page_number(dpi), dpi, s),
    "stamp": lambda dpi, s: _scan(_stamp(dpi), dpi, s),
    "faint stamp": lambda dpi, s: _scan(_stamp(dpi, 185), dpi, s),
    "signature": lambda dpi, s: _scan(_signature(dpi), dpi, s),
    "faint signature": lambda dpi, s: _scan(_signature(dpi, 150), dpi, s),
    "one short line": lambda dpi, s: _scan(_short_line(dpi), dpi, s),
    "page number over bleed-through": lambda dpi, s: _scan(_bleed(dpi, 200, over=_page_number(dpi)), dpi, s),
    "page number + borders + speckle": lambda dpi, s: _scan(_borders(_page_number(dpi), dpi), dpi, s, specks=3000),
}
DPIS = (150, 200, 300)


def test_blank_detector_on_the_generated_set() -> None:
    blank_ok: list[str] = []
    blank_missed: list[str] = []
    content_ok: list[str] = []
    content_removed: list[str] = []
    for seed, dpi in enumerate(DPIS):
        for name, make in BLANK.items():
            v = classify_blank(*cleaned(make(dpi, seed), dpi))
            (blank_ok if v.blank else blank_missed).append(f"{name} @{dpi}: {v.reason}")
        for name, make in CONTENT.items():
            v = classify_blank(*cleaned(make(dpi, seed), dpi))
            (content_removed if v.blank else content_ok).append(f"{name} @{dpi}: {v.reason}")
    print(f"blank pages: {len(blank_ok)} detected (true positives), {len(blank_missed)} kept (false negatives)")
    print(f"content pages: {len(content_ok)} kept, {len(content_removed)} called blank (false positives)")
    for line in blank_missed + content_removed:
        print("  ", line)
    assert not content_removed  # 0 content pages called blank
    assert len(blank_ok) >= 0.9 * (len(blank_ok) + len(blank_missed))


def test_verdict_fields() -> None:
    g, dpi = cleaned(_scan(_stamp(200), 200, 1), 200)
    v = classify_blank(g, dpi)
    assert isinstance(v, BlankVerdict) and not v.blank and v.components >= 1 and 0 < v.ink_ratio < 0.05
    empty = classify_blank(np.full((1754, 1240), 255, np.uint8), 150)
    assert empty.blank and empty.ink_ratio == 0.0 and empty.components == 0 and empty.reason
    rgb = np.dstack([g, g, g])
    assert classify_blank(rgb, dpi).blank is False  # a colour page is looked at in grey


@pytest.mark.parametrize(("make", "blank"), [(BLANK["bleed-through 205"], True), (CONTENT["page number"], False)])
def test_on_what_process_page_returns(make: Make, blank: bool) -> None:
    res = process_page(make(150, 5), 150)
    assert classify_blank(res.image, 300).blank is blank
