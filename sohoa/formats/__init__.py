"""One registry of input formats, keyed by media type: sniff, validate, count and iterate pages.

:mod:`ingest.validate` (what an upload is, and whether it is acceptable) and :mod:`workers.pages`
(its pages, one decoded image at a time) only look formats up here; neither has a branch per format.

Adding an input type (say a phone-photo set, or a stack with separators) is one module:

1. ``sohoa/formats/<name>.py`` with a subclass of :class:`sohoa.formats.base.Format` (or of
   :class:`sohoa.formats.raster.RasterFormat` for a Pillow-readable image) that sets ``name``,
   ``label``, ``media_type``, ``extension``, ``extensions`` and implements ``sniff(head)``,
   ``validate(settings, path, info)``, ``count_pages(path)`` and
   ``iter_pages(path, render_dpi, max_page_pixels)``, and ends with ``FORMAT = <Subclass>()``;
2. its ``FORMAT`` added to ``_FORMATS`` below (the order is the sniffing order).

Rules every format keeps: ``validate`` raises :class:`InputError` with a message for the clerk
(English with the setting to change), decodes nothing it does not have to, and refuses a page above
``SOHOA_MAX_PAGE_PIXELS`` unless ``iter_pages`` can decode it smaller; ``iter_pages`` yields
:class:`SourcePage` objects one at a time (never the whole file in memory) and raises
:class:`PageSourceError` for a file it cannot read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sohoa.formats import jpeg, pdf, png, tiff
from sohoa.formats.base import (
    FileInfo,
    Format,
    InputError,
    PageSourceError,
    SourcePage,
    describe,
    ensure_pil_guard,
)

_FORMATS: tuple[Format, ...] = (pdf.FORMAT, tiff.FORMAT, jpeg.FORMAT, png.FORMAT)

BY_MEDIA_TYPE: dict[str, Format] = {f.media_type: f for f in _FORMATS}
BY_NAME: dict[str, Format] = {f.name: f for f in _FORMATS}
BY_EXTENSION: dict[str, Format] = {ext: f for f in _FORMATS for ext in f.extensions}

__all__ = [
    "BY_EXTENSION", "BY_MEDIA_TYPE", "BY_NAME", "FileInfo", "Format", "InputError", "PageSourceError",
    "SourcePage", "accepted_labels", "describe", "for_media_type", "iter_pages", "sniff",
]  # fmt: skip


def sniff(head: bytes) -> Format | None:
    """The format whose magic bytes start ``head`` (the first 2 KiB of a file), if any."""
    return next((f for f in _FORMATS if f.sniff(head)), None)


def accepted_labels() -> str:
    """``PDF, TIFF, JPEG, PNG`` — for messages."""
    return ", ".join(f.label for f in _FORMATS)


def for_media_type(media_type: str) -> Format:
    try:
        return BY_MEDIA_TYPE[media_type]
    except KeyError:
        raise PageSourceError(f"no reader for media type {media_type!r}") from None


def iter_pages(path: Path, media_type: str, render_dpi: int, max_page_pixels: int) -> Iterator[SourcePage]:
    """The pages of a stored original, each decoded to at most ``max_page_pixels`` pixels."""
    ensure_pil_guard(max_page_pixels)
    yield from for_media_type(media_type).iter_pages(path, render_dpi, max_page_pixels)
