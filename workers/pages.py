"""Turn a stored original into page images, one page at a time (never the whole file in memory).

The reading itself is the format registry's (:mod:`sohoa.formats`, one module per media type); this
module is the worker's entry point and keeps the names the worker and the tests use.

No page may decode to more than ``SOHOA_MAX_PAGE_PIXELS`` pixels: scans (TIFF/JPEG/PNG) are checked
frame by frame from their headers before anything is decoded (uploads above the budget are refused
by :mod:`ingest.validate`; a JPEG stored before a lower budget is decoded at 1/2, 1/4 or 1/8 scale).
A PDF page that is one scanned image is taken as that image (:mod:`sohoa.formats.pdf`); any other
page is rendered at the render dpi, or at the highest dpi that fits when its MediaBox would exceed
the budget. PIL's own guard (``Image.MAX_IMAGE_PIXELS``) is never disabled, only raised to the
budget when the budget is larger.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from sohoa import formats
from sohoa.formats.base import PIL_DEFAULT_MAX_IMAGE_PIXELS, PageSourceError, SourcePage, ensure_pil_guard
from sohoa.formats.pdf import render_dpi_within as pdf_render_dpi
from sohoa.formats.raster import RasterFormat
from sohoa.settings import DEFAULT_MAX_PAGE_PIXELS

__all__ = [
    "OCR_MAX_PIXELS", "OCR_UPSCALE_BELOW", "OCR_UPSCALE_TO", "PIL_DEFAULT_MAX_IMAGE_PIXELS", "PageSourceError",
    "SourcePage", "ensure_pil_guard", "iter_pages", "ocr_input_dpi", "open_scan", "pdf_page_count", "pdf_render_dpi",
]  # fmt: skip


@contextmanager
def open_scan(path: Path, fmt: str | None) -> Iterator[Image.Image]:
    """Open a TIFF/JPEG/PNG reading only its header (unknown formats go through ``Image.open``)."""
    reader = formats.BY_NAME.get(fmt or "")
    if isinstance(reader, RasterFormat):
        with reader.open(path) as im:
            yield im
        return
    with Image.open(path) as im:
        yield im


# ocr.stages.normalize_dpi upscales a page scanned below 250 dpi to 300 dpi before cleaning it, to at most
# OcrSettings.max_pixels (40 MP, what the worker passes) (tests/test_hardening.py pins these numbers).
OCR_UPSCALE_BELOW, OCR_UPSCALE_TO, OCR_MAX_PIXELS = 250, 300, 40_000_000


def ocr_input_dpi(size: tuple[int, int], dpi: int | None, max_page_pixels: int) -> int | None:
    """The dpi to give ``ocr.process_page`` for a page of ``size`` pixels scanned at ``dpi``.

    The OCR upscales a low-dpi page towards 300 dpi but never above its own cap of 40 MP: when the page
    budget is at least that (the default), the page stays within the budget on its own and keeps its dpi
    (a 72-dpi A4 page is upscaled to 40 MP, ≈232 dpi, rather than read at 72). Under a smaller budget, a
    page whose upscaling would exceed it is handed on as 250 dpi, the lowest the OCR reads without
    upscaling. (Once the worker gives the OCR the budget as its cap, this can return ``dpi`` always.)
    """
    if not dpi or dpi >= OCR_UPSCALE_BELOW or max_page_pixels >= OCR_MAX_PIXELS:
        return dpi
    f = OCR_UPSCALE_TO / dpi
    if math.ceil(size[0] * f) * math.ceil(size[1] * f) <= max_page_pixels:
        return dpi
    return OCR_UPSCALE_BELOW


def pdf_page_count(path: Path) -> int:
    return formats.BY_NAME["pdf"].count_pages(path)


def iter_pages(
    path: Path, media_type: str, render_dpi: int = 300, max_page_pixels: int = DEFAULT_MAX_PAGE_PIXELS
) -> Iterator[SourcePage]:
    """The pages of a stored original, each decoded to at most ``max_page_pixels`` pixels."""
    yield from formats.iter_pages(path, media_type, render_dpi, max_page_pixels)
