"""PDF input: a scanned page's own image taken as is; other pages rasterised with pdftoppm.

**Taken as is** (no rasterisation) when a page is one image covering it, the way scanners and img2pdf
write PDFs: the page's content stream only saves/restores state, sets matrices (``q``/``Q``/``cm``)
and draws exactly one image XObject (``Do``) whose placement, axis-aligned (any multiple of 90° and
flips), covers the page's CropBox within 1 %; no annotations; the image has no ``/Mask``/``/SMask``,
no ``/ImageMask``, no ``/Decode`` array, is not JBIG2, its colour space is gray, RGB or indexed over
those (CMYK, Lab, Separation, DeviceN are rasterised: their conversion is the renderer's business),
and its ``/Width``×``/Height`` fit ``SOHOA_MAX_PAGE_PIXELS``. The image is decoded with pikepdf and
Pillow, turned upright as drawn and as the page's ``/Rotate`` says, and anything Pillow cannot decode
falls back to rasterising. Every other page (text, vector drawing, several images, a form XObject) is
rasterised at ``SOHOA_RENDER_DPI`` within the page budget.

**Resolution of a taken image** (:func:`image_dpi`): pixels over the page size in inches. A page whose
long side is above 17.7 in (larger than A3) is taken as a PDF writer that had no dpi (img2pdf's
default is 96 dpi: a 2481×3509 px A4 scan becomes a 25.8×36.5 in page): when the image's aspect ratio
is within 2 % of a paper's (tried in the order A4, Letter, Legal, A3, A5, B5: the A sizes share one
ratio) and that paper gives 150–1200 dpi, that dpi is used (2481×3509 → A4 → 300 dpi); otherwise the
page size is believed. A scan on a page of real paper size is believed too, even at 75 dpi (the OCR
upscales it).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from sohoa.formats.base import (
    FileInfo,
    Format,
    InputError,
    PageSourceError,
    SourcePage,
    check_pixels,
    ensure_pil_guard,
    fit,
    log,
)

# operators that only change graphics state or the matrix: allowed around the one image
_STATE_OPS = {"q", "Q", "cm", "Do", "ri", "i", "d", "w", "j", "J", "M", "gs"}
_GRAY_RGB = {"/DeviceGray": 1, "/DeviceRGB": 3, "/CalGray": 1, "/CalRGB": 3}
_PASS_ON_FILTERS = {"/DCTDecode", "/CCITTFaxDecode", "/FlateDecode", "/JPXDecode"}
# in order of preference: the A sizes share one aspect ratio, and A4 is what offices scan
_PAPERS_IN = {"A4": (8.27, 11.69), "Letter": (8.5, 11.0), "Legal": (8.5, 14.0), "A3": (11.69, 16.54),
              "A5": (5.83, 8.27), "B5": (6.93, 9.84)}  # fmt: skip
_SWAPS = {Image.Transpose.TRANSPOSE, Image.Transpose.TRANSVERSE, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270}
LARGEST_PAPER_IN = 17.7  # a page longer than this (A3 is 16.54 in) has no physical size


@dataclass
class PageImage:
    """How to take a page's image: the XObject and the Pillow transposes that make it upright."""

    xobject: Any  # pikepdf.Stream
    width: int
    height: int
    transposes: list[Image.Transpose]
    page_w_in: float  # the page as shown (after /Rotate), in inches
    page_h_in: float


Matrix = tuple[float, float, float, float, float, float]


def _mult(m1: Matrix, m2: Matrix) -> Matrix:
    a1, b1, c1, d1, e1, f1 = m1
    a2, b2, c2, d2, e2, f2 = m2
    return (a1 * a2 + b1 * c2, a1 * b2 + b1 * d2, c1 * a2 + d1 * c2, c1 * b2 + d1 * d2,
            e1 * a2 + f1 * c2 + e2, e1 * b2 + f1 * d2 + f2)  # fmt: skip


def _inherited(obj: Any, key: str) -> Any:
    """A page attribute that may sit on an ancestor in the page tree (/Rotate, /Resources)."""
    seen = 0
    while obj is not None and seen < 64:
        if key in obj:
            return obj[key]
        obj = obj.get("/Parent")
        seen += 1
    return None


def _colour_ok(cs: Any) -> bool:
    import pikepdf

    if isinstance(cs, pikepdf.Name):
        return str(cs) in _GRAY_RGB
    if isinstance(cs, pikepdf.Array) and len(cs) >= 1:
        kind = str(cs[0])
        if kind in ("/CalGray", "/CalRGB"):
            return True
        if kind == "/ICCBased":
            return int(cs[1].get("/N", 0)) in (1, 3)
        if kind == "/Indexed" and len(cs) >= 2:
            return _colour_ok(cs[1])
    return False


def _filters(x: Any) -> list[str]:
    import pikepdf

    f = x.get("/Filter")
    return [str(n) for n in (f if isinstance(f, pikepdf.Array) else [f] if f is not None else [])]


def page_image(page: Any) -> tuple[PageImage | None, str]:
    """The page's one image and how to turn it upright, or ``None`` and why the page must be rasterised."""
    import pikepdf

    obj = page.obj
    if obj.get("/Annots"):
        return None, "annotations"
    resources = _inherited(obj, "/Resources")
    xobjects = resources.get("/XObject", {}) if resources is not None else {}
    try:
        ops = pikepdf.parse_content_stream(page)
    except pikepdf.PdfError as err:
        return None, f"content stream: {err}"
    ctm: Matrix = (1, 0, 0, 1, 0, 0)
    stack: list[Matrix] = []
    drawn: tuple[Any, Matrix] | None = None
    for instr in ops:
        name = str(instr.operator)
        operands = getattr(instr, "operands", [])
        if name not in _STATE_OPS:
            return None, f"content operator {name}"
        if name == "q":
            stack.append(ctm)
        elif name == "Q":
            ctm = stack.pop() if stack else ctm
        elif name == "cm":
            ctm = _mult(tuple(float(x) for x in operands), ctm)  # type: ignore[arg-type]
        elif name == "gs":
            gs = resources.get("/ExtGState", {}).get(operands[0]) if resources is not None else None
            if gs is None or any(k in gs for k in ("/SMask", "/BM", "/CA", "/ca", "/TR", "/TR2")):
                return None, "graphics state with transparency or transfer"
        elif name == "Do":
            if drawn is not None:
                return None, "several images"
            x = xobjects.get(operands[0])
            if x is None or x.get("/Subtype") != "/Image":
                return None, "form XObject"
            drawn = (x, ctm)
    if drawn is None:
        return None, "no image"
    x, (a, b, c, d, tx0, ty0) = drawn
    if x.get("/ImageMask") or "/Mask" in x or "/SMask" in x or "/Decode" in x:
        return None, "mask or decode array"
    if "/JBIG2Decode" in _filters(x):
        return None, "JBIG2 (Pillow cannot decode it)"
    if not _colour_ok(x.get("/ColorSpace")):
        return None, f"colour space {x.get('/ColorSpace')}"
    w, h = int(x.get("/Width", 0)), int(x.get("/Height", 0))
    if w <= 0 or h <= 0:
        return None, "image without size"
    scale = abs(a) + abs(b) + abs(c) + abs(d)
    swapped = abs(b) + abs(c) > abs(a) + abs(d)
    off = (abs(a) + abs(d)) if swapped else (abs(b) + abs(c))
    if off > 1e-3 * scale:
        return None, "image drawn at an angle"
    corners = [(tx0 + a * u + c * v, ty0 + b * u + d * v) for u, v in ((0, 0), (1, 0), (0, 1), (1, 1))]
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    box = [float(v) for v in page.cropbox]
    bx0, bx1, by0, by1 = min(box[0], box[2]), max(box[0], box[2]), min(box[1], box[3]), max(box[1], box[3])
    tx, ty = max(1.0, 0.01 * (bx1 - bx0)), max(1.0, 0.01 * (by1 - by0))
    if not (abs(min(xs) - bx0) <= tx and abs(max(xs) - bx1) <= tx and abs(min(ys) - by0) <= ty
            and abs(max(ys) - by1) <= ty):  # fmt: skip
        return None, "image does not cover the page"
    transposes: list[Image.Transpose] = []
    if swapped:  # image columns run down the page: transpose, then flip as the matrix says
        transposes.append(Image.Transpose.TRANSPOSE)
        flip_h, flip_v = c > 0, b > 0
    else:
        flip_h, flip_v = a < 0, d < 0
    if flip_h:
        transposes.append(Image.Transpose.FLIP_LEFT_RIGHT)
    if flip_v:
        transposes.append(Image.Transpose.FLIP_TOP_BOTTOM)
    rotate = int(_inherited(obj, "/Rotate") or 0) % 360
    if rotate % 90:
        return None, f"/Rotate {rotate}"
    turn = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
    if rotate:
        transposes.append(turn[rotate])  # /Rotate turns the page clockwise as shown
    unit = float(obj.get("/UserUnit", 1) or 1) / 72.0
    pw, ph = (bx1 - bx0) * unit, (by1 - by0) * unit
    if rotate in (90, 270):
        pw, ph = ph, pw
    return PageImage(x, w, h, transposes, pw, ph), ""


def image_dpi(width_px: int, height_px: int, width_in: float, height_in: float) -> int | None:
    """The scan resolution of a page image of ``width_px``×``height_px`` shown on a page of that size.

    See the module docstring for the rule; ``None`` when the pixels are not square (rasterise).
    """
    if width_in <= 0 or height_in <= 0:
        return None
    dx, dy = width_px / width_in, height_px / height_in
    if abs(dx / dy - 1) > 0.02:
        return None
    d = math.sqrt(dx * dy)
    if max(width_in, height_in) > LARGEST_PAPER_IN:
        short, long = sorted((width_px, height_px))
        for pw, ph in _PAPERS_IN.values():
            if abs((short / long) / (pw / ph) - 1) <= 0.02 and 150 <= long / ph <= 1200:
                return round(long / ph)
    return max(1, round(d))


def _to_python(v: Any) -> Any:
    import pikepdf

    if isinstance(v, pikepdf.Name):
        return str(v)[1:]
    if isinstance(v, bool | int | float):
        return v
    if isinstance(v, pikepdf.Array):
        return [_to_python(x) for x in v]
    if isinstance(v, pikepdf.Dictionary):
        return {str(k)[1:]: _to_python(x) for k, x in v.items()}
    try:
        return int(v)
    except (TypeError, ValueError):
        return float(v)


def decode_page_image(plan: PageImage) -> tuple[Image.Image, dict[str, Any]]:
    """Decode the planned image upright; the ``SourcePage.encoded*`` fields when its bytes can be reused."""
    import pikepdf

    x = plan.xobject
    pim = pikepdf.PdfImage(x)
    img = pim.as_pil_image()
    img.load()  # decode now: a broken stream fails here, and the page is rendered instead
    if img.size != (plan.width, plan.height):
        raise ValueError(f"decoded {img.size}, declared {(plan.width, plan.height)}")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v / 256).convert("L") if img.mode == "I" else img.convert("I").point(
            lambda v: v / 256).convert("L")  # fmt: skip
    elif img.mode not in ("1", "L", "RGB", "P"):
        img = img.convert("RGB")
    for t in plan.transposes:
        img = img.transpose(t)
    extra: dict[str, Any] = {}
    filters = _filters(x)
    cs = x.get("/ColorSpace")
    plain = str(cs) in ("/DeviceGray", "/DeviceRGB")
    if not plan.transposes and len(filters) == 1 and filters[0] in _PASS_ON_FILTERS and plain:
        parms = x.get("/DecodeParms")
        if isinstance(parms, pikepdf.Array):
            parms = parms[0] if len(parms) else None
        extra = {
            "encoded": x.read_raw_bytes(),
            "encoded_filter": filters[0][1:],
            "encoded_colorspace": str(cs)[1:],
            "encoded_bpc": int(x.get("/BitsPerComponent", 8)),
            "encoded_decode_parms": _to_python(parms) if parms is not None else {},
        }
    return img, extra


def lazy_jpeg(plan: PageImage) -> tuple[Image.Image, dict[str, Any]] | None:
    """A plain JPEG drawn upright, only opened (its header read): the page process decodes it, not the
    worker's main process. None when anything about it needs :func:`decode_page_image` — which also
    catches a broken stream (no end marker, a header that does not match): that page is rendered."""
    x = plan.xobject
    cs = str(x.get("/ColorSpace"))
    if plan.transposes or _filters(x) != ["/DCTDecode"] or "/DecodeParms" in x or x.get("/BitsPerComponent") != 8:
        return None
    raw = x.read_raw_bytes()
    if not raw.rstrip(b"\0\r\n\t ").endswith(b"\xff\xd9"):
        return None
    try:
        img = Image.open(io.BytesIO(raw), formats=["JPEG"])
    except Exception:  # noqa: BLE001 - whatever Pillow cannot parse is decoded (and maybe rendered) the long way
        return None
    if img.size != (plan.width, plan.height) or (img.mode, cs) not in (("L", "/DeviceGray"), ("RGB", "/DeviceRGB")):
        img.close()
        return None
    extra = {"encoded": raw, "encoded_filter": "DCTDecode", "encoded_colorspace": cs[1:], "encoded_bpc": 8,
             "encoded_decode_parms": {}, "lazy": True}  # fmt: skip
    return img, extra


def render_dpi_within(width_pt: float, height_pt: float, dpi: int, max_page_pixels: int) -> int:
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


def _page_size_pt(page: Any) -> tuple[float, float]:
    box = [float(x) for x in page.mediabox]
    unit = float(page.obj.get("/UserUnit", 1) or 1)
    return abs(box[2] - box[0]) * unit, abs(box[3] - box[1]) * unit


def _rasterise(path: Path, i: int, wpt: float, hpt: float, render_dpi: int, max_page_pixels: int) -> SourcePage:
    from pdf2image import convert_from_path
    from pdf2image.exceptions import PDFInfoNotInstalledError

    dpi = render_dpi_within(wpt, hpt, render_dpi, max_page_pixels)
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
    except PDFInfoNotInstalledError as e:
        raise RuntimeError("poppler-utils (pdfinfo/pdftoppm) is not installed") from e
    except Exception as e:
        raise PageSourceError(f"cannot render PDF page {i}: {e}") from e
    if not imgs:
        raise PageSourceError(f"PDF page {i} rendered to nothing")
    img = fit(imgs[0], max_page_pixels, f"PDF page {i}")
    return SourcePage(i, img, dpi, f"{img.mode} (rendered at {dpi} dpi)")


def _taken(i: int, plan: PageImage, max_page_pixels: int) -> SourcePage | None:
    """The page's own image, upright, or ``None`` when it must be rasterised."""
    if plan.width * plan.height > max_page_pixels:
        return None
    swaps = sum(t in _SWAPS for t in plan.transposes) % 2
    size = (plan.height, plan.width) if swaps else (plan.width, plan.height)
    dpi = image_dpi(size[0], size[1], plan.page_w_in, plan.page_h_in)
    if dpi is None:
        log.info("PDF page %d: image pixels are not square on the page: rasterised", i)
        return None
    try:
        img, extra = lazy_jpeg(plan) or decode_page_image(plan)
    except Exception as e:  # noqa: BLE001 - whatever Pillow/pikepdf cannot decode, the renderer may
        log.info("PDF page %d: its image cannot be decoded here (%s: %s): rasterised", i, type(e).__name__, e)
        return None
    label = f"{img.mode} (page image at {dpi} dpi{', ' + extra['encoded_filter'] if extra else ''})"
    return SourcePage(i, img, dpi, label, **extra)


class Pdf(Format):
    name, label, media_type, extension = "pdf", "PDF", "application/pdf", ".pdf"
    extensions = (".pdf",)

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"%PDF-") or (b"%PDF-" in head[:1024])

    def validate(self, settings: Any, path: Path, info: FileInfo) -> None:
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
                try:
                    plan, _ = page_image(page)
                except Exception:  # noqa: BLE001 - an odd page is rasterised: checked as such below
                    plan = None
                if plan is not None and plan.width * plan.height <= settings.max_page_pixels:
                    check_pixels(settings.max_pixels, plan.width, plan.height, f"PDF page {i} image")
                    continue  # its own image is taken: the page size in points does not matter
                wpt, hpt = abs(box[2] - box[0]), abs(box[3] - box[1])
                scale = settings.render_dpi / 72.0
                check_pixels(
                    settings.max_pixels,
                    int(wpt * scale),
                    int(hpt * scale),
                    f"PDF page {i} at {settings.render_dpi} dpi",
                )
                dpi = render_dpi_within(wpt * unit, hpt * unit, settings.render_dpi, settings.max_page_pixels)
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

    def count_pages(self, path: Path) -> int:
        import pikepdf

        try:
            with pikepdf.open(path) as pdf:
                return len(pdf.pages)
        except Exception as e:  # noqa: BLE001 - a PDF qpdf cannot read
            raise PageSourceError(f"cannot read the PDF: {e}") from e

    def iter_pages(
        self, path: Path, render_dpi: int, max_page_pixels: int, take_images: bool = True
    ) -> Iterator[SourcePage]:
        """One page at a time: its own image when it is a scan (see the module docstring), else rendered."""
        import pikepdf

        ensure_pil_guard(max_page_pixels)
        try:
            pdf = pikepdf.open(path)
        except Exception as e:  # noqa: BLE001
            raise PageSourceError(f"cannot read the PDF: {e}") from e
        with pdf:
            for i, page in enumerate(pdf.pages, 1):
                try:
                    wpt, hpt = _page_size_pt(page)
                except Exception as e:  # noqa: BLE001
                    raise PageSourceError(f"PDF page {i} has no size that qpdf can read: {e}") from e
                src = None
                if take_images:
                    try:
                        plan, why = page_image(page)
                    except Exception as e:  # noqa: BLE001 - an unusual page: the renderer decides
                        plan, why = None, f"{type(e).__name__}: {e}"
                    if plan is not None:
                        src = _taken(i, plan, max_page_pixels)
                    else:
                        log.debug("PDF page %d rasterised: %s", i, why)
                yield src or _rasterise(path, i, wpt, hpt, render_dpi, max_page_pixels)


FORMAT = Pdf()
