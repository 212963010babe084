"""Issue 16: phone photos, colour dropout, form structure, reading order, names, pytesseract, pixel cap.

Pages are drawn here with PIL (DejaVu fonts); one end-to-end form goes through Tesseract.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from ocr import OcrError, OcrSettings, normalize_dpi, process_page, resolve_model
from ocr.colour import drop_colour
from ocr.forms import clean_form
from ocr.layout import Line, Word, find_columns, reading_order
from ocr.lexicon import name_syllables, place_names, syllable_key
from ocr.photo import find_page, page_resolution, warp_page
from ocr.postcorrect import Word as CWord
from ocr.postcorrect import correct_words
from ocr.tesseract import run_osd, run_tesseract

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
DPI = 300


def font(pt: float = 12) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT, round(pt / 72 * DPI))


def form_page() -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """An A4 form at 300 dpi: fields with dotted leaders, two checkboxes (one ticked), a 3×3 ruled table."""
    img = Image.new("RGB", (2480, 3508), "white")
    d = ImageDraw.Draw(img)
    f = font(12)
    y = 300
    for label, value in [("Họ và tên:", "Nguyễn Văn Hùng"), ("Ngày sinh:", "12/03/1978"), ("Nơi ở:", "xã Quảng Định")]:
        d.text((250, y), f"{label} {value}", font=f, fill=(20, 20, 20))
        x = 250 + d.textlength(f"{label} {value} ", font=f)
        d.text((x, y), "." * int((2230 - x) / d.textlength(".", font=f)), font=f, fill=(20, 20, 20))
        y += 90
    boxes = []
    x = 250
    for k, opt in enumerate(["Trực tiếp", "Qua bưu điện"]):
        b = (x, y + 12, x + 34, y + 46)
        d.rectangle(b, outline=(20, 20, 20), width=3)
        if k == 0:
            d.line([(b[0] + 6, b[1] + 6), (b[2] - 6, b[3] - 6)], fill=(20, 20, 20), width=3)
            d.line([(b[0] + 6, b[3] - 6), (b[2] - 6, b[1] + 6)], fill=(20, 20, 20), width=3)
        boxes.append(b)
        d.text((x + 50, y), opt, font=f, fill=(20, 20, 20))
        x += 600
    y += 150
    rows = [["STT", "Tên giấy tờ", "Số lượng"], ["1", "Giấy khai sinh", "02"], ["2", "Sổ hộ khẩu", "01"]]
    xs, ys = [250, 450, 1500, 2230], [y + 110 * k for k in range(4)]
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            d.text((xs[c] + 20, ys[r] + 25), cell, font=f, fill=(20, 20, 20))
    for yy in ys:
        d.line([(xs[0], yy), (xs[-1], yy)], fill=(20, 20, 20), width=3)
    for xx in xs:
        d.line([(xx, ys[0]), (xx, ys[-1])], fill=(20, 20, 20), width=3)
    return np.asarray(img.convert("L")).copy(), boxes


# --- pixel budget ----------------------------------------------------------------------------------------


def test_normalize_dpi_respects_the_pixel_budget() -> None:
    page = np.zeros((600, 600), np.uint8)  # stands for a 6000×6000 px page said to be 72 dpi
    out, dpi = normalize_dpi(page, 72, max_pixels=4_000_000)
    assert out.shape[0] * out.shape[1] <= 4_000_000 and out.shape[0] > 600
    assert dpi == round(72 * out.shape[0] / 600)  # the dpi actually reached, not 300
    big = np.zeros((7000, 7000), np.uint8)
    same, dpi = normalize_dpi(big, 72)  # already above the default 40 MP budget: not upscaled at all
    assert same is big and dpi == 72
    assert normalize_dpi(page, 249)[1] == 300  # within the budget: as before


# --- phone photos ----------------------------------------------------------------------------------------


def photo_of(
    page: np.ndarray, frame: tuple[int, int] = (3024, 4032), scale: float = 0.55
) -> tuple[np.ndarray, np.ndarray]:
    """A phone-like photo: the page shrunk, turned in perspective on a dark desk with a light gradient."""
    fw, fh = frame
    ph, pw = page.shape[0] * scale, page.shape[1] * scale
    cx, cy = fw / 2, fh / 2
    quad = np.float32([[cx - pw / 2 + 60, cy - ph / 2 + 20], [cx + pw / 2 + 10, cy - ph / 2 + 90],
                       [cx + pw / 2 - 40, cy + ph / 2 - 30], [cx - pw / 2 - 20, cy + ph / 2 + 10]])  # fmt: skip
    src = np.float32([[0, 0], [page.shape[1], 0], [page.shape[1], page.shape[0]], [0, page.shape[0]]])
    m = cv2.getPerspectiveTransform(src, quad)
    rgb = cv2.cvtColor(page, cv2.COLOR_GRAY2RGB).astype(np.float32) * np.float32([1.0, 0.97, 0.9])
    warped = cv2.warpPerspective(rgb, m, frame, flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.ones(page.shape, np.float32), m, frame)
    desk = np.full((fh, fw, 3), (70, 60, 55), np.float32)
    out = desk * (1 - mask[..., None]) + warped * mask[..., None]
    out *= np.linspace(0.75, 1.0, fw, dtype=np.float32)[None, :, None]
    return np.clip(out, 0, 255).astype(np.uint8), quad


def test_page_quadrilateral_found_in_a_photo_and_warped_flat() -> None:
    page, _ = form_page()
    photo, quad = photo_of(page)
    found = find_page(photo)
    assert found is not None
    assert np.abs(np.array(found.corners) - quad).max() < 25  # px of a 3024×4032 frame
    dpi = page_resolution(found)
    assert 0.5 * 300 * 0.93 < dpi < 0.5 * 300 * 1.25  # the page is ~165 dpi in the photo, whatever EXIF says
    flat = warp_page(photo, found, 300 / dpi)
    assert abs(flat.shape[0] / flat.shape[1] - 11.69 / 8.27) < 0.05


def test_a_scan_is_not_taken_for_a_photo() -> None:
    page, _ = form_page()
    assert find_page(page) is None
    assert find_page(cv2.cvtColor(page, cv2.COLOR_GRAY2RGB)) is None


# --- colour dropout --------------------------------------------------------------------------------------


def test_red_seal_dropped_black_print_under_it_kept() -> None:
    img = Image.new("RGB", (1200, 900), (246, 244, 236))
    d = ImageDraw.Draw(img)
    d.text((100, 400), "Nguyễn Thị Thu Thoa", font=font(14), fill=(15, 15, 15))
    seal = Image.new("RGB", img.size, (255, 255, 255))
    ImageDraw.Draw(seal).ellipse((250, 200, 700, 650), outline=(210, 35, 45), width=14)
    ImageDraw.Draw(seal).ellipse((380, 330, 570, 520), fill=(210, 35, 45))
    rgb = (np.asarray(img, np.float32) * np.asarray(seal, np.float32) / 255).astype(np.uint8)  # multiply: ink
    gray, regions = drop_colour(rgb)
    plain = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    ring = (np.asarray(seal)[..., 1] < 128) & (plain > 60)  # the seal's own pixels, not the print crossing it
    assert plain[ring].mean() < 150 and gray[ring].mean() > 205  # paper: 244
    text = np.asarray(img.convert("L")) < 80  # the print's own pixels
    assert np.abs(gray[text].astype(int) - plain[text]).mean() < 10  # the print, also under the seal
    seals = [r for r in regions if r.kind == "seal"]
    assert len(seals) == 1 and abs(seals[0].box[0] - 243) < 30 and abs(seals[0].box[2] - 707) < 30


def test_grey_page_without_colour_is_unchanged() -> None:
    page, _ = form_page()
    rgb = cv2.cvtColor(page, cv2.COLOR_GRAY2RGB)
    gray, regions = drop_colour(rgb)
    assert regions == [] and np.array_equal(gray, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


# --- form structure --------------------------------------------------------------------------------------


def test_leaders_lines_and_checkboxes_removed_and_recorded() -> None:
    page, boxes = form_page()
    out, s = clean_form(page, 0.0)
    assert s.leaders > 100 and len(s.leader_runs) == 3
    ticked = sorted((c.box[0], c.ticked) for c in s.checkboxes)
    assert [t for _, t in ticked] == [True, False]
    found = sorted(s.checkboxes, key=lambda c: c.box[0])
    assert all(abs(c.box[0] - b[0]) < 8 and abs(c.box[1] - b[1]) < 8 for c, b in zip(found, boxes, strict=True))
    assert len(s.tables) == 1 and len(s.tables[0].rows) == 4 and len(s.tables[0].cols) == 4
    # the dots and the rules are gone, the letters stay
    assert (out[300:380, 1500:2200] < 128).sum() == 0  # where the leaders were
    letters = page[300:380, 250:700] < 128
    assert (out[300:380, 250:700] < 128).sum() >= 0.97 * letters.sum()


def test_reading_order_of_side_by_side_blocks_tables_and_field_rows() -> None:
    def line(y: int, *words: tuple[int, str], par: int = 0) -> Line:
        ws = [Word(t, (x, y, x + 20 * len(t), y + 40)) for x, t in words]
        return Line(ws, (ws[0].box[0], y, ws[-1].box[2], y + 40), par)

    lines = [
        line(100, (200, "UBND"), (330, "TỈNH"), (1300, "CỘNG"), (1440, "HÒA")),
        line(160, (200, "SỞ"), (300, "NỘI"), (400, "VỤ"), (1300, "Độc"), (1400, "lập")),
        line(220, (200, "Số:"), (300, "12/TB"), (1300, "Huế,"), (1420, "ngày")),
        line(400, (600, "THÔNG"), (800, "BÁO"), (1000, "chung"), (1200, "cho"), (1400, "mọi"), (1600, "người")),
        line(500, (200, "2."), (260, "Ngày"), (400, "sinh:"), (1300, "3."), (1360, "Giới"), (1480, "tính:")),
        line(560, (200, "4."), (260, "Dân"), (400, "tộc:"), (1300, "5."), (1360, "Quốc"), (1480, "tịch:")),
        line(620, (200, "6."), (260, "Nơi"), (400, "ở:"), (1300, "7."), (1360, "Số"), (1480, "nhà:")),
    ]
    for i, ln in enumerate(lines):
        ln.order = i
    assert len(find_columns(lines, 2400)) == 1  # the header only: the field rows are read across
    text = reading_order(lines, 2400)
    expected = (
        "UBND TỈNH SỞ NỘI VỤ Số: 12/TB CỘNG HÒA Độc lập Huế, ngày THÔNG BÁO chung cho mọi người "
        "2. Ngày sinh: 3. Giới tính: 4. Dân tộc: 5. Quốc tịch: 6. Nơi ở: 7. Số nhà:"
    )
    assert " ".join(text.split()) == expected


# --- names -----------------------------------------------------------------------------------------------


def cw(text: str, *alts: tuple[int, str, float]) -> CWord:
    choices = [[(c, 93.0)] for c in text]
    for i, c, v in alts:
        choices[i].append((c, v))
    return CWord(text, 95, choices)


def test_place_and_person_names_are_not_corrected() -> None:
    assert "Krông Pắc" in place_names() and syllable_key("pắc") in name_syllables()
    # the LSTM offered Đ for P and ậ for ộ: Đắc and Thuật are far more common words, but these are names
    assert correct_words([cw("huyện"), cw("Krông"), cw("Pắc,", (0, "Đ", 60.0))]) == ["huyện", "Krông", "Pắc,"]
    words = [cw("phố"), cw("Buôn"), cw("Ma"), cw("Thuột", (3, "ậ", 60.0))]
    assert correct_words(words)[-1] == "Thuột"
    assert correct_words([cw("bà"), cw("Lê"), cw("Thị"), cw("Huyền", (3, "ê", 70.0))])[-1] == "Huyền"
    # ordinary words still are
    assert correct_words([cw("quyên", (3, "ề", 44.8))]) == ["quyền"]


# --- Tesseract through pytesseract ----------------------------------------------------------------------


@pytest.mark.parametrize("library", [False, True], ids=["program", "libtesseract"])
def test_tesseract_errors_become_ocr_errors(library: bool) -> None:
    # both ways of running Tesseract (the program; libtesseract in page processes, which an in-thread pipeline
    # run also switches on in this process) report a failure the same way
    from ocr import tesseract

    before = tesseract._library
    assert tesseract.use_library(library) == library
    try:
        page = np.full((200, 600), 255, np.uint8)
        cv2.putText(page, "Test 123", (20, 120), cv2.FONT_HERSHEY_SIMPLEX, 2, 0, 4)
        with pytest.raises(OcrError, match="tesseract failed"):
            run_tesseract(page, 300, "/nonexistent-tessdata")
        _tesseract_works(page)
    finally:
        tesseract.use_library(before)


def test_libtesseract_reads_with_one_openmp_thread() -> None:
    # loaded without OMP_THREAD_LIMIT, libgomp would spread every reading over all cores, and pages read in
    # parallel would oversubscribe them (a page 2.4 → 6.7 s on 2 cores): the library is loaded with the limit
    code = (
        "import os; os.environ.pop('OMP_THREAD_LIMIT', None)\n"
        "from ocr import tesseract\n"
        "assert tesseract.use_library(True)\n"
        "print(os.environ.get('OMP_THREAD_LIMIT'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_THREAD_LIMIT"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    assert out.stdout.strip() == "1"


def _tesseract_works(page: np.ndarray) -> None:
    tessdata = resolve_model(None)[0]
    out = run_tesseract(page, 300, tessdata, lang="vie", psm=7)
    assert "Test" in out.text and "ocrx_word" in out.hocr and out.pdf.startswith(b"%PDF")
    assert run_osd(np.full((50, 50), 255, np.uint8), tessdata) == (0, 0.0)  # nothing to detect: no error


# --- end to end ------------------------------------------------------------------------------------------


def test_form_end_to_end_structure_and_text() -> None:
    page, _ = form_page()
    res = process_page(Image.fromarray(page), 300, OcrSettings())
    words = res.text.split()
    assert not any("..." in t for t in words)  # no leader read as text
    assert "Nguyễn Văn Hùng" in res.text and "12/03/1978" in res.text
    assert [c["ticked"] for c in sorted(res.checkboxes, key=lambda c: c["box"][0])] == [True, False]  # type: ignore[index]
    assert res.checkboxes[0]["label"].startswith("Trực")  # type: ignore[union-attr]
    assert len(res.tables) == 1
    cells = res.tables[0]["cells"]
    assert cells[1][1] == "Giấy khai sinh" and cells[2][2] == "01"  # type: ignore[index]
    assert "STT Tên giấy tờ Số lượng\n1 Giấy khai sinh 02\n2 Sổ hộ khẩu 01" in res.text
    assert res.leader_dots > 100 and res.page_quad is None


def test_no_searchable_pdf_same_reading() -> None:
    # the worker builds its archival PDF itself: without Tesseract's PDF the reading is the same
    page = np.full((700, 1400), 255, np.uint8)
    cv2.putText(page, "Ho so 123 dat dai", (40, 300), cv2.FONT_HERSHEY_SIMPLEX, 3, 0, 6)
    with_pdf = process_page(Image.fromarray(page), 300, OcrSettings())
    without = process_page(Image.fromarray(page), 300, OcrSettings(searchable_pdf=False))
    assert with_pdf.pdf.startswith(b"%PDF") and without.pdf == b""
    assert without.text == with_pdf.text and "Ho" in without.text

    def no_path(hocr: str) -> str:  # the temporary image's name differs
        return re.sub(r'image "[^"]*"', "", hocr)

    assert no_path(without.hocr) == no_path(with_pdf.hocr)
