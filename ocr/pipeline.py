"""A page through the stages.

gray → dpi → borders → illumination → orientation + skew (one rotation) → denoise → contrast →
one Tesseract run (text + hOCR + PDF) → Vietnamese post-correction.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from PIL import Image

from ocr.colour import InkRegion, drop_colour
from ocr.forms import FormStructure, clean_form, strip_leader_text
from ocr.glued import split_glued
from ocr.hocr import parse_hocr_boxes, parse_hocr_confidence, scale_hocr
from ocr.layout import find_columns, label_checkboxes, parse_lines, reading_order
from ocr.pdf import graft_text_layer
from ocr.photo import PageQuad, find_page, page_resolution, warp_page
from ocr.postcorrect import (
    CorrectionSettings,
    apply_hocr_words,
    apply_words,
    correct_words,
    parse_hocr_words,
    postcorrect,
    strip_choices,
)
from ocr.stages import (
    ANALYSIS_SIDE,
    DENOISE_THRESHOLD,
    Geometry,
    analyse_geometry,
    denoise,
    downscale,
    edge_width,
    estimate_noise,
    estimate_specks,
    flatten_illumination,
    normalize_contrast,
    normalize_dpi,
    remove_borders,
    rotate_bound,
    rotate_right_angle,
    text_coverage,
    text_height,
    text_mask,
    to_array,
)
from ocr.tesseract import TesseractOutput, resolve_model, run_osd, run_tesseract

log = logging.getLogger("sohoa.ocr")


@dataclass(frozen=True)
class OcrSettings:
    lang: str = "vie"
    tessdata_dir: str | None = None  # None → env SOHOA_TESSDATA_DIR or ~/.local/share/sohoa/tessdata, else Debian's
    psm: int = 3
    oem: int = 1
    timeout_s: float = 300
    low_confidence: float = 70.0  # page flagged below this mean word confidence
    clean: bool = True  # borders, illumination, noise, contrast (False: only orientation and deskew)
    orientation: bool = True  # turn pages upright (0/90/180/270)
    deskew: bool = True
    # the line-geometry up/down decision is trusted above this score; below it Tesseract OSD is
    # asked, and a disagreement is settled by OCR-ing a strip of the page both ways
    orientation_margin: float = 0.05
    # after OCR, a page reading below this mean word confidence has its orientation re-checked (strip OCR)
    recheck_below: float = 70.0
    postcorrect: bool = True
    # tone/vowel-mark correction from Tesseract's LSTM alternatives + syllable frequencies (needs wordfreq)
    lexicon_correction: bool = True
    correction: CorrectionSettings = field(default_factory=CorrectionSettings)
    choice_iterations: int = 2  # lstm_choice_iterations: 5 (Tesseract's default) reads 0.05 % CER better, 10 % slower
    invert: bool = True  # let Tesseract also try white-on-black reading of doubtful words
    keep_choices: bool = False  # debugging: leave the LSTM choice spans in the returned hOCR
    # Tesseract reads Vietnamese tone marks best on body text (12–14 pt) at ~180 dpi (measured on
    # ocr-eval: 1.31 % CER at 300 dpi, 0.96 % at 180): the page is downscaled for OCR only, the PDF and
    # hOCR keep full resolution. Text far outside body size is scaled towards it. 0 disables.
    ocr_dpi: int = 180
    ocr_scale: float = 0.0  # > 0: force this factor instead
    # a page with salt-and-pepper specks (≤ 3 px ink components per pixel, `estimate_specks`) above this is
    # median-filtered even when its grain noise is low; 1 disables
    speck_threshold: float = 0.0008
    # a blurred page (copies of copies, faxes, low-resolution scans) is read at a lower resolution: ink
    # edges ≥ 2.2 px wide at 300 dpi (`edge_width`) at 130 dpi, ≥ 3.2 px at 110 dpi (measured in docs/ocr.md:
    # 34 blurred pages 1.24 % CER at 180 dpi → 0.62 % at 130; above 3.2 px 307 → 208 errors at 110)
    blur_dpi: tuple[tuple[float, int], ...] = ((2.2, 130), (3.2, 110))
    # the same for a phone photo (warped up from its 150–220 dpi): its letters are softer for the same
    # edge width, and it reads better at 130 dpi from 2.0 px (photo_0008 of admin: 29 → 22 % CER)
    photo_blur_dpi: tuple[tuple[float, int], ...] = ((2.0, 130), (3.2, 110))
    # reading check: share of the page's letter-sized ink inside words read at ≥ coverage_conf. Below
    # min_coverage (a paragraph lost to Tesseract's page layout: taken for a picture, or split into wrong
    # columns) the page is read once more with fallback_psm (4: one column of text of variable sizes) and
    # the reading that covers more is kept; 0 disables. A page still below low_coverage is flagged.
    min_coverage: float = 0.95
    fallback_psm: int = 4
    # a page still below min_coverage after that: each line of letters left outside every word (at least
    # reread_letters of them, over a quarter of the page's width) is cropped and read alone (--psm 7) and
    # put in its place (a line typed over a dotted line that the page layout dropped); 0 disables
    reread_letters: int = 12
    coverage_conf: int = 40
    low_coverage: float = 0.9
    # pixel budget of one page (SOHOA_MAX_PAGE_PIXELS): a low-dpi page is upscaled, and a photographed
    # page warped, only as far as this allows
    max_pixels: int = 40_000_000
    # phone photos: the sheet of paper found in the frame is warped flat to ``photo_dpi`` (its resolution
    # measured from its size and letter height; the file's dpi, 72 for phones, is ignored)
    find_page: bool = True
    photo_dpi: int = 300
    # red seals and blue signatures painted out of colour pages before OCR (their regions kept)
    colour_dropout: bool = True
    # forms: dotted leaders, ruling lines and checkbox squares painted out of the copy Tesseract reads
    # (the PDF keeps them); checkboxes and table grids kept as data
    form_structure: bool = True
    # reading order: tables read cell by cell in row order, side-by-side blocks (header, signature)
    # left block then right block (ocr.layout); elsewhere Tesseract's order
    layout: bool = True
    # syllables read run together (`Hìnhthứcnhận`) split again at syllable boundaries (ocr.glued)
    split_glued: bool = True
    # PageResult.pdf: Tesseract's one-page searchable PDF of the page. The worker builds its archival PDF
    # itself (sohoa.pdfa) and switches this off: Tesseract then writes no PDF and none is grafted
    # (PageResult.pdf is b"")
    searchable_pdf: bool = True


@dataclass
class PageResult:
    text: str
    raw_text: str
    hocr: str
    pdf: bytes
    mean_confidence: float
    word_count: int
    low_confidence: bool
    rotation: int
    skew: float
    dpi: int
    colour_mode: str
    width: int
    height: int
    model: str
    timings: dict[str, float] = field(default_factory=dict)
    text_coverage: float = 1.0  # share of the page's letter-sized ink inside confidently read words
    psm: int = 3  # Tesseract page segmentation mode of the reading kept
    edge_width: float = 0.0  # ink edge width in pixels (blur), measured on the cleaned page
    # a photographed page: its corners in the input frame (top-left, top-right, bottom-right, bottom-left,
    # pixels) and its resolution there as measured (dpi); None / 0 for a scan
    page_quad: list[tuple[float, float]] | None = None
    page_dpi: float = 0.0
    # coloured ink found and painted out before OCR: {"kind": "seal"|"signature"|"mark", "colour":
    # "red"|"blue"|"other", "box": [x0, y0, x1, y1] (pixels of `image`), "share": ink share of the box}
    ink_regions: list[dict[str, object]] = field(default_factory=list)
    has_seal: bool = False
    has_signature: bool = False
    # forms: checkboxes {"box", "ticked", "label"} and tables {"box", "rows", "cols", "cells", "csv"}
    # (pixels of `image`); leader dots removed before OCR
    checkboxes: list[dict[str, object]] = field(default_factory=list)
    tables: list[dict[str, object]] = field(default_factory=list)
    leader_dots: int = 0
    columns: int = 0  # bands of side-by-side blocks read block by block
    image: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), np.uint8), repr=False)


@dataclass(frozen=True)
class Orientation:
    rotation: int  # clockwise degrees that make the page upright
    skew: float  # then this rotation (degrees, counter-clockwise positive) straightens the lines
    confidence: float
    method: str  # "geometry", "geometry+osd", "strip-ocr"
    text_height: float = 0.0  # median letter height in pixels (from the line geometry)


def _strip_confidence(gray: np.ndarray, rotation: int, skew: float, dpi: int, tessdata: str, s: OcrSettings) -> float:
    """Mean word confidence of a horizontal band through the middle of the page turned by *rotation*."""
    page = rotate_bound(rotate_right_angle(gray, rotation), skew)
    h = page.shape[0]
    band = page[int(h * 0.35) : int(h * 0.55)]
    out = run_tesseract(band, dpi, tessdata, s.lang, 6, s.oem, s.timeout_s, configs=("hocr",))
    hocr = out.hocr
    conf, words = parse_hocr_confidence(hocr)
    return conf if words >= 3 else 0.0


def detect_orientation(
    gray: np.ndarray, tessdata: str | None = None, settings: OcrSettings | None = None, dpi: int = 300
) -> Orientation:
    """Clockwise turn (0/90/180/270) and skew that make the page upright and straight.

    1. Line geometry (free): the text-line axis from projection profiles, up/down from the ink above
       vs below the x-height band. Accepted when its margin is clear (the common case).
    2. Otherwise Tesseract OSD (``--psm 0``) on a downscaled copy; accepted when it agrees.
    3. When they disagree, a strip of the page is OCR'd in both orientations and the more confident
       reading wins — a few lines, not a second OCR of the page.
    Without *tessdata* only step 1 runs.
    """
    s = settings or OcrSettings()
    geo: Geometry = analyse_geometry(gray)
    if geo.upright >= s.orientation_margin and geo.sideways >= 1.08 or tessdata is None:
        return Orientation(geo.rotation, geo.skew, geo.upright, "geometry", geo.text_height)
    small, f = downscale(gray, 1600)
    osd_rot, osd_conf = run_osd(small, tessdata, max(70, round(dpi * f)))
    if osd_rot == geo.rotation:
        return Orientation(geo.rotation, geo.skew, geo.upright, "geometry+osd", geo.text_height)
    candidates = {geo.rotation}
    if osd_conf > 0:
        candidates.add(osd_rot)
    candidates.add((geo.rotation + 180) % 360)
    scored = {r: _strip_confidence(gray, r, geo.skew, dpi, tessdata, s) for r in sorted(candidates)}
    best = max(scored, key=lambda r: (scored[r], r == geo.rotation))
    log.info("orientation: geometry %d (%.3f), OSD %d (%.2f), strip OCR %s → %d",
             geo.rotation, geo.upright, osd_rot, osd_conf, scored, best)  # fmt: skip
    return Orientation(best, geo.skew, scored[best], "strip-ocr", geo.text_height)


BODY_TEXT_HEIGHT = 32.0  # text_height of 13 pt body text at 300 dpi (as measured by analyse_geometry)


def ocr_scale(s: OcrSettings, dpi: int, text_height: float, edge: float = 0.0) -> float:
    """Factor the cleaned page is resized by for Tesseract (≤ 1); *edge*: ink edge width in pixels."""
    if s.ocr_scale > 0:
        return min(1.0, s.ocr_scale)
    if s.ocr_dpi <= 0:
        return 1.0
    target = s.ocr_dpi
    for width, blur_dpi in s.blur_dpi:
        if edge * 300 / dpi >= width:
            target = blur_dpi
    scale = target / dpi
    size = text_height * 300 / dpi / BODY_TEXT_HEIGHT  # 1.0 = body text; blur reads up to ~1.4
    if size > 2.0:
        scale *= 2.0 / size
    elif 0 < size < 0.6:
        scale *= 0.6 / size
    return float(min(1.0, max(0.2, scale)))


def _recognise(
    gray: np.ndarray,
    dpi: int,
    text_height: float,
    edge: float,
    tessdata: str,
    s: OcrSettings,
    lap: Callable[[str], None],
    pdf_image: np.ndarray | None = None,
) -> TesseractOutput:
    """One Tesseract run on the cleaned page (downscaled for reading): text, hOCR and PDF at full resolution."""
    scale = ocr_scale(s, dpi, text_height, edge)
    extra: tuple[str, ...] = ("-c", "preserve_interword_spaces=1", "-c", f"tessedit_do_invert={int(s.invert)}")
    if s.postcorrect and s.lexicon_correction:  # per-character alternatives of the LSTM, in the hOCR
        extra += ("-c", "lstm_choice_mode=2", "-c", f"lstm_choice_iterations={s.choice_iterations}")
    configs = ("txt", "hocr", "pdf") if s.searchable_pdf else ("txt", "hocr")
    if scale >= 0.95 and (pdf_image is None or pdf_image is gray or not s.searchable_pdf):
        out = run_tesseract(gray, dpi, tessdata, s.lang, s.psm, s.oem, s.timeout_s, configs=configs, extra=extra)
        lap("tesseract")
        return out
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 0.95 else gray
    lap("clean")
    out = run_tesseract(small, round(dpi * scale), tessdata, s.lang, s.psm, s.oem, s.timeout_s,
                        configs=configs, extra=extra, text_only_pdf=True)  # fmt: skip
    lap("tesseract")
    fx, fy = gray.shape[1] / small.shape[1], gray.shape[0] / small.shape[0]
    image = gray if pdf_image is None else pdf_image
    pdf = graft_text_layer(out.pdf, image) if s.searchable_pdf else b""
    out = TesseractOutput(out.text, scale_hocr(out.hocr, fx, dpi, fy), pdf)
    lap("pdf")
    return out


def map_box(
    box: tuple[int, int, int, int], scale: float, shape: tuple[int, ...], rotation: int, skew: float
) -> list[int]:
    """A box of the page before resizing by *scale*, the right-angle turn and the skew rotation, in the
    pixels of the page after them (*shape*: the page's shape after resizing, before turning)."""
    h, w = shape[:2]
    pts = np.array([[box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]]], np.float64) * scale
    r = rotation % 360
    if r == 90:
        pts, (h, w) = np.stack([h - 1 - pts[:, 1], pts[:, 0]], axis=1), (w, h)
    elif r == 180:
        pts = np.stack([w - 1 - pts[:, 0], h - 1 - pts[:, 1]], axis=1)
    elif r == 270:
        pts, (h, w) = np.stack([pts[:, 1], w - 1 - pts[:, 0]], axis=1), (w, h)
    if abs(skew) >= 0.05:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), skew, 1.0)
        pts = pts @ m[:, :2].T + m[:, 2]
    x0, y0 = np.clip(pts.min(axis=0), 0, None)
    x1, y1 = pts.max(axis=0)
    return [int(x0), int(y0), int(min(x1, w)), int(min(y1, h))]


def _flatten_photo(arr: np.ndarray, quad: PageQuad, s: OcrSettings) -> tuple[np.ndarray, int, float]:
    """The photographed page warped flat: (page, its dpi after the warp, its resolution in the photo)."""
    w, h = quad.size
    probe_scale = min(1.0, ANALYSIS_SIDE / max(w, h))
    probe = warp_page(arr, quad, probe_scale)
    if probe.ndim == 3:
        probe = cv2.cvtColor(probe, cv2.COLOR_RGB2GRAY)
    height = text_height(text_mask(probe)) / probe_scale
    page_dpi = page_resolution(quad, height, BODY_TEXT_HEIGHT)
    scale = min(s.photo_dpi / page_dpi, float(np.sqrt(s.max_pixels / max(1.0, w * h))))
    return warp_page(arr, quad, scale), max(1, round(page_dpi * scale)), page_dpi


def missed_lines(gray: np.ndarray, words: list[tuple[int, int, int, int]], min_letters: int = 12,
                 side: int = ANALYSIS_SIDE) -> list[tuple[int, int, int, int]]:  # fmt: skip
    """Boxes (pixels of *gray*) of the lines of letter-sized ink lying outside every one of the *words*
    boxes: rows of at least *min_letters* such letters spanning a quarter of the page's width or more."""
    small, f = downscale(gray, side)
    m = text_mask(small)
    _, _, stats, cen = cv2.connectedComponentsWithStats(m, connectivity=8)
    x, y, ws, hs, area = stats[1:, 0], stats[1:, 1], stats[1:, 2], stats[1:, 3], stats[1:, 4]
    big = max(small.shape)
    sel = (hs >= 3) & (hs <= big / 25) & (ws <= big / 15) & (area >= 4)  # as text_coverage
    if not sel.any():
        return []
    inside = np.zeros(small.shape, bool)
    for x0, y0, x1, y1 in words:
        inside[int(y0 * f) : int(y1 * f) + 1, int(x0 * f) : int(x1 * f) + 1] = True
    cx = np.clip(cen[1:, 0].astype(int), 0, small.shape[1] - 1)
    cy = np.clip(cen[1:, 1].astype(int), 0, small.shape[0] - 1)
    lost = np.flatnonzero(sel & ~inside[cy, cx])
    if len(lost) < min_letters:
        return []
    lh = float(np.median(hs[sel]))
    out: list[tuple[int, int, int, int]] = []
    group: list[int] = []

    def close() -> None:
        if len(group) >= min_letters:
            gx0, gx1 = int(x[group].min()), int((x[group] + ws[group]).max())
            if gx1 - gx0 >= small.shape[1] / 4:
                gy0, gy1 = int(y[group].min()), int((y[group] + hs[group]).max())
                out.append((int(gx0 / f), int(gy0 / f), int(gx1 / f), int(gy1 / f)))

    for k in sorted(lost, key=lambda k: cy[k]):  # letters whose centres are within half a letter: one line
        if group and cy[k] - cy[group[-1]] > 0.5 * lh:
            close()
            group = []
        group.append(int(k))
    close()
    return out


_PAR = re.compile(r"<p class='ocr_par'[^>]*?title=[\"']bbox \d+ (\d+)")


def _reread_missed(reading: np.ndarray, hocr: str, dpi: int, height: float, edge: float, tessdata: str,
                   s: OcrSettings) -> tuple[str, int]:  # fmt: skip
    """*hocr* with the lines :func:`missed_lines` finds read one by one (``--psm 7``) and put in as
    paragraphs of their own before the first paragraph below them; (hOCR, lines added)."""
    # every word counts here, however doubtful: a line read badly is not read twice
    boxes = missed_lines(reading, parse_hocr_boxes(hocr), s.reread_letters)
    if not boxes:
        return hocr, 0
    scale = ocr_scale(s, dpi, height, edge)
    extra: tuple[str, ...] = ("-c", "preserve_interword_spaces=1")
    if s.postcorrect and s.lexicon_correction:
        extra += ("-c", "lstm_choice_mode=2", "-c", f"lstm_choice_iterations={s.choice_iterations}")
    h, w = reading.shape[:2]
    added = 0
    for x0, y0, x1, y1 in boxes:
        pad = max(4, (y1 - y0) // 2)
        cx0, cy0, cx1, cy1 = max(0, x0 - 2 * pad), max(0, y0 - pad), min(w, x1 + 2 * pad), min(h, y1 + pad)
        crop = reading[cy0:cy1, cx0:cx1]
        small = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 0.95 else crop
        part = run_tesseract(small, round(dpi * scale), tessdata, s.lang, 7, s.oem, s.timeout_s, configs=("hocr",),
                             extra=extra).hocr  # fmt: skip
        part = scale_hocr(part, crop.shape[1] / small.shape[1], None, crop.shape[0] / small.shape[0])
        pars = re.findall(r"<p class='ocr_par'.*?</p>", part, re.S)
        conf, n = parse_hocr_confidence(part)
        if not pars or n < 3 or conf < s.coverage_conf:
            continue

        def shift(m: re.Match[str], dx: int = cx0, dy: int = cy0) -> str:
            a, b, c, d = (int(v) for v in m.groups())
            return f"bbox {a + dx} {b + dy} {c + dx} {d + dy}"

        par = re.sub(r"bbox (\d+) (\d+) (\d+) (\d+)", shift, pars[0])
        at = next((m.start() for m in _PAR.finditer(hocr) if int(m.group(1)) > y0), None)
        if at is None:
            at = hocr.rfind("</p>") + 4 if "</p>" in hocr else len(hocr)
        hocr = hocr[:at] + par + "\n" + hocr[at:]
        added += 1
    return hocr, added


def process_page(image: Image.Image, dpi: int | None = None, settings: OcrSettings | None = None) -> PageResult:
    """OCR one page image: cleanup, orientation, deskew, one Tesseract run, post-correction."""
    s = settings or OcrSettings()
    tessdata, model = resolve_model(s)
    t: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        t[name] = round(t.get(name, 0.0) + now - clock[0], 4)
        clock[0] = now

    arr, mode = to_array(image)
    quad = find_page(arr) if s.find_page else None
    page_dpi = 0.0
    if quad is not None:
        arr, eff_dpi, page_dpi = _flatten_photo(arr, quad, s)
        s = replace(s, blur_dpi=s.photo_blur_dpi)
    inks: list[InkRegion] = []
    restore: np.ndarray | None = None  # how much lighter dropout made each pixel: put back for the PDF
    if arr.ndim == 3 and s.colour_dropout:
        gray, inks = drop_colour(arr)
        if inks:
            restore = cv2.subtract(gray, cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY))
    else:
        gray = arr if arr.ndim == 2 else cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    del arr
    ink_scale = 1.0
    if quad is None:
        before = gray.shape[1]
        gray, eff_dpi = normalize_dpi(gray, dpi, max_pixels=s.max_pixels)
        ink_scale = gray.shape[1] / before
        if restore is not None and restore.shape != gray.shape:
            restore = cv2.resize(restore, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    lap("load")
    noise = specks = 0.0
    if s.clean:
        noise = estimate_noise(gray)
        # specks decide only for a page whose grain is low: a grainy one is median-filtered anyway
        specks = estimate_specks(gray) if noise < DENOISE_THRESHOLD else 0.0
        gray = remove_borders(gray)
        gray = flatten_illumination(gray)
        lap("clean")
    rotation, skew, height = 0, 0.0, 0.0
    if s.orientation or s.deskew:
        o = detect_orientation(gray, tessdata if s.orientation else None, s, eff_dpi)
        rotation = o.rotation if s.orientation else 0
        skew = o.skew if s.deskew else 0.0
        height = o.text_height
        lap("orientation")
        turned_from = gray.shape
        gray = rotate_bound(rotate_right_angle(gray, rotation), skew)
        if restore is not None:
            restore = rotate_bound(rotate_right_angle(restore, rotation), skew, fill=0)
        lap("deskew")
    else:
        turned_from = gray.shape
    if s.clean:
        gray = denoise(gray, noise, specks, speck_threshold=s.speck_threshold)
        gray = normalize_contrast(gray)
    edge = edge_width(gray)
    lap("clean")
    # the page as it looks (seals and signatures included) for the PDF and `image`; Tesseract reads
    # `reading`: without coloured ink, leaders, rules and checkbox squares
    shown = gray if restore is None else cv2.subtract(gray, restore)
    form = FormStructure()
    if s.form_structure:
        reading, form = clean_form(gray, height)
        lap("form")
    else:
        reading = gray
    out = _recognise(reading, eff_dpi, height, edge, tessdata, s, lap, pdf_image=shown)
    conf, words = parse_hocr_confidence(out.hocr)
    if s.orientation and words and conf < s.recheck_below:
        # safety net for a page the line geometry got wrong (it reads badly): compare a strip of it
        # read as it is and turned; only a clearly better turned reading costs a second OCR
        here = _strip_confidence(gray, 0, 0.0, eff_dpi, tessdata, s)
        turns = {r: _strip_confidence(gray, r, 0.0, eff_dpi, tessdata, s) for r in (90, 180, 270)}
        best = max(turns, key=turns.__getitem__)
        lap("orientation")
        if turns[best] > here + 10:
            log.info("orientation recheck: page read at %.0f%%, turned %d° reads %.0f%% → turned", conf, best,
                     turns[best])  # fmt: skip
            gray = rotate_right_angle(gray, best)
            shown = rotate_right_angle(shown, best)
            rotation = (rotation + best) % 360
            reading, form = clean_form(gray, height) if s.form_structure else (gray, FormStructure())
            out = _recognise(reading, eff_dpi, height, edge, tessdata, s, lap, pdf_image=shown)
            conf, words = parse_hocr_confidence(out.hocr)
    psm = s.psm
    coverage = text_coverage(reading, parse_hocr_boxes(out.hocr, s.coverage_conf))
    if s.min_coverage and s.fallback_psm != s.psm and coverage < s.min_coverage:
        other = _recognise(reading, eff_dpi, height, edge, tessdata, replace(s, psm=s.fallback_psm), lap,
                           pdf_image=shown)  # fmt: skip
        other_coverage = text_coverage(reading, parse_hocr_boxes(other.hocr, s.coverage_conf))
        better = other_coverage > coverage + 0.02
        log.info("reading check: psm %d read %.0f%% of the letters, psm %d %.0f%% → psm %d kept", s.psm,
                 100 * coverage, s.fallback_psm, 100 * other_coverage, s.fallback_psm if better else s.psm)  # fmt: skip
        if better:
            out, coverage, psm = other, other_coverage, s.fallback_psm
            conf, words = parse_hocr_confidence(out.hocr)
    reread = 0
    if s.min_coverage and s.reread_letters and coverage < s.min_coverage:
        hocr, reread = _reread_missed(reading, out.hocr, eff_dpi, height, edge, tessdata, s)
        if reread:
            out = TesseractOutput(out.text, hocr, out.pdf)
            coverage = text_coverage(reading, parse_hocr_boxes(out.hocr, s.coverage_conf))
            conf, words = parse_hocr_confidence(out.hocr)
            log.info("reading check: %d lost line(s) read alone, %.0f%% of the letters now read", reread,
                     100 * coverage)  # fmt: skip
    lap("check")
    hocr = out.hocr
    choices = s.postcorrect and s.lexicon_correction
    raw = unicodedata.normalize("NFC", out.text)
    text = postcorrect(out.text) if s.postcorrect else raw
    if choices:
        ws = parse_hocr_words(hocr)
        old, new = [w.text for w in ws], correct_words(ws, s.correction)
        text = apply_words(text, old, new)
        hocr = apply_hocr_words(hocr if s.keep_choices else strip_choices(hocr), old, new)
    columns = 0
    if s.layout:
        lines = parse_lines(hocr)
        bands = find_columns([ln for ln in lines if ln.words], gray.shape[1]) if lines else []
        columns = len(bands)
        if form.tables or bands or reread:
            text = postcorrect(reading_order(lines, gray.shape[1], form.tables))
        if form.checkboxes:
            label_checkboxes(form.checkboxes, parse_lines(hocr))
    if form.leader_runs and s.postcorrect:
        text = strip_leader_text(text)  # dots of a dotted line under a value, read into it
    if s.postcorrect and s.split_glued:
        text = split_glued(text)
    lap("postcorrect")
    regions = [{**r.as_dict(), "box": map_box(r.box, ink_scale, turned_from, rotation, skew)} for r in inks]
    return PageResult(
        text=text,
        raw_text=raw,
        hocr=hocr,
        pdf=out.pdf,
        mean_confidence=round(conf, 2),
        word_count=words,
        low_confidence=words == 0 or conf < s.low_confidence or coverage < s.low_coverage,
        rotation=rotation,
        skew=skew,
        dpi=eff_dpi,
        colour_mode=mode,
        width=int(gray.shape[1]),
        height=int(gray.shape[0]),
        model=model,
        timings=t,
        text_coverage=round(coverage, 4),
        psm=psm,
        edge_width=round(edge, 3),
        page_quad=[(round(x, 1), round(y, 1)) for x, y in quad.corners] if quad is not None else None,
        page_dpi=round(page_dpi, 1),
        ink_regions=regions,
        has_seal=any(r["kind"] == "seal" for r in regions),
        has_signature=any(r["kind"] == "signature" for r in regions),
        checkboxes=[c.as_dict() for c in form.checkboxes],
        tables=[{**t.as_dict(), "csv": t.csv()} for t in form.tables],
        leader_dots=form.leaders,
        columns=columns,
        image=shown,
    )
