"""Turn a stored original into page images, one page at a time (never the whole file in memory)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image


class PageSourceError(ValueError):
    """The document cannot be read as pages (a permanent error for this document)."""


@dataclass
class SourcePage:
    number: int
    image: Image.Image
    dpi: int | None
    colour_mode: str


def pdf_page_count(path: Path) -> int:
    from pdf2image import pdfinfo_from_path
    from pdf2image.exceptions import PDFInfoNotInstalledError, PDFPageCountError, PDFSyntaxError

    try:
        return int(pdfinfo_from_path(str(path))["Pages"])
    except PDFInfoNotInstalledError as e:
        raise RuntimeError("poppler-utils (pdfinfo/pdftoppm) is not installed") from e
    except (PDFPageCountError, PDFSyntaxError, KeyError, ValueError) as e:
        raise PageSourceError(f"cannot read the PDF: {e}") from e


def iter_pages(path: Path, media_type: str, render_dpi: int = 300) -> Iterator[SourcePage]:
    if media_type == "application/pdf":
        from pdf2image import convert_from_path

        n = pdf_page_count(path)
        for i in range(1, n + 1):
            try:
                imgs = convert_from_path(str(path), dpi=render_dpi, first_page=i, last_page=i, thread_count=1)
            except Exception as e:
                raise PageSourceError(f"cannot render PDF page {i}: {e}") from e
            if not imgs:
                raise PageSourceError(f"PDF page {i} rendered to nothing")
            yield SourcePage(i, imgs[0], render_dpi, f"{imgs[0].mode} (rendered at {render_dpi} dpi)")
        return
    Image.MAX_IMAGE_PIXELS = None  # sizes were checked at upload against SOHOA_MAX_PIXELS
    try:
        with Image.open(path) as im:
            n = int(getattr(im, "n_frames", 1))
            for i in range(n):
                im.seek(i)
                dpi_info = im.info.get("dpi")
                dpi = int(round(float(dpi_info[0]))) if dpi_info and float(dpi_info[0]) > 1 else None
                mode = im.mode
                frame = im.copy()
                frame.load()
                yield SourcePage(i + 1, frame, dpi, mode)
    except PageSourceError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise PageSourceError(f"cannot decode image: {e}") from e
