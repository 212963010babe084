"""What every input format shares: the errors, the page record, the pixel budget checks.

A format is a :class:`Format` subclass in its own module, registered in :mod:`sohoa.formats`.
"""

from __future__ import annotations

import codecs
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image

from sohoa.errors import PermanentError

log = logging.getLogger("sohoa.worker")

PIL_DEFAULT_MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


class InputError(ValueError):
    """A client error: the message is shown to the clerk as is."""

    def __init__(self, message: str, status: int = 422, filename: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.filename = filename

    def __str__(self) -> str:
        return f"{self.filename}: {self.message}" if self.filename else self.message


class PageSourceError(PermanentError, ValueError):
    """The document cannot be read as pages (a permanent error for this document)."""


@dataclass
class FileInfo:
    format: str  # pdf | tiff | jpeg | png
    media_type: str
    extension: str
    pages: int
    size: int
    warnings: list[str] = field(default_factory=list)


@dataclass
class SourcePage:
    """One decoded page, upright as a viewer shows it.

    ``encoded`` is set when the page image was taken as is from the file (a PDF page that is one
    image, a JPEG scan) and ``image`` is exactly its decoding: a PDF writer may then embed these
    bytes unchanged as an image XObject with ``/Filter /<encoded_filter>``, ``/ColorSpace
    /<encoded_colorspace>``, ``/BitsPerComponent <encoded_bpc>`` and ``/DecodeParms`` built from
    ``encoded_decode_parms`` (names without the slash, e.g. ``{"K": -1, "Columns": 2480}``).
    ``encoded_colorspace`` is ``DeviceGray``, ``DeviceRGB`` or ``DeviceCMYK`` (only those are set).

    ``lazy``: ``image`` is only opened (its header read) from ``encoded``, a plain JPEG, and is decoded
    where it is used (the worker sends the JPEG's bytes to a page process, not the decoded pixels).
    """

    number: int
    image: Image.Image
    dpi: int | None
    colour_mode: str
    encoded: bytes | None = None
    encoded_filter: str = ""  # DCTDecode | CCITTFaxDecode | FlateDecode | JPXDecode
    encoded_colorspace: str = ""
    encoded_bpc: int = 0
    encoded_decode_parms: dict[str, Any] = field(default_factory=dict)
    lazy: bool = False


def ensure_pil_guard(max_page_pixels: int) -> None:
    """Keep PIL's decompression-bomb guard finite and no lower than our page budget.

    PIL warns above ``MAX_IMAGE_PIXELS`` and refuses above twice that, also when a TIFF frame is
    loaded; a page within our budget must never trip it, and the guard must never be ``None``.
    """
    current = Image.MAX_IMAGE_PIXELS
    if current is None or current < max_page_pixels:
        Image.MAX_IMAGE_PIXELS = max(PIL_DEFAULT_MAX_IMAGE_PIXELS, max_page_pixels)


def check_pixels(max_pixels: int, w: int, h: int, where: str) -> None:
    """Refuse a page with no pixels or more than ``SOHOA_MAX_PIXELS``."""
    if w <= 0 or h <= 0:
        raise InputError(f"{where} has no pixels ({w}×{h})")
    if w * h > max_pixels:
        raise InputError(
            f"{where} is {w}×{h} px ({w * h / 1e6:,.0f} megapixels), above the limit of "
            f"{max_pixels / 1e6:,.0f} megapixels (SOHOA_MAX_PIXELS)",
            status=413,
        )


def check_page_budget(max_page_pixels: int, w: int, h: int, page: int) -> None:
    """One decoded page may hold at most ``max_page_pixels`` (a small file can declare a huge page)."""
    if w * h > max_page_pixels:
        raise InputError(
            f"page {page} is {w}×{h} px ({w * h / 1e6:,.0f} megapixels), above the per-page limit of "
            f"{max_page_pixels / 1e6:,.0f} megapixels (SOHOA_MAX_PAGE_PIXELS); decoded it would "
            f"take about {w * h * 3 / 1e6:,.0f} MB: rescan it at a lower resolution (A4 at 600 dpi fits)",
            status=413,
        )


def describe(head: bytes) -> str:
    """A few words on what unrecognised content looks like."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head[:512], final=False)
    except UnicodeDecodeError:
        return "unknown binary content"
    if any(ord(c) < 32 and c not in "\r\n\t\f" for c in text):
        return "unknown binary content"
    return "it looks like text"


def fit(image: Image.Image, max_page_pixels: int, what: str) -> Image.Image:
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


class Format:
    """One input format. Subclasses set the class attributes and implement the four methods.

    ``validate`` reads only what it must (headers, page tree) and raises :class:`InputError` with a
    message for the clerk; ``iter_pages`` yields one decoded page at a time (never the whole file) and
    raises :class:`PageSourceError`; no page may decode to more than ``max_page_pixels``.
    """

    name: ClassVar[str]  # short name stored in FileInfo.format: "pdf"
    label: ClassVar[str]  # for messages: "PDF"
    media_type: ClassVar[str]
    extension: ClassVar[str]  # the one used when storing: ".pdf"
    extensions: ClassVar[tuple[str, ...]]  # every file name ending that claims this format

    def sniff(self, head: bytes) -> bool:
        """Whether the first 2 KiB of a file are this format's magic bytes."""
        raise NotImplementedError

    def validate(self, settings: Any, path: Path, info: FileInfo) -> None:
        """Check the file against ``settings`` (a :class:`sohoa.settings.Settings`); set ``info.pages``."""
        raise NotImplementedError

    def count_pages(self, path: Path) -> int:
        raise NotImplementedError

    def iter_pages(self, path: Path, render_dpi: int, max_page_pixels: int) -> Iterator[SourcePage]:
        raise NotImplementedError
