"""Searchable PDF pages.

* :func:`graft_text_layer` — one-page PDF: the full-resolution page image under Tesseract's own
  invisible text layer (the text as Tesseract read it, before post-correction).
* :func:`archive_page` — one page of the archival PDF/A (:mod:`sohoa.pdfa`): the page image, encoded
  as :func:`sohoa.pdfa.encode_page` chooses, under the **corrected** text, each word on the box of the
  hOCR word(s) it came from (:func:`ocr.textlayer.corrected_words`).
"""

from __future__ import annotations

import io
import zlib
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pikepdf

from ocr.errors import OcrError
from ocr.textlayer import corrected_words

if TYPE_CHECKING:
    from ocr.pipeline import PageResult
    from sohoa.pdfa import ArchiveWriter, PageImage


def graft_text_layer(text_pdf: bytes, image: np.ndarray, jpeg_quality: int = 85) -> bytes:
    """Put *image* (grayscale, any resolution) under the text of a Tesseract ``textonly_pdf`` page.

    Tesseract read a downscaled copy of the page; its text-only PDF has the page's physical size, so
    the full-resolution image is simply drawn over the whole page, beneath the invisible text.
    """
    ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise OcrError("cannot encode the page image for the PDF")
    try:
        pdf = pikepdf.open(io.BytesIO(text_pdf))
    except pikepdf.PdfError as e:
        raise OcrError(f"tesseract wrote an unreadable PDF: {e}") from e
    with pdf:
        page = pdf.pages[0]
        box = [float(v) for v in page.mediabox]
        w, h = box[2] - box[0], box[3] - box[1]
        xobj = pikepdf.Stream(
            pdf,
            jpg.tobytes(),
            Type=pikepdf.Name.XObject,
            Subtype=pikepdf.Name.Image,
            Width=int(image.shape[1]),
            Height=int(image.shape[0]),
            ColorSpace=pikepdf.Name.DeviceGray,
            BitsPerComponent=8,
            Filter=pikepdf.Name.DCTDecode,
        )
        name = page.add_resource(xobj, pikepdf.Name.XObject, prefix="Im")
        draw = f"q {w:.4f} 0 0 {h:.4f} {box[0]:.4f} {box[1]:.4f} cm {name} Do Q\n".encode()
        page.contents_add(pikepdf.Stream(pdf, draw), prepend=True)
        out = io.BytesIO()
        pdf.save(out, compress_streams=True)
    return out.getvalue()


def archive_page(
    writer: ArchiveWriter,
    res: PageResult,
    original: PageImage | None = None,
    budget: int | None = None,
) -> PageImage:
    """Add the page *res* (from :func:`ocr.process_page`) to *writer*; returns the image as encoded.

    *original*: the scan's own image (e.g. ``PageImage.from_jpeg``), kept when the caller knows the
    cleanup did not change the page; *budget*: bytes the page (image and text layer) should not exceed
    (e.g. 1.2 × the scan's bytes for this page). The page size comes from ``res.dpi``.
    """
    from sohoa.pdfa import encode_page, text_layer

    h, w = res.image.shape[:2]
    dpi = res.dpi or 300
    words, size_pt = corrected_words(res.hocr, res.text), (w * 72 / dpi, h * 72 / dpi)
    if budget is not None:  # the page's text layer counts in the budget too
        budget -= len(zlib.compress(text_layer(words, (w, h), size_pt))) + 400
    image = encode_page(res.image, original, budget)
    writer.add_page(image, words, (w, h), size_pt)
    return image
