"""Files made by code for the tests: good scans and every kind of bad input."""

from __future__ import annotations

import io
import random
import struct
import zlib
from typing import Any

import img2pdf
import numpy as np
import pikepdf
from PIL import Image, ImageFilter

from sohoa.demo import image_bytes, pdf_bytes, render_page

PAGE1 = [
    "ỦY BAN NHÂN DÂN XÃ QUẢNG ĐỊNH",
    "Trang một: giấy tiếp nhận hồ sơ và hẹn trả kết quả",
    "Người nộp: Trần Văn Bình, điện thoại 0912345678",
]
PAGE2 = [
    "ĐƠN ĐỀ NGHỊ CẤP GIẤY CHỨNG NHẬN",
    "Hồ sơ đất đai của hộ gia đình ông Trần Văn Bình",
    "Thửa đất số 42, tờ bản đồ số 9, xã Quảng Định",
]
JPEG_LINES = [
    "TỜ KHAI ĐĂNG KÝ KẾT HÔN",
    "Họ và tên bên nữ: Nguyễn Thị Lan Hương",
    "Nơi cư trú: thôn Phú Thọ, xã Quảng Định",
]


def small_page(lines: list[str], dpi: int = 200, skew: float = 0.0):  # noqa: ANN201 - PIL image
    return render_page(lines, dpi=dpi, size_pt=14, skew=skew)


def two_page_pdf() -> bytes:
    return pdf_bytes([small_page(PAGE1), small_page(PAGE2)], dpi=200)


def jpeg_scan() -> bytes:
    return image_bytes(small_page(JPEG_LINES, skew=1.0), "JPEG", dpi=200)


def png_scan(lines: list[str] | None = None) -> bytes:
    return image_bytes(small_page(lines or JPEG_LINES), "PNG", dpi=200)


def text_pretending_pdf() -> bytes:
    return "Đây không phải PDF, chỉ là văn bản.\n".encode() * 20


def corrupt_pdf() -> bytes:
    return b"%PDF-1.7\n1 0 obj <</Type /Catalog /Pages 2 0 R>>\n" + bytes(range(256)) * 4 + b"\n%%EOF"


def truncated_pdf() -> bytes:
    good = two_page_pdf()
    return good[: len(good) // 3]


def encrypted_pdf(user_password: str = "secret") -> bytes:
    src = pikepdf.open(io.BytesIO(two_page_pdf()))
    out = io.BytesIO()
    src.save(out, encryption=pikepdf.Encryption(owner="owner-pw", user=user_password, R=6))
    return out.getvalue()


def huge_png_header(width: int = 50_000, height: int = 50_000) -> bytes:
    """A PNG whose header declares width×height pixels (the data is a tiny stub)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def blank_scan(width: int, height: int, fmt: str = "PNG", dpi: int = 300, mode: str = "1") -> bytes:
    """A white page of width×height px that really decodes to that size (bilevel: small file, fast)."""
    from PIL import Image

    out = io.BytesIO()
    with Image.new(mode, (width, height), 255 if mode in ("1", "L") else "white") as im:
        im.save(out, fmt, dpi=(dpi, dpi))
    return out.getvalue()


def multipage_tiff(sizes: list[tuple[int, int]], dpi: int = 300) -> bytes:
    """A bilevel CCITT G4 TIFF with one white page of each (width, height)."""
    from PIL import Image

    pages = [Image.new("1", size, 1) for size in sizes]
    out = io.BytesIO()
    pages[0].save(out, "TIFF", save_all=True, append_images=pages[1:], compression="group4", dpi=(dpi, dpi))
    for p in pages:
        p.close()
    return out.getvalue()


def pdf_with_page_size(width_pt: float, height_pt: float, text: str = "Trang khổ lớn") -> bytes:
    """A one-page PDF whose MediaBox is width_pt×height_pt points, with a line of text near the top-left."""
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(width_pt, height_pt))
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))  # fmt: skip
    page.obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
    safe = text.encode("ascii", "replace").decode()
    page.obj.Contents = pdf.make_stream(f"BT /F1 48 Tf 72 {height_pt - 120:.0f} Td ({safe}) Tj ET".encode())
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


# -- the scanning station: cover sheets and stacks as a scanner gives them back ---------------------------
def scanned(page: Image.Image, dpi: int, skew: float = 0.0, turn: int = 0, seed: int = 0) -> Image.Image:
    """*page* (rendered at its own dpi) as a scanner would give it back: skewed, noisy, slightly blurred, turned."""
    rnd = np.random.default_rng(seed)
    img = page.convert("L")
    if skew:
        img = img.rotate(skew, expand=True, fillcolor=255, resample=Image.BICUBIC)
    arr = np.asarray(img).astype(np.float32) + rnd.normal(0, 8, (img.height, img.width))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))
    return img.rotate(turn, expand=True) if turn else img


def cover_image(code: str, dpi: int, **kw: Any) -> Image.Image:
    from pdf2image import convert_from_bytes

    from ingest.stack import SheetInfo, cover_pdf

    page = convert_from_bytes(cover_pdf([SheetInfo(code, "input", "Đơn đề nghị")]), dpi=dpi, grayscale=True)[0]
    return scanned(page, dpi, **kw)


def make_stack(n_dossiers: int, seed: int = 7) -> tuple[bytes, dict[str, list[int]], int]:
    """A scanned stack: per dossier a cover sheet then 1–2 pages, at 150–300 dpi, skewed up to 5°, some pages
    turned upside down. Returns the PDF, the expected page indices per code and the page count."""
    rnd = random.Random(seed)
    images: list[bytes] = []
    expected: dict[str, list[int]] = {}
    for d in range(n_dossiers):
        code = f"000.00.06.H56-2607{d % 28 + 1:02d}-{seed % 100:02d}{d:02d}"
        dpi = rnd.choice([150, 200, 300])
        turn = 180 if rnd.random() < 0.2 else 0
        sheet = cover_image(code, dpi, skew=rnd.uniform(-5, 5), turn=turn, seed=d)
        buf = io.BytesIO()
        sheet.save(buf, "JPEG", quality=80, dpi=(dpi, dpi))
        images.append(buf.getvalue())
        for k in range(rnd.choice([1, 2])):
            page = render_page([f"TRANG {k + 1} CỦA HỒ SƠ", f"Hồ sơ số {d}", "Nội dung giấy tờ của công dân"], dpi)
            buf = io.BytesIO()
            scanned(page, dpi, skew=rnd.uniform(-3, 3), seed=100 + d).save(buf, "JPEG", quality=80, dpi=(dpi, dpi))
            expected.setdefault(code, []).append(len(images))
            images.append(buf.getvalue())
    return img2pdf.convert(images), expected, len(images)


