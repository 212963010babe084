"""Turn a stored original into page images, one page at a time (never the whole file in memory).

No page may decode to more than ``SOHOA_MAX_PAGE_PIXELS`` pixels: scans (TIFF/JPEG/PNG) are checked
frame by frame from their headers before anything is decoded (uploads above the budget are refused
by :mod:`ingest.validate`; a JPEG stored before a lower budget is decoded at 1/2, 1/4 or 1/8 scale),
and a PDF page whose MediaBox at the render dpi would exceed it is rendered at the highest dpi that
fits. PIL's own guard (``Image.MAX_IMAGE_PIXELS``) is never disabled, only raised to the budget when
the budget is larger.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

from sohoa.errors import PermanentError
from sohoa.settings import DEFAULT_MAX_PAGE_PIXELS

log = logging.getLogger("sohoa.worker")

PIL_DEFAULT_MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
_OPENERS: dict[str, Any] = {
    "png": PngImagePlugin.PngImageFile,
    "jpeg": JpegImagePlugin.jpeg_factory,
    "tiff": TiffImagePlugin.TiffImageFile,
}
_FORMAT_OF_MEDIA = {"image/png": "png", "image/jpeg": "jpeg", "image/tiff": "tiff"}


class PageSourceError(PermanentError, ValueError):
    """The document cannot be read as pages (a permanent error for this document)."""


@dataclass
class SourcePage:
    number: int
    image: Image.Image
    dpi: int | None
    colour_mode: str


def ensure_pil_guard(max_page_pixels: int) -> None:
    """Keep PIL's decompression-bomb guard finite and no lower than our page budget.

    PIL warns above ``MAX_IMAGE_PIXELS`` and refuses above twice that, also when a TIFF frame is
    loaded; a page within our budget must never trip it, and the guard must never be ``None``.
    """
    current = Image.MAX_IMAGE_PIXELS
    if current is None or current < max_page_pixels:
        Image.MAX_IMAGE_PIXELS = max(PIL_DEFAULT_MAX_IMAGE_PIXELS, max_page_pixels)


@contextmanager
def open_scan(path: Path, fmt: str | None) -> Iterator[Image.Image]:
    """Open a TIFF/JPEG/PNG reading only its header.

    ``Image.open`` would run PIL's global guard on the first frame only and refuse a bomb without
    saying its size; the caller instead checks every frame against the page budget before decoding
    anything. Unknown formats go through ``Image.open`` (and its guard).
    """
    opener = _OPENERS.get(fmt or "")
    if opener is None:
        with Image.open(path) as im:
            yield im
        return
    with open(path, "rb") as fp:
        im = opener(fp, str(path))
        try:
            yield im
        finally:
            im.close()


# ocr.stages.normalize_dpi upscales a page scanned below 250 dpi to 300 dpi before cleaning it
# (tests/test_hardening.py pins these two numbers to its behaviour).
OCR_UPSCALE_BELOW, OCR_UPSCALE_TO = 250, 300


def ocr_input_dpi(size: tuple[int, int], dpi: int | None, max_page_pixels: int) -> int | None:
    """The dpi to give ``ocr.process_page`` for a page of ``size`` pixels scanned at ``dpi``.

    The OCR upscales a low-dpi page to 300 dpi: a 6000×6000 px scan that says 72 dpi (36 MP, within the
    budget) would become 25000×25000 px (625 MP). When that would exceed the budget the page is given as
    250 dpi, the lowest the OCR reads without upscaling; otherwise its own dpi.
    """
    if not dpi or dpi >= OCR_UPSCALE_BELOW:
        return dpi
    f = OCR_UPSCALE_TO / dpi
    if math.ceil(size[0] * f) * math.ceil(size[1] * f) <= max_page_pixels:
        return dpi
    return OCR_UPSCALE_BELOW


def pdf_render_dpi(width_pt: float, height_pt: float, dpi: int, max_page_pixels: int) -> int:
    """The highest dpi ≤ ``dpi`` at which a ``width_pt``×``height_pt`` page fits ``max_page_pixels``.

    Pixel sizes are rounded up (as pdftoppm may), so the rendered page never exceeds the budget.
    Returns 0 when not even 1 dpi fits.
    """

    def pixels(d: int) -> int:
        return math.ceil(width_pt * d / 72.0) * math.ceil(height_pt * d / 72.0)

    if width_pt <= 0 or height_pt <= 0 or pixels(dpi) <= max_page_pixels:
        return dpi
    d = min(dpi, int(72.0 * math.sqrt(max_page_pixels / (width_pt * height_pt))))
    while d > 0 and pixels(d) > max_page_pixels:
        d -= 1
    return d


def pdf_page_sizes(path: Path) -> list[tuple[float, float]]:
    """(width, height) in points of every page's MediaBox, times its /UserUnit if any."""
    import pikepdf

    try:
        with pikepdf.open(path) as pdf:
            sizes = []
            for page in pdf.pages:
                box = [float(x) for x in page.mediabox]
                unit = float(page.obj.get("/UserUnit", 1) or 1)
                sizes.append((abs(box[2] - box[0]) * unit, abs(box[3] - box[1]) * unit))
            return sizes
    except Exception as e:  # a PDF qpdf cannot read: the page count step reports it too
        raise PageSourceError(f"cannot read the PDF page sizes: {e}") from e


def pdf_page_count(path: Path) -> int:
    from pdf2image import pdfinfo_from_path
    from pdf2image.exceptions import PDFInfoNotInstalledError, PDFPageCountError, PDFSyntaxError

    try:
        return int(pdfinfo_from_path(str(path))["Pages"])
    except PDFInfoNotInstalledError as e:
        raise RuntimeError("poppler-utils (pdfinfo/pdftoppm) is not installed") from e
    except (PDFPageCountError, PDFSyntaxError, KeyError, ValueError) as e:
        raise PageSourceError(f"cannot read the PDF: {e}") from e


def _fit(image: Image.Image, max_page_pixels: int, what: str) -> Image.Image:
    """Last line of defence: shrink a decoded page that is still above the budget (should not happen)."""
    w, h = image.size
    if w * h <= max_page_pixels:
        return image
    k = math.sqrt(max_page_pixels / (w * h))
    size = (max(1, int(w * k)), max(1, int(h * k)))
    log.warning("%s decoded to %d×%d px, above SOHOA_MAX_PAGE_PIXELS=%d: scaled to %d×%d",
                what, w, h, max_page_pixels, *size)  # fmt: skip
    small = image.resize(size, Image.Resampling.LANCZOS)
    image.close()
    return small


def _iter_pdf(path: Path, render_dpi: int, max_page_pixels: int) -> Iterator[SourcePage]:
    from pdf2image import convert_from_path

    n = pdf_page_count(path)
    sizes = pdf_page_sizes(path)
    for i in range(1, n + 1):
        if i > len(sizes):
            raise PageSourceError(f"PDF page {i} has no size that qpdf can read ({len(sizes)} pages)")
        wpt, hpt = sizes[i - 1]
        dpi = pdf_render_dpi(wpt, hpt, render_dpi, max_page_pixels)
        if dpi < 1:
            raise PageSourceError(
                f"PDF page {i} is {wpt:,.0f}×{hpt:,.0f} pt: too large to render within "
                f"{max_page_pixels:,} pixels (SOHOA_MAX_PAGE_PIXELS) even at 1 dpi"
            )
        if dpi < render_dpi:
            log.warning(
                "PDF page %d is %.0f×%.0f pt: rendered at %d dpi instead of %d to stay within %d pixels "
                "(SOHOA_MAX_PAGE_PIXELS)", i, wpt, hpt, dpi, render_dpi, max_page_pixels,
            )  # fmt: skip
        try:
            imgs = convert_from_path(str(path), dpi=dpi, first_page=i, last_page=i, thread_count=1)
        except Exception as e:
            raise PageSourceError(f"cannot render PDF page {i}: {e}") from e
        if not imgs:
            raise PageSourceError(f"PDF page {i} rendered to nothing")
        img = _fit(imgs[0], max_page_pixels, f"PDF page {i}")
        yield SourcePage(i, img, dpi, f"{img.mode} (rendered at {dpi} dpi)")


def _iter_scan(path: Path, fmt: str | None, max_page_pixels: int) -> Iterator[SourcePage]:
    try:
        with open_scan(path, fmt) as im:
            n = int(getattr(im, "n_frames", 1))
            for i in range(n):
                im.seek(i)
                w, h = im.size
                dpi_info = im.info.get("dpi")
                dpi = int(round(float(dpi_info[0]))) if dpi_info and float(dpi_info[0]) > 1 else None
                mode = im.mode
                if w * h > max_page_pixels:
                    scale = next((k for k in (2, 4, 8) if math.ceil(w / k) * math.ceil(h / k) <= max_page_pixels), 0)
                    if n > 1 or im.format != "JPEG" or not scale:
                        raise PageSourceError(
                            f"page {i + 1} is {w}×{h} px ({w * h / 1e6:,.0f} megapixels), above the per-page "
                            f"limit of {max_page_pixels / 1e6:,.0f} megapixels (SOHOA_MAX_PAGE_PIXELS)"
                        )
                    im.draft(mode, (w // scale, h // scale))  # libjpeg decodes at 1/scale: never the full size
                    dpi = max(1, round(dpi / scale)) if dpi else None
                    log.warning("JPEG page is %d×%d px, above SOHOA_MAX_PAGE_PIXELS=%d: decoded at 1/%d scale",
                                w, h, max_page_pixels, scale)  # fmt: skip
                frame = im.copy()
                frame.load()
                yield SourcePage(i + 1, _fit(frame, max_page_pixels, f"page {i + 1}"), dpi, mode)
    except PageSourceError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise PageSourceError(f"cannot decode image: {e}") from e


def iter_pages(
    path: Path, media_type: str, render_dpi: int = 300, max_page_pixels: int = DEFAULT_MAX_PAGE_PIXELS
) -> Iterator[SourcePage]:
    """The pages of a stored original, each decoded to at most ``max_page_pixels`` pixels."""
    ensure_pil_guard(max_page_pixels)
    if media_type == "application/pdf":
        yield from _iter_pdf(path, render_dpi, max_page_pixels)
    else:
        yield from _iter_scan(path, _FORMAT_OF_MEDIA.get(media_type), max_page_pixels)
