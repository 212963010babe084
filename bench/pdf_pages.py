"""PDF pages: taking each page's own scan image (pikepdf) against rasterising it at 300 dpi (pdftoppm).

    .venv/bin/python bench/pdf_pages.py [--pages 20] [--rounds 3] [--ocr]

Two generated PDFs of A4 text pages scanned at 300 dpi (2481×3508 px, grayscale JPEG):
  tagged   img2pdf with the scan's dpi (pages 8.27×11.69 in), as a scanner writes them
  no-dpi   img2pdf without a dpi (its 96-dpi default: pages 25.8×36.5 in)
For each, the time to get every page as a decoded image through ``sohoa.formats`` (the worker's
``iter_pages``) taking the image, and with ``take_images=False`` (rendered at 300 dpi within the
40 MP page budget, as before). The two ways run interleaved, round after round, in one process;
min and median seconds per page are printed with the pixel size handed to the OCR. ``--ocr`` also
times ``ocr.process_page`` on page 1 of each (what the larger rendered page costs downstream).
The machine may be shared: read ratios from one run, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LINES = [
    "ỦY BAN NHÂN DÂN XÃ QUẢNG ĐỊNH",
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Độc lập - Tự do - Hạnh phúc",
    "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ",
    "Mã hồ sơ: 000.00.06.H56-231027-0361",
    "Người nộp: Trần Văn Bình, điện thoại 0912345678",
    "Thửa đất số 42, tờ bản đồ số 9, xã Quảng Định",
    "Thành phần hồ sơ gồm: đơn đề nghị, giấy chứng nhận, tờ khai",
] * 3


def make_pdfs(folder: Path, n: int) -> dict[str, Path]:
    import io

    import img2pdf

    from sohoa.demo import image_bytes, render_page

    pages = [render_page(LINES, dpi=300, noise=True, seed=i) for i in range(n)]
    untagged = []
    for page in pages:  # a JPEG without a dpi (JFIF density 1:1): img2pdf lays it out at 96 dpi
        buf = io.BytesIO()
        page.save(buf, "JPEG", quality=85)
        untagged.append(buf.getvalue())
    out = {
        "tagged": img2pdf.convert([image_bytes(p, "JPEG", dpi=300) for p in pages]),
        "no-dpi": img2pdf.convert(untagged),
    }
    paths = {}
    for name, data in out.items():
        assert data is not None
        p = folder / f"{name}.pdf"
        p.write_bytes(bytes(data))
        paths[name] = p
    return paths


def read_all(path: Path, take: bool) -> tuple[float, list[tuple[int, int]], list[str]]:
    from sohoa.formats.pdf import FORMAT

    t = time.perf_counter()
    sizes: list[tuple[int, int]] = []
    how: list[str] = []
    for page in FORMAT.iter_pages(path, 300, 40_000_000, take_images=take):
        sizes.append(page.image.size)
        how.append(page.colour_mode)
        page.image.close()
    return time.perf_counter() - t, sizes, how


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ocr", action="store_true")
    a = ap.parse_args()
    logging.getLogger("sohoa.worker").setLevel(logging.ERROR)  # "rendered at 205 dpi" once per page
    with tempfile.TemporaryDirectory() as tmp:
        import pikepdf

        pdfs = make_pdfs(Path(tmp), a.pages)
        print(f"{a.pages}-page PDFs: " + ", ".join(f"{k} {p.stat().st_size / 1e6:.1f} MB" for k, p in pdfs.items()))
        for name, path in pdfs.items():
            with pikepdf.open(path) as pdf:
                box = [float(v) / 72 for v in pdf.pages[0].mediabox]
            print(f"{name}: pages {box[2] - box[0]:.1f}×{box[3] - box[1]:.1f} in")
        times: dict[tuple[str, bool], list[float]] = {}
        seen: dict[tuple[str, bool], tuple[tuple[int, int], str]] = {}
        for _ in range(a.rounds):
            for name, path in pdfs.items():
                for take in (True, False):
                    s, sizes, modes = read_all(path, take)
                    times.setdefault((name, take), []).append(s / a.pages)
                    seen[(name, take)] = (sizes[0], modes[0])
        print(f"{'pdf':8} {'way':10} {'min s/page':>10} {'median':>8}  page handed to the OCR")
        for name in pdfs:
            for take in (True, False):
                v = times[(name, take)]
                size, how = seen[(name, take)]
                print(f"{name:8} {'take' if take else 'rasterise':10} {min(v):10.3f} {statistics.median(v):8.3f}  "
                      f"{size[0]}×{size[1]} px, {how}")  # fmt: skip
            ratio = statistics.median(times[(name, False)]) / statistics.median(times[(name, True)])
            print(f"{name:8} taking the image is {ratio:.1f}× faster than rasterising (medians)")
        if a.ocr:
            import ocr
            from sohoa.formats.pdf import FORMAT

            for name, path in pdfs.items():
                for take in (True, False):
                    page = next(iter(FORMAT.iter_pages(path, 300, 40_000_000, take_images=take)))
                    t = time.perf_counter()
                    res = ocr.process_page(page.image, page.dpi)
                    print(f"OCR page 1 {name:8} {'take' if take else 'rasterise':10} "
                          f"{time.perf_counter() - t:6.1f} s  ({page.image.size[0]}×{page.image.size[1]} px "
                          f"at {page.dpi} dpi, {res.word_count} words)")  # fmt: skip


if __name__ == "__main__":
    main()
