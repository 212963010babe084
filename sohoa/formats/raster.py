"""What the scanned-image formats (TIFF, JPEG, PNG) share: frames read from headers before decoding."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

from sohoa.formats.base import (
    FileInfo,
    Format,
    InputError,
    PageSourceError,
    SourcePage,
    check_page_budget,
    check_pixels,
    ensure_pil_guard,
    fit,
    log,
)


class RasterFormat(Format):
    """A scan stored as one or more image frames, opened with one Pillow plugin."""

    opener: Callable[..., Image.Image]

    @contextmanager
    def open(self, path: Path) -> Iterator[Image.Image]:
        """Open reading only the header: every frame is checked against the budget before decoding."""
        with open(path, "rb") as fp:
            im = type(self).opener(fp, str(path))
            try:
                yield im
            finally:
                im.close()

    def validate(self, settings: Any, path: Path, info: FileInfo) -> None:
        ensure_pil_guard(settings.max_page_pixels)  # PIL's guard stays finite; ours is checked first, per frame
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                with self.open(path) as im:  # header only: nothing is decoded before the checks
                    n = int(getattr(im, "n_frames", 1))
                    if n > settings.max_pages:
                        raise InputError(
                            f"image has {n} pages, above the limit of {settings.max_pages} (SOHOA_MAX_PAGES)", 413
                        )
                    for i in range(n):
                        im.seek(i)
                        check_pixels(settings.max_pixels, im.width, im.height, f"page {i + 1}" if n > 1 else "image")
                        check_page_budget(settings.max_page_pixels, im.width, im.height, i + 1)
                        dpi = im.info.get("dpi")
                        if dpi and 0 < round(float(dpi[0])) < settings.min_dpi_warning:  # PNG stores px/m
                            info.warnings.append(
                                f"page {i + 1} is scanned at {round(float(dpi[0]))} dpi, "
                                f"below {settings.min_dpi_warning}"
                            )
                    im.seek(0)
                    im.draft("L", (max(1, im.width // 8), max(1, im.height // 8)))
                    im.load()
            except InputError:
                raise
            except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
                raise InputError(f"corrupt or unreadable {self.label} image: {e}") from e
        info.pages = n

    def count_pages(self, path: Path) -> int:
        try:
            with self.open(path) as im:
                return int(getattr(im, "n_frames", 1))
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise PageSourceError(f"cannot decode image: {e}") from e

    def encoded(self, path: Path, im: Image.Image) -> dict[str, Any]:
        """The ``SourcePage.encoded*`` fields when a frame's bytes can be embedded in a PDF unchanged."""
        return {}

    def iter_pages(self, path: Path, render_dpi: int, max_page_pixels: int) -> Iterator[SourcePage]:
        ensure_pil_guard(max_page_pixels)
        try:
            with self.open(path) as im:
                n = int(getattr(im, "n_frames", 1))
                for i in range(n):
                    im.seek(i)
                    w, h = im.size
                    dpi_info = im.info.get("dpi")
                    dpi = int(round(float(dpi_info[0]))) if dpi_info and float(dpi_info[0]) > 1 else None
                    mode = im.mode
                    scaled = False
                    if w * h > max_page_pixels:
                        scale = next(
                            (k for k in (2, 4, 8) if math.ceil(w / k) * math.ceil(h / k) <= max_page_pixels), 0
                        )
                        if n > 1 or im.format != "JPEG" or not scale:
                            raise PageSourceError(
                                f"page {i + 1} is {w}×{h} px ({w * h / 1e6:,.0f} megapixels), above the per-page "
                                f"limit of {max_page_pixels / 1e6:,.0f} megapixels (SOHOA_MAX_PAGE_PIXELS)"
                            )
                        im.draft(mode, (w // scale, h // scale))  # libjpeg decodes at 1/scale: never the full size
                        dpi = max(1, round(dpi / scale)) if dpi else None
                        scaled = True
                        log.warning("JPEG page is %d×%d px, above SOHOA_MAX_PAGE_PIXELS=%d: decoded at 1/%d scale",
                                    w, h, max_page_pixels, scale)  # fmt: skip
                    frame = im.copy()
                    frame.load()
                    extra = {} if scaled or n > 1 else self.encoded(path, im)
                    yield SourcePage(i + 1, fit(frame, max_page_pixels, f"page {i + 1}"), dpi, mode, **extra)
        except PageSourceError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
            raise PageSourceError(f"cannot decode image: {e}") from e
