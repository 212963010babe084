"""Unit tests for the pure OCR stages, on Vietnamese pages rendered here with PIL (DejaVu Sans)."""

from __future__ import annotations

import io
import unicodedata

import cv2
import numpy as np
import pikepdf
import pytest
from PIL import Image, ImageDraw, ImageFont

from ocr import (
    OcrSettings,
    analyse_geometry,
    denoise,
    deskew,
    detect_orientation,
    estimate_noise,
    estimate_skew,
    flatten_illumination,
    normalize_contrast,
    parse_hocr_confidence,
    postcorrect,
    process_page,
    remove_borders,
    resolve_model,
    rotate_right_angle,
    to_gray,
)
from ocr.hocr import parse_hocr_boxes, scale_hocr
from ocr.pipeline import ocr_scale
from ocr.stages import downscale, edge_width, estimate_specks, shrink, text_coverage

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
LINES = [
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Độc lập - Tự do - Hạnh phúc",
    "ĐƠN ĐĂNG KÝ BIẾN ĐỘNG ĐẤT ĐAI",
    "Kính gửi: Văn phòng đăng ký đất đai huyện Quảng Xương",
    "Tôi là Nguyễn Văn Hùng, sinh năm 1978, số định danh 038078001234.",
    "Địa chỉ thường trú: thôn Đông Phú, xã Quảng Định, tỉnh Thanh Hóa.",
    "Đề nghị đăng ký biến động quyền sử dụng đất đối với thửa đất số 125,",
    "tờ bản đồ số 7, diện tích 350 mét vuông, mục đích sử dụng đất ở.",
    "Lý do biến động: nhận chuyển nhượng quyền sử dụng đất theo hợp đồng.",
    "Hồ sơ kèm theo gồm giấy chứng nhận và hợp đồng chuyển nhượng.",
    "Điều 1. Cấp giấy chứng nhận quyền sử dụng đất cho ông Nguyễn Văn Hùng.",
    "Điều 2. Quyết định này có hiệu lực kể từ ngày ký.",
]


def render(lines: list[str] = LINES, dpi: int = 200, pt: float = 12, repeat: int = 2) -> np.ndarray:
    """An A4 page of Vietnamese text, grayscale, white paper."""
    w, h = round(8.27 * dpi), round(11.69 * dpi)
    img = Image.new("L", (w, h), 255)
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, round(pt / 72 * dpi))
    y, step = round(0.9 * dpi), round(pt / 72 * dpi * 1.6)
    for _ in range(repeat):
        for line in lines:
            d.text((round(0.9 * dpi), y), line, font=font, fill=20)
            y += step
        y += step
    return np.asarray(img).copy()


def turn_anticlockwise(gray: np.ndarray, degrees: int) -> np.ndarray:
    """What the scanner produced when the sheet lay turned by *degrees* anticlockwise."""
    return rotate_right_angle(gray, (360 - degrees) % 360)


def skew(gray: np.ndarray, angle: float) -> np.ndarray:
    h, w = gray.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(gray, m, (w, h), borderValue=255)


def shadow(gray: np.ndarray, darkest: float = 0.45) -> np.ndarray:
    h, w = gray.shape
    field = np.tile(np.linspace(darkest, 1.0, w, dtype=np.float32), (h, 1))
    return (gray.astype(np.float32) * field).astype(np.uint8)


def dark_border(gray: np.ndarray, seed: int = 3) -> np.ndarray:
    """Ragged dark scanner border on the left (~60 px) and bottom (~45 px)."""
    rng = np.random.default_rng(seed)
    out = gray.copy()
    h, w = out.shape
    left = np.clip(60 + np.cumsum(rng.normal(0, 1, h)).astype(int) // 4, 20, 100)
    bottom = np.clip(45 + np.cumsum(rng.normal(0, 1, w)).astype(int) // 4, 15, 80)
    for y in range(h):
        out[y, : left[y]] = 25
    for x in range(w):
        out[h - bottom[x] :, x] = 35
    return out


@pytest.fixture(scope="module")
def page() -> np.ndarray:
    return render()


def test_to_gray_records_mode() -> None:
    gray, mode = to_gray(Image.new("RGB", (40, 30), (200, 10, 10)))
    assert mode == "RGB" and gray.shape == (30, 40) and gray.dtype == np.uint8
    assert to_gray(Image.new("1", (10, 10)))[1] == "1"
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))  # fully transparent → white paper
    assert to_gray(rgba)[0].min() == 255


@pytest.mark.parametrize("angle", [3.0, -3.0, 1.5, -0.7])
def test_estimate_skew_recovers_rotation(page: np.ndarray, angle: float) -> None:
    skewed = skew(page, angle)
    assert abs(estimate_skew(skewed) + angle) <= 0.15  # deskew rotates back by the opposite angle
    fixed, applied = deskew(skewed)
    assert abs(applied + angle) <= 0.15
    assert abs(estimate_skew(fixed)) <= 0.15


def test_straight_page_is_not_rotated(page: np.ndarray) -> None:
    assert abs(estimate_skew(page)) <= 0.1


def test_remove_ragged_dark_border(page: np.ndarray) -> None:
    framed = dark_border(page)
    clean = remove_borders(framed)
    assert clean[:, :20].min() > 200 and clean[-15:, :].min() > 200  # border gone
    assert clean[:, :110].mean() > 245 and clean[-90:, :].mean() > 245  # including its ragged edge
    # the text is untouched
    assert np.array_equal(clean[150:-150, 150:-150], framed[150:-150, 150:-150])
    assert np.array_equal(remove_borders(page), page)  # nothing to do on a clean page


def test_border_beside_a_shadow_is_removed_and_the_shadowed_text_kept(page: np.ndarray) -> None:
    """Scanner lid + gutter shadow on the same edge: only the border goes, filled like the paper beside it."""
    framed = dark_border(shadow(page, darkest=0.5))
    clean = remove_borders(framed)
    assert clean[:, :20].min() > 100  # border (25) gone; shadowed paper here is ~128
    assert np.array_equal(clean[150:-150, 150:-150], framed[150:-150, 150:-150])  # text in the shadow kept
    # no step between the filled border and the paper beyond it (Tesseract would read a line there)
    row = clean[400, :160].astype(int)
    assert abs(row[:100].mean() - row[110:160].max()) < 20


def test_text_touching_the_border_is_not_taken_with_it(page: np.ndarray) -> None:
    framed = dark_border(page)
    h, w = page.shape
    framed[300:330, 55:400] = np.where(page[300:330, 200:545] < 128, 0, framed[300:330, 55:400])  # ink at the edge
    clean = remove_borders(framed)
    assert (clean[300:330, 130:400] < 128).sum() >= 0.9 * (framed[300:330, 130:400] < 128).sum()


def test_flatten_shadow(page: np.ndarray) -> None:
    dark = shadow(page)
    flat = flatten_illumination(dark)
    paper, ink = page > 200, page < 80
    w = page.shape[1]
    # paper comes back white on both sides, ink stays dark
    assert flat[:, : w // 5][paper[:, : w // 5]].mean() > 235
    assert flat[:, -w // 5 :][paper[:, -w // 5 :]].mean() > 235
    assert flat[ink].mean() < 100
    assert np.array_equal(flatten_illumination(page), page)  # even page: unchanged


def test_denoise_and_contrast(page: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    faint = (90 + page.astype(np.float32) * (220 - 90) / 255).astype(np.float32)  # grey ink on grey paper
    noisy = np.clip(faint + rng.normal(0, 12, page.shape), 0, 255).astype(np.uint8)
    assert estimate_noise(page) < 1.0 < 6 < estimate_noise(noisy)
    assert np.array_equal(denoise(page), page)
    smooth = denoise(noisy)
    assert estimate_noise(smooth) < estimate_noise(noisy) / 2
    stretched = normalize_contrast(smooth)
    ink, paper = page < 80, page > 200
    assert stretched[ink].mean() < 60 and stretched[paper].mean() > 225


def test_specks_are_measured_and_filtered_out() -> None:
    page = render(dpi=300)
    rng = np.random.default_rng(7)
    pepper = page.copy()
    pepper[(rng.random(page.shape) < 0.003) & (page > 200)] = 0  # 0.3 % salt-and-pepper on the paper
    assert estimate_specks(page) == 0.0
    assert estimate_specks(pepper) > 0.0015
    assert estimate_noise(pepper) < 1.5  # the Laplacian noise estimate does not see them
    clean = denoise(pepper)  # median 3×3, although the grain noise is low
    assert estimate_specks(clean) < estimate_specks(pepper) / 10
    ink = page < 128
    assert np.mean((clean < 128) == ink) > 0.995  # the letters stay
    assert np.array_equal(denoise(page), page)  # a clean page passes unchanged
    assert np.array_equal(denoise(pepper, speck_threshold=1.0), pepper)


@pytest.mark.parametrize("turn", [0, 90, 180, 270])
def test_orientation_from_line_geometry(page: np.ndarray, turn: int) -> None:
    turned = skew(turn_anticlockwise(page, turn), 2.0) if turn in (0, 180) else turn_anticlockwise(page, turn)
    geo = analyse_geometry(turned)
    assert geo.rotation == turn, geo
    assert geo.upright > 0.1 and geo.sideways > 1.2
    o = detect_orientation(turned)  # no tessdata: geometry only
    assert o.rotation == turn and o.method == "geometry"


@pytest.mark.parametrize("turn", [90, 180])
def test_orientation_osd_and_strip_verification(page: np.ndarray, turn: int) -> None:
    """With the geometry made untrusted, OSD runs and a disagreement is settled by a strip OCR."""
    tessdata, _ = resolve_model(None)
    untrusting = OcrSettings(orientation_margin=2.0)
    o = detect_orientation(turn_anticlockwise(page, turn), tessdata, untrusting, dpi=200)
    assert o.rotation == turn and o.method in ("geometry+osd", "strip-ocr")


def test_postcorrect_lookalikes_and_nfc() -> None:
    raw = unicodedata.normalize("NFD", "ÐỒNG Ý") + " ðất   \n"
    assert postcorrect(raw) == "ĐỒNG Ý đất\n"
    assert postcorrect("số quyền") == "số quyền\n"  # a valid syllable is never changed


def test_parse_hocr_confidence() -> None:
    hocr = (
        "<span class='ocrx_word' id='w1' title='bbox 1 2 3 4; x_wconf 90'>Hồ</span>"
        "<span class='ocrx_word' id='w2' title='bbox 1 2 3 4; x_wconf 70'>sơ</span>"
        "<span class='ocrx_word' id='w3' title='bbox 1 2 3 4; x_wconf 5'> </span>"
    )
    assert parse_hocr_confidence(hocr) == (80.0, 2)
    assert parse_hocr_confidence("") == (0.0, 0)


def test_scale_hocr() -> None:
    hocr = "title='bbox 10 20 30 41; baseline 0.01 -5; x_size 20.5; scan_res 180 180'"
    assert scale_hocr(hocr, 2.0, 300) == "title='bbox 20 40 60 82; baseline 0.01 -10; x_size 41.00; scan_res 300 300'"


def test_process_page_end_to_end_turned_skewed_shadowed_framed() -> None:
    gray = dark_border(shadow(skew(render(LINES[2:], dpi=200, pt=13), 2.5)))
    scan = Image.fromarray(turn_anticlockwise(gray, 90))
    res = process_page(scan, 200)
    assert res.rotation == 90 and abs(res.skew + 2.5) < 0.3
    assert "ĐƠN ĐĂNG KÝ BIẾN ĐỘNG ĐẤT ĐAI" in res.text
    assert res.mean_confidence > 80 and not res.low_confidence
    assert res.colour_mode == "L" and res.dpi == 300  # upsampled from 200 dpi
    assert (res.height, res.width) == res.image.shape and res.height > res.width  # upright portrait
    assert set(res.timings) >= {"load", "clean", "orientation", "deskew", "tesseract"}
    # the searchable PDF: the full-resolution page image under the text layer of the same run
    assert "x_wconf" in res.hocr and f"bbox 0 0 {res.width} {res.height}" in res.hocr
    with pikepdf.open(io.BytesIO(res.pdf)) as pdf:
        assert len(pdf.pages) == 1
        xobjects = pdf.pages[0].Resources.XObject
        images = [xobjects[str(k)] for k in xobjects if xobjects[str(k)].Subtype == "/Image"]
        assert [(int(i.Width), int(i.Height)) for i in images] == [(res.width, res.height)]
        ops = [str(op.operator) for op in pikepdf.parse_content_stream(pdf.pages[0])]
        assert "Do" in ops and "BT" in ops and "Tr" in ops  # image drawn, then the (invisible) text


def line_boxes(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes of the rendered text lines (rows with ink), as a reading that found every line would give."""
    rows = (gray < 128).any(axis=1)
    edges = np.flatnonzero(np.diff(np.r_[0, rows.astype(np.int8), 0]))
    return [(0, int(a), gray.shape[1], int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def test_text_coverage_counts_the_letters_outside_every_word(page: np.ndarray) -> None:
    boxes = line_boxes(page)
    assert len(boxes) >= 20
    assert text_coverage(page, boxes) > 0.98
    assert text_coverage(page, []) == 0.0
    half = text_coverage(page, boxes[: len(boxes) // 2])
    assert 0.35 < half < 0.65, half  # the other paragraph was lost
    rng = np.random.default_rng(5)
    noisy = page.copy()
    noisy[rng.random(page.shape) < 0.002] = 0  # specks are not letters
    assert text_coverage(noisy, boxes) > 0.97
    assert text_coverage(np.full((800, 600), 255, np.uint8), []) == 1.0  # nothing to read


def test_edge_width_measures_blur_and_picks_the_reading_resolution() -> None:
    sharp = render(dpi=300)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 2.5)
    assert edge_width(sharp) < 1.0 < edge_width(cv2.GaussianBlur(sharp, (0, 0), 1.0)) < 2.2 < edge_width(blurred)
    assert edge_width(np.full((600, 400), 255, np.uint8)) == 0.0
    s = OcrSettings()
    assert ocr_scale(s, 300, 0.0, edge_width(sharp)) == pytest.approx(180 / 300)
    assert ocr_scale(s, 300, 0.0, edge_width(blurred)) == pytest.approx(130 / 300)
    assert ocr_scale(s, 300, 0.0, 3.5) == pytest.approx(110 / 300)  # very blurred
    assert ocr_scale(s, 600, 0.0, 3.0) == pytest.approx(180 / 600)  # 1.5 px at 300 dpi: not blurred


def test_parse_hocr_boxes_by_confidence() -> None:
    hocr = (
        "<span class='ocrx_word' id='word_1_1' title='bbox 10 20 110 60; x_wconf 96'>Hồ</span>"
        "<span class='ocrx_word' id='word_1_2' title='bbox 120 20 200 60; x_wconf 12'>~</span>"
    )
    assert parse_hocr_boxes(hocr) == [(10, 20, 110, 60), (120, 20, 200, 60)]
    assert parse_hocr_boxes(hocr, 40) == [(10, 20, 110, 60)]


def test_blank_page_is_flagged_low_confidence() -> None:
    res = process_page(Image.new("L", (1200, 1600), 255), 200)
    assert res.word_count == 0 and res.low_confidence and res.text.strip() == ""


def test_orientation_recheck_after_a_bad_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the line geometry is wrong (here: forced), the bad OCR reading triggers the strip re-check."""
    import ocr.pipeline as pipeline
    from ocr import Geometry

    monkeypatch.setattr(pipeline, "analyse_geometry", lambda gray: Geometry(180, 0.0, 0.5, 1.5, 0.0))
    res = process_page(Image.fromarray(render(LINES[2:], dpi=200, pt=13)), 200)
    assert res.rotation == 0  # 180 from the (lying) geometry, then 180 more from the re-check
    assert "ĐƠN ĐĂNG KÝ BIẾN ĐỘNG ĐẤT ĐAI" in res.text


def test_shrink_is_the_area_resize_by_halvings(page: np.ndarray) -> None:
    """`shrink` (exact halvings, then one area resize) gives the size asked and the direct area resize up to
    rounding along the strokes; colour pages keep their channels; a page already small enough is not halved."""
    for size in ((566, 800), (877, 1240), (1132, 1600)):
        fast = shrink(page, size)
        direct = cv2.resize(page, size, interpolation=cv2.INTER_AREA)
        assert fast.shape == direct.shape == (size[1], size[0])
        diff = np.abs(fast.astype(np.int16) - direct)
        assert diff.mean() < 2.5, (size, diff.mean())
        assert np.count_nonzero(diff > 40) < 0.005 * diff.size, size
    colour = cv2.cvtColor(page, cv2.COLOR_GRAY2BGR)
    assert shrink(colour, (400, 600)).shape == (600, 400, 3)
    small = page[:1000, :700]
    assert np.array_equal(shrink(small, (600, 900)), cv2.resize(small, (600, 900), interpolation=cv2.INTER_AREA))
    assert downscale(page, 800)[0].shape[0] == 800 or downscale(page, 800)[0].shape[1] == 800


def _edge_width_reference(gray: np.ndarray) -> float:
    """edge_width as first written with numpy masks (the OpenCV counting version must give the same number)."""
    h, w = gray.shape
    c = gray[h // 6 : 5 * h // 6, w // 6 : 5 * w // 6]
    _, m = cv2.threshold(c, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    dark = m > 0
    if not dark.any() or dark.all():
        return 0.0
    ink, paper = np.percentile(c[dark], 10, method="inverted_cdf"), np.percentile(c[~dark], 90, method="inverted_cdf")
    lo, hi = ink + 0.2 * (paper - ink), ink + 0.8 * (paper - ink)
    mid = int(np.count_nonzero((c > lo) & (c < hi)))
    outline = int(np.count_nonzero(dark & (cv2.erode(m, np.ones((3, 3), np.uint8)) == 0)))
    return mid / max(outline, 1)


def test_edge_width_counts_as_the_numpy_reference() -> None:
    sharp = render(dpi=300)
    for g in (sharp, cv2.GaussianBlur(sharp, (0, 0), 1.0), cv2.GaussianBlur(sharp, (0, 0), 2.5),
              np.zeros((300, 200), np.uint8)):  # fmt: skip
        assert edge_width(g) == pytest.approx(_edge_width_reference(g), abs=1e-9)
