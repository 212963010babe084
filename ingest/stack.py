"""The scanning station's separator sheets: print a cover sheet per dossier (QR code with the dossier code),
scan a whole stack of many dossiers in one go, and split it back into one document per dossier.

* :func:`cover_pdf` — A4 sheets (fpdf2, Noto Sans embedded): QR code (segno) holding
  ``SOHOA1|code|kind|component``, the code in large digits, the procedure and its required components
  with boxes to tick.
* :func:`read_cover` — is this scanned page a cover sheet, and of which dossier? zxing-cpp decodes the QR
  (any rotation, skewed, 150 dpi); when the QR cannot be read but the page carries the sheet's black band,
  the code is read by OCR (the dossier-code pattern) and flagged for the clerk to confirm.
* :func:`split_stack` — one PDF or multi-page TIFF → parts (cover sheets removed), each with its dossier;
  pages before the first sheet form a part without a code; a stack without any sheet stays one part.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import img2pdf
import numpy as np
import pikepdf
from PIL import Image, ImageOps

from sohoa.settings import DEFAULT_MAX_PAGE_PIXELS

log = logging.getLogger("sohoa.stack")

QR_PREFIX = "SOHOA1"
FONT_DIRS = ("/usr/share/fonts/truetype/noto", "/usr/share/fonts/truetype/dejavu")
SCAN_DPI = 150  # resolution at which stack pages are looked at (the parts keep the original pages)


@dataclass(frozen=True)
class Cover:
    """What a cover sheet says."""

    code: str
    kind: str = ""
    component: str = ""
    by_ocr: bool = False  # read from the printed code, not the QR: the clerk must confirm it

    def payload(self) -> str:
        return "|".join((QR_PREFIX, self.code, self.kind, self.component))

    @classmethod
    def parse(cls, text: str) -> Cover | None:
        parts = text.strip().split("|")
        if len(parts) < 2 or parts[0] != QR_PREFIX or not parts[1]:
            return None
        parts += ["", ""]
        return cls(parts[1].strip(), parts[2].strip(), parts[3].strip())


@dataclass
class SheetInfo:
    """One sheet to print."""

    code: str
    kind: str = ""
    component: str = ""
    procedure: str = ""
    procedure_name: str = ""
    unit: str = ""
    required: list[str] = field(default_factory=list)


def _font(bold: bool = False) -> Path:
    names = ("NotoSans-Bold.ttf", "DejaVuSans-Bold.ttf") if bold else ("NotoSans-Regular.ttf", "DejaVuSans.ttf")
    for d in FONT_DIRS:
        for n in names:
            if (Path(d) / n).is_file():
                return Path(d) / n
    raise FileNotFoundError("no font with Vietnamese letters (Debian: fonts-noto-core or fonts-dejavu-core)")


def cover_pdf(sheets: list[SheetInfo]) -> bytes:
    """A4 cover sheets, one page each, fonts embedded."""
    import segno
    from fpdf import FPDF

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(False)
    pdf.add_font("Noto", "", str(_font()))
    pdf.add_font("Noto", "B", str(_font(bold=True)))
    pdf.set_title("Phiếu tách hồ sơ")
    pdf.set_creator("sohoa")
    for s in sheets:
        cover = Cover(s.code, s.kind, s.component)
        pdf.add_page()
        pdf.set_fill_color(0, 0, 0)
        pdf.rect(10, 10, 190, 9, style="F")  # the black band: a sheet is recognised even without its QR
        pdf.set_text_color(255, 255, 255)
        pdf.set_font("Noto", "B", 13)
        pdf.set_xy(10, 10.5)
        pdf.cell(190, 8, "PHIẾU TÁCH HỒ SƠ — đặt trước các trang của hồ sơ khi quét", align="C")
        pdf.set_text_color(0, 0, 0)
        qr = segno.make(cover.payload(), error="h", micro=False)
        buf = io.BytesIO()
        qr.save(buf, kind="png", scale=10, border=4)
        pdf.image(io.BytesIO(buf.getvalue()), x=125, y=28, w=70, h=70)
        pdf.set_xy(12, 30)
        pdf.set_font("Noto", "", 12)
        pdf.cell(100, 7, "Mã hồ sơ")
        pdf.set_xy(12, 38)
        pdf.set_font("Noto", "B", 22 if len(s.code) <= 26 else 16)
        pdf.multi_cell(110, 11, s.code)
        y = pdf.get_y() + 4
        pdf.set_font("Noto", "", 12)
        for label, value in (
            ("Thủ tục", " ".join(x for x in (s.procedure, s.procedure_name) if x)),
            ("Đơn vị", s.unit),
            ("Loại", {"input": "thành phần hồ sơ", "output": "kết quả"}.get(s.kind, "")),
            ("Thành phần", s.component),
        ):
            if value:
                pdf.set_xy(12, y)
                pdf.multi_cell(110, 7, f"{label}: {value}")
                y = pdf.get_y() + 1
        y = max(y, 104) + 4
        if s.required:
            pdf.set_xy(12, y)
            pdf.set_font("Noto", "B", 13)
            pdf.cell(180, 8, "Thành phần hồ sơ bắt buộc")
            y += 10
            pdf.set_font("Noto", "", 12)
            for name in s.required:
                pdf.rect(14, y + 1.2, 4.5, 4.5)
                pdf.set_xy(21, y)
                pdf.multi_cell(170, 7, name)
                y = pdf.get_y() + 1.5
        pdf.set_xy(12, 280)
        pdf.set_font("Noto", "", 9)
        pdf.cell(186, 5, f"sohoa · {s.code}" + (f" · {s.component}" if s.component else ""), align="C")
    return bytes(pdf.output())


# -- reading a scanned page -----------------------------------------------------------------------------
def _band(gray: np.ndarray) -> int | None:
    """The rotation (0/90/180/270) that puts a sheet's black band at the top, if the page has one."""
    h, w = gray.shape
    dark = gray < 100
    for rotation, strip in (
        (0, dark[: h // 8]),
        (180, dark[-(h // 8) :]),
        (90, dark[:, -(w // 8) :].T),
        (270, dark[:, : w // 8].T),
    ):
        rows = strip.mean(axis=1)
        if (rows > 0.7).sum() >= max(3, strip.shape[0] // 40):
            return rotation
    return None


def read_cover(image: Image.Image, code_pattern: str, ocr_fallback: bool = True) -> Cover | None:
    """The cover sheet on this page, or None when it is a page of content."""
    import zxingcpp

    gray = ImageOps.grayscale(image)
    for found in zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)):
        cover = Cover.parse(found.text)
        if cover:
            return cover
    arr = np.asarray(gray)
    rotation = _band(arr)
    if rotation is None or not ocr_fallback:
        return None
    from ocr import OcrSettings, process_page

    page = gray.rotate(rotation, expand=True) if rotation else gray
    text = process_page(page, SCAN_DPI, OcrSettings(searchable_pdf=False)).text
    pattern = code_pattern.strip("^$")
    m = re.search(pattern.replace(r"\d", "[0-9]"), " ".join(text.split()).replace(" .", ".").replace(". ", "."))
    if m:
        log.warning("cover sheet without a readable QR: code %s read by OCR, to confirm", m.group(0))
        return Cover(m.group(0), by_ocr=True)
    log.warning("a page looks like a cover sheet but neither its QR nor its code could be read")
    return None


# -- splitting a stack ----------------------------------------------------------------------------------
@dataclass
class Part:
    cover: Cover | None  # None: pages before the first sheet (or a stack without sheets)
    pages: list[int]  # 0-based page indices in the stack
    data: bytes = b""  # the part as a PDF

    @property
    def code(self) -> str:
        return self.cover.code if self.cover else ""


def _pages(path: Path, media_type: str, max_page_pixels: int = DEFAULT_MAX_PAGE_PIXELS) -> Iterator[Image.Image]:
    """The stack's pages, one at a time (bounded memory), grey, at about SCAN_DPI.

    Read through the format registry (:mod:`sohoa.formats`), as the worker reads them: a PDF page that is
    one scanned image is taken as that image (no rendering), any other PDF page is rendered at SCAN_DPI
    within ``max_page_pixels``; TIFF/JPEG/PNG frames are decoded from the file. A page whose dpi is above
    1.3 × SCAN_DPI is scaled down to SCAN_DPI (an image without a dpi is taken as 300 dpi)."""
    from sohoa import formats

    for page in formats.iter_pages(path, media_type, SCAN_DPI, max_page_pixels):
        frame = page.image if page.image.mode == "L" else page.image.convert("L")
        dpi = float(page.dpi or 300)
        if dpi > SCAN_DPI * 1.3:
            frame = frame.resize((round(frame.width * SCAN_DPI / dpi), round(frame.height * SCAN_DPI / dpi)))
        yield frame


def _assemble(path: Path, media_type: str, pages: list[int]) -> bytes:
    buf = io.BytesIO()
    if media_type == "application/pdf":
        with pikepdf.open(path) as src:
            out = pikepdf.new()
            for i in pages:
                out.pages.append(src.pages[i])
            out.save(buf)
        return buf.getvalue()
    frames = []
    with Image.open(path) as im:
        dpi = im.info.get("dpi", (300, 300))
        for i in pages:
            im.seek(i)
            one = io.BytesIO()
            frame = im.convert("L") if im.mode in ("L", "1", "I;16") else im.convert("RGB")
            frame.save(one, "PNG", dpi=dpi)
            frames.append(one.getvalue())
    return img2pdf.convert(frames)


def split_stack(
    path: Path,
    media_type: str,
    code_pattern: str,
    ocr_fallback: bool = True,
    max_page_pixels: int = DEFAULT_MAX_PAGE_PIXELS,
) -> list[Part]:
    """Split a scanned stack at its cover sheets; the sheets themselves are dropped."""
    parts: list[Part] = []
    current: Part | None = None
    for i, image in enumerate(_pages(path, media_type, max_page_pixels)):
        cover = read_cover(image, code_pattern, ocr_fallback)
        if cover is not None:
            current = Part(cover, [])
            parts.append(current)
            continue
        if current is None:
            current = Part(None, [])
            parts.append(current)
        current.pages.append(i)
    parts = [p for p in parts if p.pages]
    for p in parts:
        p.data = _assemble(path, media_type, p.pages)
    return parts


# -- ingesting a stack ----------------------------------------------------------------------------------
OCR_NOTE = "mã hồ sơ đọc bằng OCR từ phiếu tách (không đọc được mã QR): cần xác nhận"


def ingest_stack(
    ctx: object,
    path: Path,
    filename: str,
    dossier: str = "",
    kind: str = "",
    component: str = "",
    unit: str = "",
    uploaded_by: str = "",
    keep_duplicate: bool = False,
) -> list[object]:
    """Split a stack and ingest each part for the dossier of its cover sheet (kind and component from the
    sheet, else the given ones). A part before the first sheet takes *dossier* if given. Returns, per part,
    an ``Accepted`` or the ``InputError`` that refused it (the other parts are kept). *keep_duplicate*: a
    part whose content is already stored is kept as a new version (see :func:`ingest.accept_batch`)."""
    from ingest import InputError, UploadItem, accept_batch
    from ingest.validate import validate_file
    from sohoa.context import Context
    from sohoa.tempfiles import tempdir

    assert isinstance(ctx, Context)
    info = validate_file(ctx.settings, path, filename)
    parts = split_stack(path, info.media_type, ctx.settings.dossier_code_pattern,
                        max_page_pixels=ctx.settings.max_page_pixels)  # fmt: skip
    stem = Path(filename).stem
    results: list[object] = []
    with tempdir("stack") as tmp:
        for n, part in enumerate(parts, 1):
            code = part.code or dossier
            name = f"{stem} - {code or 'chưa có mã'} ({n}).pdf"
            if not code:
                e = InputError("các trang trước phiếu tách đầu tiên không có mã hồ sơ (no cover sheet, no --dossier)")
                e.filename = name
                results.append(e)
                continue
            p = Path(tmp) / f"part-{n:04d}.pdf"
            p.write_bytes(part.data)
            cover = part.cover
            item = UploadItem(p, name, code, (cover.kind if cover and cover.kind else kind) or "input",
                              (cover.component if cover and cover.component else component), unit,
                              uploaded_by=uploaded_by, notes=[OCR_NOTE] if cover and cover.by_ocr else [],
                              keep_duplicate=keep_duplicate)  # fmt: skip
            results.extend(accept_batch(ctx, [item], all_or_nothing=False))
    log.info("stack split", extra={"file": filename, "parts": len(parts), "pages": sum(len(p.pages) for p in parts)})
    return results
