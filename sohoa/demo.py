"""Generated demo batch and test fixtures: Vietnamese administrative pages rendered with PIL."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

import img2pdf
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
]

TEXTS = {
    "don_dat_dai": [
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "ĐƠN ĐĂNG KÝ BIẾN ĐỘNG ĐẤT ĐAI",
        "Kính gửi: Văn phòng đăng ký đất đai huyện Quảng Xương",
        "Tôi là Nguyễn Văn Hùng, sinh năm 1978, số định danh cá nhân 038078001234.",
        "Địa chỉ thường trú: thôn Đông Phú, xã Quảng Định, tỉnh Thanh Hóa.",
        "Đề nghị đăng ký biến động quyền sử dụng đất đối với thửa đất số 125,",
        "tờ bản đồ số 7, diện tích 350 mét vuông, mục đích sử dụng đất ở nông thôn.",
        "Lý do biến động: nhận chuyển nhượng quyền sử dụng đất theo hợp đồng công chứng.",
        "Hồ sơ đất đai kèm theo gồm giấy chứng nhận và hợp đồng chuyển nhượng.",
    ],
    "hop_dong": [
        "HỢP ĐỒNG CHUYỂN NHƯỢNG QUYỀN SỬ DỤNG ĐẤT",
        "Hôm nay, tại Văn phòng công chứng Thanh Hóa, chúng tôi gồm:",
        "Bên chuyển nhượng: bà Trần Thị Mai, sinh năm 1965.",
        "Bên nhận chuyển nhượng: ông Nguyễn Văn Hùng, sinh năm 1978.",
        "Hai bên thỏa thuận việc chuyển nhượng quyền sử dụng đất như sau:",
        "Giá chuyển nhượng là năm trăm triệu đồng, thanh toán một lần bằng tiền mặt.",
        "Bên nhận chuyển nhượng có nghĩa vụ nộp lệ phí trước bạ theo quy định.",
    ],
    "khai_sinh": [
        "TỜ KHAI ĐĂNG KÝ KHAI SINH",
        "Kính gửi: Ủy ban nhân dân xã Quảng Định",
        "Họ, chữ đệm, tên người yêu cầu: Lê Thị Hồng Nhung",
        "Quan hệ với người được khai sinh: mẹ đẻ",
        "Đề nghị cơ quan đăng ký khai sinh cho người dưới đây:",
        "Họ, chữ đệm, tên: Phạm Minh Đức, giới tính: nam",
        "Ngày, tháng, năm sinh: mười lăm tháng ba năm hai nghìn hai mươi sáu",
        "Nơi sinh: Bệnh viện đa khoa tỉnh Thanh Hóa. Dân tộc: Kinh. Quốc tịch: Việt Nam.",
    ],
    "quyet_dinh": [
        "ỦY BAN NHÂN DÂN HUYỆN QUẢNG XƯƠNG",
        "QUYẾT ĐỊNH",
        "Về việc cấp giấy chứng nhận quyền sử dụng đất",
        "Căn cứ Luật Đất đai ngày 18 tháng 01 năm 2024;",
        "Căn cứ Nghị định số 101/2024/NĐ-CP của Chính phủ;",
        "Xét đề nghị của Văn phòng đăng ký đất đai, hồ sơ đầy đủ và hợp lệ,",
        "Điều 1. Cấp giấy chứng nhận quyền sử dụng đất cho ông Nguyễn Văn Hùng.",
        "Điều 2. Quyết định này có hiệu lực kể từ ngày ký.",
    ],
    "trich_luc": [
        "TRÍCH LỤC KHAI SINH",
        "Họ, chữ đệm, tên: Phạm Minh Đức",
        "Ngày, tháng, năm sinh: 15/03/2026. Giới tính: Nam",
        "Nơi đăng ký khai sinh: Ủy ban nhân dân xã Quảng Định, tỉnh Thanh Hóa",
        "Họ, chữ đệm, tên người mẹ: Lê Thị Hồng Nhung",
        "Họ, chữ đệm, tên người cha: Phạm Văn Thành",
    ],
}


def font(size: int = 40) -> ImageFont.FreeTypeFont:
    for path in FONT_CANDIDATES:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    raise RuntimeError("no font with Vietnamese glyphs found: install fonts-dejavu-core (the setup script does)")


def render_page(
    lines: list[str], dpi: int = 300, size_pt: float = 13, skew: float = 0.0, noise: bool = False, seed: int = 0
) -> Image.Image:
    """An A4 page (grayscale) with *lines* of text, like a scan at *dpi*."""
    w, h = int(8.27 * dpi), int(11.69 * dpi)
    img = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(img)
    f = font(int(size_pt * dpi / 72))
    y = int(0.9 * dpi)
    step = int(size_pt * dpi / 72 * 1.7)
    for line in lines:
        draw.text((int(0.9 * dpi), y), line, font=f, fill=20)
        y += step
    if skew:
        img = img.rotate(skew, resample=Image.Resampling.BICUBIC, fillcolor=255, expand=False)
    if noise:
        rnd = random.Random(seed)
        img = img.filter(ImageFilter.GaussianBlur(0.6))
        px = img.load()
        assert px is not None
        for _ in range(w * h // 400):
            x, yy = rnd.randrange(w), rnd.randrange(h)
            px[x, yy] = rnd.choice((0, 255))
    img.info["dpi"] = (dpi, dpi)
    return img


def image_bytes(img: Image.Image, fmt: str, dpi: int = 300, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=quality, dpi=(dpi, dpi))
    else:
        img.save(buf, fmt, dpi=(dpi, dpi))
    return buf.getvalue()


def pdf_bytes(pages: list[Image.Image], dpi: int = 300) -> bytes:
    """A PDF of JPEG page images, as a scanner writes it (lossless wrap with img2pdf)."""
    jpgs = [image_bytes(p, "JPEG", dpi) for p in pages]
    out = img2pdf.convert(jpgs, layout_fun=img2pdf.get_fixed_dpi_layout_fun((dpi, dpi)))
    assert out is not None
    return bytes(out)


def tiff_bytes(pages: list[Image.Image], dpi: int = 300) -> bytes:
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:], compression="tiff_deflate", dpi=(dpi, dpi))
    return buf.getvalue()


@dataclass
class DemoFile:
    path: Path
    dossier_code: str
    kind: str
    component: str
    unit: str


def make_demo_batch(folder: Path, dpi: int = 300) -> list[DemoFile]:
    """Write a small batch of scans for three dossiers and return the manifest rows."""
    folder.mkdir(parents=True, exist_ok=True)
    unit_huyen = "UBND huyện Quảng Xương"
    unit_xa = "UBND xã Quảng Định"
    d1, d2, d3 = "000.00.06.H56-261105-0001", "000.00.06.H56-261105-0002", "000.20.31.H56-261106-0015"
    files: list[DemoFile] = []

    def add(name: str, data: bytes, code: str, kind: str, comp: str, unit: str) -> None:
        p = folder / name
        p.write_bytes(data)
        files.append(DemoFile(p, code, kind, comp, unit))

    pages = [render_page(TEXTS["don_dat_dai"], dpi, skew=1.5), render_page(TEXTS["hop_dong"], dpi, noise=True, seed=1)]
    add("don-dang-ky-bien-dong.pdf", pdf_bytes(pages, dpi), d1, "input", "Đơn đăng ký biến động", unit_huyen)
    add(
        "quyet-dinh-cap-gcn.png",
        image_bytes(render_page(TEXTS["quyet_dinh"], dpi), "PNG", dpi),
        d1,
        "output",
        "Quyết định",
        unit_huyen,
    )
    add(
        "to-khai-khai-sinh.jpg",
        image_bytes(render_page(TEXTS["khai_sinh"], dpi, skew=-2.0), "JPEG", dpi),
        d2,
        "input",
        "Tờ khai đăng ký khai sinh",
        unit_xa,
    )
    add(
        "trich-luc-khai-sinh.tif",
        tiff_bytes([render_page(TEXTS["trich_luc"], dpi)], dpi),
        d2,
        "output",
        "Trích lục khai sinh",
        unit_xa,
    )
    add(
        "hop-dong-chuyen-nhuong.tif",
        tiff_bytes([render_page(TEXTS["hop_dong"], dpi), render_page(TEXTS["don_dat_dai"][:5], dpi)], dpi),
        d3,
        "input",
        "Hợp đồng chuyển nhượng",
        unit_huyen,
    )
    manifest = folder / "manifest.csv"
    with open(manifest, "w", encoding="utf-8") as f:
        f.write("file,dossier_code,kind,component,unit\n")
        for df in files:
            f.write(f"{df.path.name},{df.dossier_code},{df.kind},{df.component},{df.unit}\n")
    return files


DEMO_UNITS = [  # (code, name, parent): the demo batch's units in a small tree
    ("38", "UBND tỉnh Thanh Hóa", ""),
    ("38.QX", "UBND huyện Quảng Xương", "38"),
    ("38.QX.QD", "UBND xã Quảng Định", "38.QX"),
]
DEMO_ACCOUNTS = [  # (user, roles, units, display name)
    ("quantri", ["admin"], ["*"], "Quản trị hệ thống"),
    ("vanthu", ["clerk"], ["38.QX"], "Văn thư một cửa huyện"),
    ("tracuu", ["staff"], ["38.QX"], "Cán bộ tra cứu huyện"),
    ("tracuu.xa", ["staff"], ["38.QX.QD"], "Cán bộ tra cứu xã Quảng Định"),
    ("lanhdao", ["manager"], ["38"], "Lãnh đạo tỉnh"),
    ("kiemtra", ["auditor"], ["*"], "Kiểm tra nhật ký"),
]


def seed_demo_accounts(auth: object) -> list[tuple[str, str, str, str | None]]:
    """Create the demo unit tree (if there is none) and one account per role (if missing), each with a
    random password. Returns (user, roles, units, password or None when the account already existed)."""
    from sohoa.auth import AuthStore, Unit
    from sohoa.cli.admin import generate_password

    assert isinstance(auth, AuthStore)
    if not auth.units().units:
        auth.import_units([Unit(c, n, p) for c, n, p in DEMO_UNITS])
    out: list[tuple[str, str, str, str | None]] = []
    for user, roles, units, display in DEMO_ACCOUNTS:
        password: str | None = None
        if auth.get_user(user) is None:
            password = generate_password()
            auth.add_user(user, password, roles, units, display)
        out.append((user, ", ".join(roles), ", ".join(units), password))
    return out
