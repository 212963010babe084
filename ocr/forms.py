"""Form structure: dotted leaders, ruling lines, checkboxes and table grids, found and taken off the page.

Forms (tờ khai, đơn) print labelled fields with dotted leaders (dots after the value, or a pre-printed
dotted line with the value typed over it), checkbox squares, ruled tables and underlines. Tesseract reads
leaders as "....." / "0000" / junk, checkbox squares as "L1" / "U" and cuts table rows apart. All of it is
measured on the deskewed, cleaned page and painted with paper before the OCR run:

* leaders: runs of ≥ 5 period-sized dots on one baseline at a regular pitch (the dot below a Vietnamese
  vowel is never five in a row at a period's pitch);
* ruling lines: ink runs far longer than any letter (opening with a long line kernel), only the line's own
  pixels — a letter stroke crossing it is put back where ink continues on both sides;
* checkboxes: hollow squares of about a letter's size with ink on all four sides; ticked when their inside
  holds ink; kept as data (box, ticked) rather than read;
* tables: a grid of horizontal and vertical lines; its row and column boundaries are kept so the words can
  be read cell by cell in row order (:mod:`ocr.layout`).

Sizes are relative to the page's letter height (``text_height``: ≈ 32 px for 13 pt at 300 dpi).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import cv2
import numpy as np

Box = tuple[int, int, int, int]
LEFT_GAP = 0.15  # a period sits within this many letter heights of the letter it ends


@dataclass
class Checkbox:
    box: Box
    ticked: bool
    fill: float  # ink share of the inside
    label: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"box": list(self.box), "ticked": self.ticked, "label": self.label}


@dataclass
class Table:
    box: Box
    rows: list[int]  # y of the horizontal lines, top to bottom (len = number of rows + 1)
    cols: list[int]  # x of the vertical lines, left to right (len = number of columns + 1)
    cells: list[list[str]] = field(default_factory=list)  # text per row and column, filled after the OCR

    def as_dict(self) -> dict[str, object]:
        return {"box": list(self.box), "rows": self.rows, "cols": self.cols, "cells": self.cells}

    def csv(self) -> str:
        import csv
        import io

        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(self.cells)
        return out.getvalue()


@dataclass
class FormStructure:
    leaders: int = 0  # dots removed
    leader_runs: list[Box] = field(default_factory=list)
    rules: int = 0  # ruling-line pixels removed
    checkboxes: list[Checkbox] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


def _u8(a: object) -> np.ndarray:
    return np.asarray(a, np.uint8)


def _ink(gray: np.ndarray) -> np.ndarray:
    _, m = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    return m


def find_leader_dots(
    stats: np.ndarray, cents: np.ndarray, th: float, min_run: int = 5, ink: np.ndarray | None = None
) -> tuple[list[int], list[Box]]:
    """Labels of the components that are dots of a leader, and the boxes of the leader runs."""
    dots, runs, _phases = _leader_dots(stats, cents, th, min_run, ink)
    return dots, runs


def _leader_dots(
    stats: np.ndarray, cents: np.ndarray, th: float, min_run: int = 5, ink: np.ndarray | None = None
) -> tuple[list[int], list[Box], list[tuple[float, float]]]:
    x, y, w, h, a = (stats[:, i] for i in range(5))
    big = max(3.0, 0.42 * th)
    cand = np.nonzero((w <= big) & (h <= big) & (w >= 2) & (h >= 2) & (w <= 2.2 * h) & (h <= 2.2 * w)
                      & (a >= 0.35 * w * h))[0]  # fmt: skip
    cand = cand[cand > 0]
    if len(cand) < min_run:
        return [], [], []
    order = cand[np.lexsort((cents[cand, 0], np.round(cents[cand, 1] / max(2.0, 0.2 * th))))]
    # chain dots left to right: same baseline (bottoms within a fifth of a letter), close neighbours
    bottoms = (y + h).astype(np.float64)
    used: set[int] = set()
    dots: list[int] = []
    runs: list[Box] = []
    phases: list[tuple[float, float]] = []  # first dot's x and pitch of each run
    by_x = cand[np.argsort(cents[cand, 0])]
    xs = cents[by_x, 0]
    for start in order:
        if start in used:
            continue
        run = [int(start)]
        while True:
            last = run[-1]
            lo = np.searchsorted(xs, cents[last, 0] + 0.5, side="left")
            hi = np.searchsorted(xs, cents[last, 0] + 1.1 * th, side="right")
            nxt = [int(j) for j in by_x[lo:hi] if int(j) not in used and int(j) not in run
                   and abs(bottoms[j] - bottoms[last]) <= max(2.0, 0.18 * th)]  # fmt: skip
            if not nxt:
                break
            run.append(min(nxt, key=lambda j: cents[j, 0]))
        if len(run) >= 2:
            # the ends of a run keep the run's pitch: a colon's or a period's dot next to it does not
            pitch = float(np.median(np.diff(cents[run, 0])))
            while len(run) >= 2 and abs(cents[run[1], 0] - cents[run[0], 0] - pitch) > 0.3 * pitch:
                run = run[1:]
            while len(run) >= 2 and abs(cents[run[-1], 0] - cents[run[-2], 0] - pitch) > 0.3 * pitch:
                run = run[:-1]
        # a colon's lower dot at the run's pitch is no leader: ink (its upper dot) right above it
        while len(run) >= min_run and ink is not None and _dot_above(ink, stats, run[0], th):
            run = run[1:]
        if len(run) >= min_run:
            gaps = np.diff(cents[run, 0])
            if gaps.std() <= 0.35 * gaps.mean():
                used.update(run)
                dots += run
                runs.append((int(x[run].min()), int(y[run].min()), int((x[run] + w[run]).max()),
                             int((y[run] + h[run]).max())))  # fmt: skip
                phases.append((float(cents[run[0], 0]), float(gaps.mean())))
    # a value typed over a dotted line hides some of its dots and splits it into runs of one phase: a
    # single dot on a run's baseline at the run's pitch is a leader dot too, unless it is a period right
    # after a letter or the lower dot of a colon
    rest = [int(j) for j in cand if int(j) not in used]
    dot_set = set(int(j) for j in cand)
    for j in rest:
        cx = float(cents[j, 0])
        for r, (x0a, pa) in zip(runs, phases, strict=True):
            if abs(bottoms[j] - r[3]) > max(2.0, 0.15 * th) or abs(cx - (r[0] + r[2]) / 2) > 40 * th:
                continue
            k = (cx - x0a) / pa
            if abs(k - round(k)) > 0.2:
                continue
            if ink is not None:
                # a letter just left of the dot (reaching above it: a neighbouring leader dot does not)
                gx0, gx1 = max(0, int(x[j] - LEFT_GAP * th)), int(x[j])
                if gx1 > gx0 and ink[max(0, int(y[j] - 0.6 * th)) : max(0, int(y[j] - 1)), gx0:gx1].any():
                    break
                above = ink[max(0, int(y[j] - 0.9 * th)) : max(0, int(y[j] - 1)), int(x[j]) : int(x[j] + w[j])]
                if above.any() and above.mean() > 0.15:
                    break
            dots.append(j)
            break
    del dot_set
    return dots, runs, phases


def _dot_above(ink: np.ndarray, stats: np.ndarray, j: int, th: float) -> bool:
    """Whether ink lies right above dot *j* (a colon's upper dot): it is no leader dot."""
    x, y, w, h = (int(v) for v in stats[j, :4])
    above = ink[max(0, int(y - 0.9 * th)) : max(0, y - 1), x : x + w]
    return bool(above.size and above.any() and above.mean() > 0.15)


def find_checkboxes(ink: np.ndarray, stats: np.ndarray, th: float) -> list[Checkbox]:
    """Hollow squares of about a letter's size with ink along all four sides."""
    out = []
    x, y, w, h, a = (stats[:, i] for i in range(5))
    sel = np.nonzero((w >= 0.55 * th) & (w <= 1.8 * th) & (h >= 0.55 * th) & (h <= 1.8 * th)
                     & (w <= 1.25 * h) & (h <= 1.25 * w))[0]  # fmt: skip
    for i in sel:
        if i == 0:
            continue
        bx, by, bw, bh = int(x[i]), int(y[i]), int(w[i]), int(h[i])
        patch = ink[by : by + bh, bx : bx + bw] > 0
        t = max(2, round(0.12 * min(bw, bh)))
        sides = [patch[:t].any(axis=0).mean(), patch[-t:].any(axis=0).mean(),
                 patch[:, :t].any(axis=1).mean(), patch[:, -t:].any(axis=1).mean()]  # fmt: skip
        if min(sides) < 0.9:
            continue
        # a square has its corners (round glyphs like 0, 8, O do not)
        if not (patch[:t, :t].any() and patch[:t, -t:].any() and patch[-t:, :t].any() and patch[-t:, -t:].any()):
            continue
        inner = patch[t + 1 : bh - t - 1, t + 1 : bw - t - 1]
        if inner.size == 0:
            continue
        # the outline alone: not a filled blob (■, a bold letter)
        if patch.mean() > 0.8 or inner.mean() > 0.6:
            continue
        fill = float(inner.mean())
        out.append(Checkbox((bx, by, bx + bw, by + bh), fill > 0.06, round(fill, 3)))
    return out


def _rules(ink: np.ndarray, th: float) -> tuple[np.ndarray, np.ndarray]:
    """(horizontal, vertical) line masks: ink runs far longer than a letter."""
    hk = max(25, int(5 * th))
    vk = max(25, int(2.4 * th))
    hor = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (hk, 1)))
    ver = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, vk)))
    # a line is thin: a thick blob (a black bar, a picture, a bold heading's stroke) is no ruling
    for m, axis in ((hor, 0), (ver, 1)):
        if not cv2.countNonZero(m):  # no run that long (most pages of prose): nothing to label
            continue
        n, lab, st, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        thick = st[:, cv2.CC_STAT_HEIGHT if axis == 0 else cv2.CC_STAT_WIDTH] > max(4, 0.4 * th)
        thick[0] = False
        if thick.any():
            m[thick[lab]] = 0
    return hor, ver


def _positions(profile: np.ndarray, min_len: float) -> list[int]:
    """Centres of the runs of a 1-D profile above *min_len*."""
    on = profile >= min_len
    out, i, n = [], 0, len(on)
    while i < n:
        if on[i]:
            j = i
            while j < n and on[j]:
                j += 1
            out.append((i + j - 1) // 2)
            i = j
        else:
            i += 1
    return out


def find_tables(hor: np.ndarray, ver: np.ndarray, th: float) -> list[Table]:
    """Grids of ≥ 2 rows × ≥ 2 columns made of the horizontal and vertical lines."""
    if not cv2.countNonZero(hor) or not cv2.countNonZero(ver):  # a grid needs lines both ways
        return []
    grid = cv2.dilate(hor | ver, np.ones((5, 5), np.uint8))
    n, _lab, st, _ = cv2.connectedComponentsWithStats(grid, connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h, _a = (int(v) for v in st[i])
        if w < 8 * th or h < 2 * th:
            continue
        hs, vs = hor[y : y + h, x : x + w], ver[y : y + h, x : x + w]
        rows = _positions((hs > 0).sum(axis=1), 0.6 * w)
        cols = _positions((vs > 0).sum(axis=0), 0.6 * h)
        if len(rows) < 3 or len(cols) < 3:
            continue
        out.append(Table((x, y, x + w, y + h), [y + r for r in rows], [x + c for c in cols]))
    return out


def letter_height(stats: np.ndarray, page_height: int) -> float:
    """Height of the page's letters from its ink components, blind to dots (leaders, marks) and lines."""
    h, w = stats[1:, 3], stats[1:, 2]
    sel = (h >= 3) & (w >= 2) & (h <= page_height / 20)
    if sel.sum() < 20:
        return 0.0
    hs = h[sel]
    hs = hs[hs >= 0.3 * np.percentile(hs, 90)]
    lo, hi = np.percentile(hs, (35, 65))
    mid = hs[(hs >= lo) & (hs <= hi)]
    return float(mid.mean()) if len(mid) else 0.0


def clean_form(gray: np.ndarray, th: float, leaders: bool = True, rules: bool = True,
               checkboxes: bool = True, work_side: int = 1800) -> tuple[np.ndarray, FormStructure]:  # fmt: skip
    """The page with its leaders, ruling lines and checkbox squares painted white, and what was found.

    Measured on a copy whose long side is about *work_side* px (≈ 150 dpi for A4: a period is still 3–4
    px there); boxes are returned in the pixels of *gray*.
    """
    f = min(1.0, work_side / max(gray.shape))
    # the direct area resize (38 ms): the exact half enlarged bilinearly (4 ms) moved the text of a few pages,
    # taking the decisions over issue 16's 2 % goal (docs/throughput.md, second round)
    work = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else gray
    erase, s = _find_structure(work, th * f, leaders, rules, checkboxes)
    if f < 1:
        s = _scaled(s, 1 / f)
    if not erase.any():
        return gray, s
    if f < 1:
        erase = cv2.resize(erase, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_NEAREST)
    out = gray.copy()
    out[erase > 0] = 255
    return out, s


def _scaled(s: FormStructure, k: float) -> FormStructure:
    def box(b: Box) -> Box:
        return (round(b[0] * k), round(b[1] * k), round(b[2] * k), round(b[3] * k))

    return FormStructure(
        s.leaders,
        [box(b) for b in s.leader_runs],
        round(s.rules * k * k),
        [Checkbox(box(c.box), c.ticked, c.fill, c.label) for c in s.checkboxes],
        [Table(box(t.box), [round(v * k) for v in t.rows], [round(v * k) for v in t.cols]) for t in s.tables],
    )


def _find_structure(
    gray: np.ndarray, th: float, leaders: bool, rules: bool, checkboxes: bool
) -> tuple[np.ndarray, FormStructure]:
    s = FormStructure()
    ink = _ink(gray)
    n, lab, stats, cents = cv2.connectedComponentsWithStats(ink, connectivity=8)
    # the letter height of the page itself (the orientation stage's measure counts leader dots as letters)
    th = letter_height(stats, gray.shape[0]) or th or 16.0
    erase = np.zeros(gray.shape, np.uint8)
    if rules:
        hor, ver = _rules(ink, th)
        s.tables = find_tables(hor, ver, th)
        lines = hor | ver
        if lines.any():
            # a letter crossing a line keeps its stroke: ink above and below a horizontal line's pixel
            # (left and right of a vertical one) means a stroke runs through it
            k = max(2, int(0.25 * th))
            off = ink & ~_u8(cv2.dilate(lines, np.ones((3, 3), np.uint8)))
            up = np.zeros_like(off)
            up[k:] = off[:-k]
            down = np.zeros_like(off)
            down[:-k] = off[k:]
            cross_h = _u8(cv2.dilate(up, np.ones((k, 1), np.uint8))) & _u8(cv2.dilate(down, np.ones((k, 1), np.uint8)))
            left = np.zeros_like(off)
            left[:, k:] = off[:, :-k]
            right = np.zeros_like(off)
            right[:, :-k] = off[:, k:]
            cross_v = _u8(cv2.dilate(left, np.ones((1, k), np.uint8))) & _u8(
                cv2.dilate(right, np.ones((1, k), np.uint8))
            )
            line_px = _u8(cv2.dilate((hor & ~cross_h) | (ver & ~cross_v), np.ones((3, 3), np.uint8)))
            s.rules = int(np.count_nonzero(line_px))
            erase |= line_px
            if s.rules:
                # the components again without the lines (a checkbox or a dot touching a rule)
                ink = ink & ~lines
                n, lab, stats, cents = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if checkboxes:
        s.checkboxes = find_checkboxes(ink, stats, th)
        for cb in s.checkboxes:
            x0, y0, x1, y1 = cb.box
            erase[max(0, y0 - 1) : y1 + 1, max(0, x0 - 1) : x1 + 1] = 255
    if leaders:
        dots, s.leader_runs, _phases = _leader_dots(stats, cents, th, ink=ink)
        s.leaders = len(dots)
        if dots:
            sel = np.zeros(n, np.uint8)
            sel[dots] = 255
            erase |= _u8(cv2.dilate(sel[lab], np.ones((3, 3), np.uint8)))
    return erase, s


_L = r"[^\W\d_]"  # a letter (any script)
_LEADER_TEXT = (
    (re.compile(r"(?<=:)\.+(?=\S)"), " "),  # "là:...Ngô": the dotted line starting after a label
    (re.compile(r"(?<=:)\.+"), ""),
    (re.compile(rf"(?<!\S)\.+(?={_L})"), ""),  # "..cấp": dots before a word
    (re.compile(rf"(?<={_L})\.{{2,}}"), ""),  # "Hà..": dots after a word (a period is one dot)
)
_GLUED = re.compile(rf"({_L})\.(?=\w)")


def _unglue(m: re.Match[str]) -> str:
    # "Ngô.Thị", "đường.Trần", "Số.12": a dot where a space was, after a lower-case letter ("TP.HCM",
    # "Q.1" stay)
    return m.group(1) + (" " if m.group(1).islower() else ".")


def strip_leader_text(text: str) -> str:
    """The dots of a dotted line read into a value typed over it, taken out of the text.

    Used on pages with leaders only: dots right after a label's colon, before a word, two or more after a
    word, and one glued between a lower-case letter and the next word (`Ngô.Thị` → `Ngô Thị`; `TP.HCM`,
    `1.000` and a sentence's period stay)."""
    for pat, rep in _LEADER_TEXT:
        text = pat.sub(rep, text)
    return _GLUED.sub(_unglue, text)
