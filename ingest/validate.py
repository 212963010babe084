"""Validation of uploads and their metadata. Nothing is stored until this passes."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from sohoa.models import Kind
from sohoa.settings import Settings
from sohoa.text import nfc
from workers.pages import ensure_pil_guard, open_scan, pdf_render_dpi

MEDIA = {
    "pdf": ("application/pdf", ".pdf"),
    "tiff": ("image/tiff", ".tif"),
    "jpeg": ("image/jpeg", ".jpg"),
    "png": ("image/png", ".png"),
}
_EXT = {".pdf": "pdf", ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}


class InputError(ValueError):
    """A client error: the message is shown to the clerk as is."""

    def __init__(self, message: str, status: int = 422, filename: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.filename = filename

    def __str__(self) -> str:
        return f"{self.filename}: {self.message}" if self.filename else self.message


@dataclass
class FileInfo:
    format: str  # pdf | tiff | jpeg | png
    media_type: str
    extension: str
    pages: int
    size: int
    warnings: list[str] = field(default_factory=list)


def sniff(head: bytes) -> str | None:
    if head.startswith(b"%PDF-") or (b"%PDF-" in head[:1024]):
        return "pdf"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "tiff"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    return None


def _describe(head: bytes) -> str:
    import codecs

    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head[:512], final=False)
    except UnicodeDecodeError:
        return "unknown binary content"
    if any(ord(c) < 32 and c not in "\r\n\t\f" for c in text):
        return "unknown binary content"
    return "it looks like text"


def validate_metadata(
    settings: Settings, dossier_code: str, kind: str, component: str = "", unit: str = ""
) -> tuple[str, str, str, str]:
    """Return NFC-normalised (dossier_code, kind, component, unit) or raise :class:`InputError`."""
    code = nfc((dossier_code or "").strip())
    if not code:
        raise InputError("dossier code (mã hồ sơ) is required")
    if not re.fullmatch(settings.dossier_code_pattern, code, re.ASCII):
        raise InputError(
            f"malformed dossier code {code!r}: expected a code like 000.00.06.H56-231027-0361 "
            f"(pattern {settings.dossier_code_pattern}, set SOHOA_DOSSIER_CODE_PATTERN to change it)"
        )
    k = (kind or "").strip().lower()
    if k not in {x.value for x in Kind}:
        raise InputError(f"unknown document kind {kind!r}: use 'input' (thành phần hồ sơ) or 'output' (kết quả)")
    comp = nfc((component or "").strip())
    un = nfc((unit or "").strip())
    if len(comp) > 300 or len(un) > 300:
        raise InputError("component name and unit must be at most 300 characters")
    return code, k, comp, un


def _check_pixels(settings: Settings, w: int, h: int, where: str) -> None:
    if w <= 0 or h <= 0:
        raise InputError(f"{where} has no pixels ({w}×{h})")
    if w * h > settings.max_pixels:
        raise InputError(
            f"{where} is {w}×{h} px ({w * h / 1e6:,.0f} megapixels), above the limit of "
            f"{settings.max_pixels / 1e6:,.0f} megapixels (SOHOA_MAX_PIXELS)",
            status=413,
        )


def _check_page_budget(settings: Settings, w: int, h: int, page: int) -> None:
    """One decoded page may hold at most ``max_page_pixels`` (a small file can declare a huge page)."""
    if w * h > settings.max_page_pixels:
        raise InputError(
            f"page {page} is {w}×{h} px ({w * h / 1e6:,.0f} megapixels), above the per-page limit of "
            f"{settings.max_page_pixels / 1e6:,.0f} megapixels (SOHOA_MAX_PAGE_PIXELS); decoded it would "
            f"take about {w * h * 3 / 1e6:,.0f} MB: rescan it at a lower resolution (A4 at 600 dpi fits)",
            status=413,
        )


def _validate_pdf(settings: Settings, path: Path, info: FileInfo) -> None:
    import pikepdf

    try:
        pdf = pikepdf.open(path)
    except pikepdf.PasswordError as e:
        raise InputError("encrypted PDF: it needs a password; upload an unprotected copy") from e
    except (pikepdf.PdfError, ValueError, OSError) as e:
        detail = str(e).replace(str(path), "").lstrip(": ").splitlines()[0][:200] if str(e) else type(e).__name__
        raise InputError(f"corrupt PDF: {detail}") from e
    with pdf:
        if pdf.is_encrypted:
            raise InputError("encrypted PDF: remove the protection before uploading it for archiving")
        try:
            n = len(pdf.pages)
        except Exception as e:  # broken page tree
            raise InputError(f"corrupt PDF: cannot read its pages ({e})") from e
        if n == 0:
            raise InputError("PDF has no pages")
        if n > settings.max_pages:
            raise InputError(f"PDF has {n} pages, above the limit of {settings.max_pages} (SOHOA_MAX_PAGES)", 413)
        reduced: list[tuple[int, int]] = []  # (page, dpi) of pages rendered below render_dpi
        for i, page in enumerate(pdf.pages, 1):
            try:
                box = [float(x) for x in page.mediabox]
                unit = float(page.obj.get("/UserUnit", 1) or 1)
            except Exception as e:
                raise InputError(f"corrupt PDF: page {i} has no valid size ({e})") from e
            wpt, hpt = abs(box[2] - box[0]), abs(box[3] - box[1])
            scale = settings.render_dpi / 72.0
            _check_pixels(settings, int(wpt * scale), int(hpt * scale), f"PDF page {i} at {settings.render_dpi} dpi")
            dpi = pdf_render_dpi(wpt * unit, hpt * unit, settings.render_dpi, settings.max_page_pixels)
            if dpi < 1:
                raise InputError(
                    f"PDF page {i} is {wpt * unit:,.0f}×{hpt * unit:,.0f} pt, too large to render within "
                    f"{settings.max_page_pixels / 1e6:,.0f} megapixels (SOHOA_MAX_PAGE_PIXELS)",
                    413,
                )
            if dpi < settings.render_dpi:
                reduced.append((i, dpi))
        if reduced:
            listed = ", ".join(f"page {p} at {d} dpi" for p, d in reduced[:5]) + (", …" if len(reduced) > 5 else "")
            info.warnings.append(
                f"{len(reduced)} PDF page(s) too large for {settings.render_dpi} dpi within "
                f"{settings.max_page_pixels / 1e6:,.0f} megapixels per page (SOHOA_MAX_PAGE_PIXELS) "
                f"will be rendered at a lower resolution: {listed}"
            )
        info.pages = n


def _validate_image(settings: Settings, path: Path, info: FileInfo) -> None:
    ensure_pil_guard(settings.max_page_pixels)  # PIL's guard stays finite; ours is checked first, per frame
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with open_scan(path, info.format) as im:  # header only: nothing is decoded before the checks
                n = int(getattr(im, "n_frames", 1))
                if n > settings.max_pages:
                    raise InputError(
                        f"image has {n} pages, above the limit of {settings.max_pages} (SOHOA_MAX_PAGES)", 413
                    )
                for i in range(n):
                    im.seek(i)
                    _check_pixels(settings, im.width, im.height, f"page {i + 1}" if n > 1 else "image")
                    _check_page_budget(settings, im.width, im.height, i + 1)
                    dpi = im.info.get("dpi")
                    if dpi and 0 < round(float(dpi[0])) < settings.min_dpi_warning:  # PNG stores px/m: 199.9994
                        info.warnings.append(
                            f"page {i + 1} is scanned at {round(float(dpi[0]))} dpi, below {settings.min_dpi_warning}"
                        )
                im.seek(0)
                im.draft("L", (max(1, im.width // 8), max(1, im.height // 8)))
                im.load()
        except InputError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
            raise InputError(f"corrupt or unreadable {info.format.upper()} image: {e}") from e
    info.pages = n


def validate_file(settings: Settings, path: Path, filename: str) -> FileInfo:
    """Check an uploaded file on disk; return what it is or raise :class:`InputError`."""
    filename = nfc(filename)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise InputError(f"cannot read file: {e}", filename=filename) from e
    try:
        if size == 0:
            raise InputError("empty file (0 bytes)")
        if size > settings.max_upload_mb * 1024 * 1024:
            raise InputError(
                f"file is {size / 1048576:,.0f} MB, above the limit of {settings.max_upload_mb} MB "
                "(SOHOA_MAX_UPLOAD_MB)",
                413,
            )
        with open(path, "rb") as f:
            head = f.read(2048)
        fmt = sniff(head)
        ext = Path(filename).suffix.lower()
        if fmt is None:
            claimed = _EXT.get(ext)
            what = f"a {claimed.upper()} file" if claimed else "a PDF, TIFF, JPEG or PNG file"
            raise InputError(f"not {what}: {_describe(head)} (accepted: PDF, TIFF, JPEG, PNG)", 415)
        media_type, extension = MEDIA[fmt]
        info = FileInfo(format=fmt, media_type=media_type, extension=extension, pages=0, size=size)
        if ext in _EXT and _EXT[ext] != fmt:
            info.warnings.append(f"file name says {ext} but the content is {fmt.upper()}; stored as {fmt.upper()}")
        if fmt == "pdf":
            _validate_pdf(settings, path, info)
        else:
            _validate_image(settings, path, info)
        return info
    except InputError as e:
        e.filename = filename
        raise
