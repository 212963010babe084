"""Files made by code for the tests: good scans and every kind of bad input."""

from __future__ import annotations

import io
import struct
import zlib

import pikepdf

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
