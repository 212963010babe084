"""The format registry and PDF pages taken from their embedded scan images.

Every generated PDF is read through the registry and compared with what poppler (pdftoppm) shows
for the same page at the same pixel size: a page taken as its image must look the same as the page
rendered (upright, same content), and pages that cannot be taken must be rendered.
"""

from __future__ import annotations

import io
import math
import subprocess
from pathlib import Path
from typing import Any

import img2pdf
import numpy as np
import pikepdf
import pytest
from PIL import Image, ImageDraw

from sohoa import formats
from sohoa.formats.base import PageSourceError, SourcePage
from sohoa.formats.pdf import image_dpi, page_image
from sohoa.settings import Settings

import fixtures

BUDGET = 40_000_000


def pattern(w: int = 600, h: int = 840, mode: str = "RGB") -> Image.Image:
    """A page whose every flip and turn looks different: a black block top-left, a gray one bottom-right."""
    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    d.rectangle((int(0.08 * w), int(0.05 * h), int(0.45 * w), int(0.2 * h)), fill="black")
    d.rectangle((int(0.6 * w), int(0.7 * h), int(0.92 * w), int(0.95 * h)), fill=(200, 40, 40))
    d.rectangle((int(0.08 * w), int(0.3 * h), int(0.2 * w), int(0.6 * h)), fill=(90, 90, 90))
    if mode == "1":  # thresholded, not dithered: a bilevel scan
        return im.convert("L").point(lambda v: 255 if v > 128 else 0).convert("1", dither=Image.Dither.NONE)
    return im if mode == "RGB" else im.convert(mode)


def encode(im: Image.Image, fmt: str, **kw: Any) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **kw)
    return out.getvalue()


def as_pdf(tmp_path: Path, data: bytes, name: str = "doc.pdf") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def pages(path: Path, render_dpi: int = 300, budget: int = BUDGET) -> list[SourcePage]:
    return list(formats.iter_pages(path, "application/pdf", render_dpi, budget))


def rendered(path: Path, number: int, size: tuple[int, int]) -> Image.Image:
    """The page as poppler shows it (turned by /Rotate), at the resolution that gives about ``size``."""
    with pikepdf.open(path) as pdf:
        box = [float(v) for v in pdf.pages[number - 1].cropbox]
    long_in = max(abs(box[2] - box[0]), abs(box[3] - box[1])) / 72
    dpi = max(size) / long_in
    out = subprocess.run(
        ["pdftoppm", "-r", f"{dpi:.4f}", "-f", str(number), "-l", str(number), "-png", str(path)],
        check=True,
        capture_output=True,
    ).stdout
    return Image.open(io.BytesIO(out))


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute gray difference (0–255) of two pages at the same size."""
    if a.size != b.size:
        b = b.resize(a.size)
    x = np.asarray(a.convert("L"), dtype=np.int16)
    y = np.asarray(b.convert("L"), dtype=np.int16)
    return float(np.abs(x - y).mean())


def assert_taken_as_shown(path: Path, page: SourcePage) -> None:
    assert "page image" in page.colour_mode, page.colour_mode
    shown = rendered(path, page.number, page.image.size)
    diff = difference(page.image, shown)
    assert diff < 6, (page.number, diff)
    # the check is strong enough to see a wrong turn or flip
    for t in (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_180):
        assert difference(page.image.transpose(t), shown) > 3 * max(diff, 2), t


def built_pdf(
    image: Image.Image, matrix: tuple[float, ...], page: tuple[float, float], rotate: int = 0, **extra: Any
) -> bytes:
    """A one-page PDF drawing ``image`` (Flate, as is) with the content matrix ``matrix``."""
    pdf = pikepdf.new()
    mode = image.mode
    cs = {"L": pikepdf.Name.DeviceGray, "RGB": pikepdf.Name.DeviceRGB}[mode]
    xobj = pdf.make_stream(
        image.tobytes(),
        Type=pikepdf.Name.XObject,
        Subtype=pikepdf.Name.Image,
        Width=image.width,
        Height=image.height,
        ColorSpace=cs,
        BitsPerComponent=8,
        **extra,
    )
    pg = pdf.add_blank_page(page_size=page)
    pg.obj.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=xobj))
    m = " ".join(f"{v:.4f}" for v in matrix)
    pg.obj.Contents = pdf.make_stream(f"q {m} cm /Im0 Do Q".encode())
    if rotate:
        pg.obj.Rotate = rotate
    out = io.BytesIO()
    pdf.save(out, compress_streams=True)
    return out.getvalue()


# -- the registry -----------------------------------------------------------------------------------------


def test_registry_sniffs_by_magic_bytes_and_finds_formats_by_media_type() -> None:
    assert formats.sniff(b"%PDF-1.7\n") is formats.BY_NAME["pdf"]
    assert formats.sniff(b"\x89PNG\r\n\x1a\n....") is formats.BY_MEDIA_TYPE["image/png"]
    assert formats.sniff(b"\xff\xd8\xff\xe0") is formats.BY_EXTENSION[".jpeg"]
    assert formats.sniff(b"II*\x00") is formats.BY_EXTENSION[".tif"] is formats.BY_NAME["tiff"]
    assert formats.sniff(b"GIF89a") is None and formats.sniff(b"") is None
    assert formats.accepted_labels() == "PDF, TIFF, JPEG, PNG"
    for f in formats.BY_NAME.values():  # every format is complete and reachable three ways
        assert formats.BY_MEDIA_TYPE[f.media_type] is f and f.extension in f.extensions
        assert all(formats.BY_EXTENSION[e] is f for e in f.extensions)
    with pytest.raises(PageSourceError, match="no reader for media type 'image/gif'"):
        list(formats.iter_pages(Path("x.gif"), "image/gif", 300, BUDGET))


def test_registry_counts_pages_of_every_format(tmp_path: Path) -> None:
    pdf = as_pdf(tmp_path, fixtures.two_page_pdf())
    tif = tmp_path / "a.tif"
    tif.write_bytes(fixtures.multipage_tiff([(100, 140)] * 3))
    png = tmp_path / "a.png"
    png.write_bytes(fixtures.png_scan())
    assert formats.BY_NAME["pdf"].count_pages(pdf) == 2
    assert formats.BY_NAME["tiff"].count_pages(tif) == 3
    assert formats.BY_NAME["png"].count_pages(png) == 1
    with pytest.raises(PageSourceError, match="cannot read the PDF"):
        formats.BY_NAME["pdf"].count_pages(as_pdf(tmp_path, fixtures.corrupt_pdf(), "bad.pdf"))


def test_jpeg_scan_hands_on_its_own_bytes(tmp_path: Path) -> None:
    p = tmp_path / "scan.jpg"
    p.write_bytes(fixtures.jpeg_scan())
    (page,) = formats.iter_pages(p, "image/jpeg", 300, BUDGET)
    assert page.encoded == p.read_bytes() and page.encoded_filter == "DCTDecode"
    assert (page.encoded_colorspace, page.encoded_bpc, page.dpi) == ("DeviceGray", 8, 200)
    png = tmp_path / "scan.png"
    png.write_bytes(fixtures.png_scan())
    (page,) = formats.iter_pages(png, "image/png", 300, BUDGET)
    assert page.encoded is None and page.encoded_filter == ""


def test_pages_are_read_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One page decoded per step: the second page's image is not decoded before the first is handed on."""
    from sohoa.formats import pdf as pdf_module

    p = as_pdf(tmp_path, img2pdf.convert([encode(pattern(200, 280), "JPEG", dpi=(100, 100))] * 3))
    decoded: list[int] = []
    for name in ("decode_page_image", "lazy_jpeg"):  # (a scan's JPEG is only opened: lazy_jpeg)
        real = getattr(pdf_module, name)

        def counting(plan: Any, real: Any = real) -> Any:
            decoded.append(plan.width)
            return real(plan)

        monkeypatch.setattr(pdf_module, name, counting)
    it = formats.iter_pages(p, "application/pdf", 300, BUDGET)
    next(it)
    assert len(decoded) == 1
    assert len(list(it)) == 2 and len(decoded) == 3


# -- the resolution of a taken image -------------------------------------------------------------------------


def test_image_dpi_rule() -> None:
    a4 = (8.27, 11.69)
    assert image_dpi(2481, 3509, *a4) == 300  # a scan with its dpi: believed
    assert image_dpi(620, 877, *a4) == 75  # a real 75-dpi scan on an A4 page: believed (the OCR upscales)
    assert image_dpi(2481, 3509, 2481 / 96, 3509 / 96) == 300  # img2pdf without a dpi tag: A4 at 300
    assert image_dpi(1654, 2339, 1654 / 96, 2339 / 96) == 200  # A4 at 200 dpi without tag
    assert image_dpi(3509, 2481, 3509 / 96, 2481 / 96) == 300  # landscape
    assert image_dpi(2550, 3300, 2550 / 72, 3300 / 72) == 300  # Letter, written at 72 dpi
    assert image_dpi(3000, 3000, 3000 / 96, 3000 / 96) == 96  # no paper has that shape: the page size stands
    assert image_dpi(2481, 3000, *a4) is None  # non-square pixels: rasterised


# -- PDF pages taken as their image -----------------------------------------------------------------------------


def test_img2pdf_jpeg_pages_are_taken_with_their_bytes(tmp_path: Path) -> None:
    jpgs = [encode(pattern(), "JPEG", dpi=(150, 150), quality=90), encode(pattern(mode="L"), "JPEG", dpi=(150, 150))]
    p = as_pdf(tmp_path, img2pdf.convert(jpgs))
    got = pages(p)
    assert [(x.number, x.dpi, x.image.size, x.image.mode) for x in got] == [
        (1, 150, (600, 840), "RGB"),
        (2, 150, (600, 840), "L"),
    ]
    assert [x.encoded for x in got] == jpgs  # the scanner's JPEG, byte for byte
    assert [(x.encoded_filter, x.encoded_colorspace, x.encoded_bpc) for x in got] == [
        ("DCTDecode", "DeviceRGB", 8),
        ("DCTDecode", "DeviceGray", 8),
    ]
    for x in got:
        assert_taken_as_shown(p, x)


def test_flate_ccitt_indexed_and_16_bit_images(tmp_path: Path) -> None:
    gray = encode(pattern(mode="L"), "PNG", dpi=(200, 200))
    bw = encode(pattern(mode="1"), "TIFF", compression="group4", dpi=(200, 200))
    indexed = encode(pattern().quantize(8), "PNG", dpi=(200, 200))
    deep = encode(Image.fromarray(np.asarray(pattern(mode="L"), np.uint16) * 257), "PNG", dpi=(200, 200))
    p = as_pdf(tmp_path, img2pdf.convert([gray, bw, indexed, deep]))
    got = pages(p)
    assert [x.dpi for x in got] == [200] * 4
    assert [x.image.size for x in got] == [(600, 840)] * 4
    assert got[0].encoded_filter == "FlateDecode" and got[0].encoded_decode_parms.get("Predictor") in (None, 15)
    assert got[1].encoded_filter == "CCITTFaxDecode" and got[1].image.mode == "1"
    assert got[1].encoded_decode_parms["K"] == -1 and got[1].encoded_decode_parms["Columns"] == 600
    assert got[2].encoded is None  # indexed: decoded, but its bytes are not plain gray/RGB samples
    for x in got:
        assert_taken_as_shown(p, x)


def test_img2pdf_without_dpi_tag_is_an_a4_scan_at_300_dpi(tmp_path: Path) -> None:
    """img2pdf's default layout without a dpi tag: a 25.8×36.5 in page; the page is the image itself."""
    im = pattern(2481, 3509, mode="L")
    p = as_pdf(tmp_path, img2pdf.convert([encode(im, "JPEG")]))
    with pikepdf.open(p) as pdf:
        box = [float(v) for v in pdf.pages[0].mediabox]
    assert (round(box[2] / 72, 1), round(box[3] / 72, 1)) == (25.8, 36.6)
    (page,) = pages(p)
    assert (page.dpi, page.image.size, page.encoded_filter) == (300, (2481, 3509), "DCTDecode")
    info = formats.FileInfo("pdf", "application/pdf", ".pdf", 0, p.stat().st_size)
    formats.BY_NAME["pdf"].validate(Settings(data_dir=tmp_path), p, info)
    assert info.pages == 1 and info.warnings == []  # no "rendered at a lower resolution" any more


def test_pillow_saved_multipage_pdf(tmp_path: Path) -> None:
    out = io.BytesIO()
    first, second = pattern(), pattern(mode="L").transpose(Image.Transpose.ROTATE_90)
    first.save(out, "PDF", save_all=True, append_images=[second], resolution=150)
    p = as_pdf(tmp_path, out.getvalue())
    got = pages(p)
    assert [(x.dpi, x.image.size) for x in got] == [(150, (600, 840)), (150, (840, 600))]
    for x in got:
        assert_taken_as_shown(p, x)


@pytest.mark.parametrize(
    ("matrix", "rotate"),
    [
        ((600, 0, 0, 840, 0, 0), 90),  # upright image on a page turned by /Rotate
        ((600, 0, 0, 840, 0, 0), 270),
        ((600, 0, 0, 840, 0, 0), 180),
        ((0, 600, -840, 0, 840, 0), 0),  # image turned 90° by the content matrix, landscape-shaped page
        ((0, -600, 840, 0, 0, 600), 0),  # turned the other way
        ((-600, 0, 0, 840, 600, 0), 0),  # mirrored
        ((600, 0, 0, -840, 0, 840), 0),  # upside down
        ((0, 600, -840, 0, 840, 0), 90),  # turned by both
    ],
    ids=["rotate90", "rotate270", "rotate180", "cm90", "cm270", "mirror", "flip", "cm90+rotate90"],
)
def test_turned_and_mirrored_images_come_out_as_shown(tmp_path: Path, matrix: tuple[float, ...], rotate: int) -> None:
    a, b, c, d = matrix[:4]
    page_size = (abs(a) + abs(c), abs(b) + abs(d))  # points = pixels at 72 dpi
    p = as_pdf(tmp_path, built_pdf(pattern(), matrix, page_size, rotate))
    (page,) = pages(p)
    assert page.dpi == 72
    assert page.encoded is None  # turned: the stored bytes are not the upright page
    assert_taken_as_shown(p, page)


# -- pages that must be rasterised ------------------------------------------------------------------------------


def test_text_pdf_from_fpdf2_is_rasterised(tmp_path: Path) -> None:
    from fpdf import FPDF

    doc = FPDF(format="A4")
    doc.add_page()
    doc.set_font("helvetica", size=24)
    doc.cell(text="Giay tiep nhan ho so")
    img = tmp_path / "stamp.png"
    pattern(420, 594).save(img)  # the page's shape: only the text keeps page 2 from being taken
    doc.add_page()
    doc.image(str(img), x=0, y=0, w=210, h=297)  # one image covering the page, and a line of text
    doc.cell(text="Trang 2")
    doc.add_page()
    doc.image(str(img), x=20, y=20, w=50)  # one small image: does not cover the page
    p = as_pdf(tmp_path, bytes(doc.output()))
    got = pages(p, render_dpi=100)
    assert [x.colour_mode.endswith("(rendered at 100 dpi)") for x in got] == [True] * 3
    assert [x.image.size for x in got] == [(827, 1170)] * 3
    assert all(x.encoded is None for x in got)


@pytest.mark.parametrize("case", ["smask", "angle", "stretched", "cmyk", "two-images", "jbig2", "not-covering"])
def test_pages_that_are_not_a_plain_scan_are_rasterised(tmp_path: Path, case: str) -> None:
    im = pattern(300, 420)
    if case == "smask":
        pdf = pikepdf.open(io.BytesIO(built_pdf(im, (300, 0, 0, 420, 0, 0), (300, 420))))
        x = pdf.pages[0].obj.Resources.XObject.Im0
        gray = pikepdf.Name.DeviceGray
        x.SMask = pdf.make_stream(b"\x80" * (300 * 420), Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image,
                                  Width=300, Height=420, ColorSpace=gray, BitsPerComponent=8)  # fmt: skip
        out = io.BytesIO()
        pdf.save(out)
        data = out.getvalue()
    elif case == "angle":
        t = math.radians(45)  # a square turned 45°, on a page that is its (square) bounding box
        a, b, c, d = 420 * math.cos(t), 420 * math.sin(t), -420 * math.sin(t), 420 * math.cos(t)
        data = built_pdf(pattern(420, 420), (a, b, c, d, -c, 0), (a - c, b + d))
    elif case == "stretched":  # pixels not square on the page
        data = built_pdf(im, (300, 0, 0, 600, 0, 0), (300, 600))
    elif case == "cmyk":
        data = bytes(img2pdf.convert(encode(im.convert("CMYK"), "JPEG", dpi=(72, 72))))
    elif case == "two-images":
        pdf = pikepdf.open(io.BytesIO(built_pdf(im, (300, 0, 0, 420, 0, 0), (300, 420))))
        pg = pdf.pages[0]
        pg.obj.Resources.XObject.Im1 = pg.obj.Resources.XObject.Im0
        pg.obj.Contents = pdf.make_stream(b"q 300 0 0 420 0 0 cm /Im0 Do Q q 100 0 0 100 0 0 cm /Im1 Do Q")
        out = io.BytesIO()
        pdf.save(out)
        data = out.getvalue()
    elif case == "jbig2":  # no JBIG2 encoder here: the decision alone is checked, on a stream marked JBIG2
        pdf = pikepdf.open(io.BytesIO(built_pdf(im.convert("L"), (300, 0, 0, 420, 0, 0), (300, 420))))
        pdf.pages[0].obj.Resources.XObject.Im0.Filter = pikepdf.Name.JBIG2Decode
        plan, why = page_image(pdf.pages[0])
        assert plan is None and why.startswith("JBIG2")
        return
    else:
        data = built_pdf(im, (300, 0, 0, 420, 40, 56), (380, 532))  # same shape as the page, with a margin
    p = as_pdf(tmp_path, data)
    (page,) = pages(p, render_dpi=72)
    assert page.colour_mode.endswith("(rendered at 72 dpi)"), page.colour_mode
    assert page.encoded is None
    if case == "cmyk":  # rendered as poppler shows it: the black block stays black
        assert difference(page.image, rendered(p, 1, page.image.size)) < 1


def test_page_image_above_the_budget_is_rendered_within_it(tmp_path: Path) -> None:
    p = as_pdf(tmp_path, img2pdf.convert([encode(pattern(1200, 1680, mode="L"), "JPEG", dpi=(300, 300))]))
    (page,) = pages(p, render_dpi=300, budget=1_000_000)
    assert page.colour_mode.endswith("dpi)") and "rendered" in page.colour_mode
    assert page.image.width * page.image.height <= 1_000_000
    (page,) = pages(p, render_dpi=300, budget=BUDGET)
    assert page.image.size == (1200, 1680) and page.dpi == 300


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_a_scans_jpeg_is_handed_on_undecoded_and_decodes_to_the_same_pixels(tmp_path: Path, mode: str) -> None:
    """The worker's main process only reads the JPEG's header; the page process decodes it (same pixels)."""
    from sohoa.formats.pdf import decode_page_image

    good = encode(pattern(300, 420, mode), "JPEG", dpi=(72, 72))
    p = as_pdf(tmp_path, img2pdf.convert(good))
    (page,) = pages(p, render_dpi=72)
    assert page.lazy and page.encoded == good and page.encoded_filter == "DCTDecode"
    with pikepdf.open(p) as pdf:
        plan, _ = page_image(pdf.pages[0])
        assert plan is not None
        decoded, _ = decode_page_image(plan)
    assert page.image.mode == decoded.mode == mode
    assert np.array_equal(np.asarray(page.image), np.asarray(decoded))


def test_undecodable_image_falls_back_to_rendering(tmp_path: Path) -> None:
    """An image Pillow cannot read (a broken JPEG stream poppler still draws something for) is rendered."""
    good = encode(pattern(300, 420), "JPEG", dpi=(72, 72))
    pdf = pikepdf.open(io.BytesIO(img2pdf.convert(good)))
    x = pdf.pages[0].obj.Resources.XObject.Im0
    x.write(good[:600] + b"\x00" * 50, filter=pikepdf.Name.DCTDecode)
    out = io.BytesIO()
    pdf.save(out)
    p = as_pdf(tmp_path, out.getvalue())
    (page,) = pages(p, render_dpi=72)
    assert "rendered at 72 dpi" in page.colour_mode


def test_rotate_inherited_from_the_page_tree(tmp_path: Path) -> None:
    pdf = pikepdf.open(io.BytesIO(built_pdf(pattern(), (600, 0, 0, 840, 0, 0), (600, 840))))
    pdf.Root.Pages.Rotate = 90  # on the /Pages node, not on the page
    out = io.BytesIO()
    pdf.save(out)
    p = as_pdf(tmp_path, out.getvalue())
    (page,) = pages(p)
    assert page.image.size == (840, 600)
    assert_taken_as_shown(p, page)
