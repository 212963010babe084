"""Reading order of a page from Tesseract's words and boxes, and the structure found on the page.

Tesseract's own order is kept, except where the page's structure says otherwise:

* **side-by-side blocks** (agency | motto header of a decision, "Nơi nhận:" | signer, certification |
  applicant at the bottom of a form): consecutive rows that share an empty vertical gutter, with text on
  both sides of it on at least two rows, are read as two blocks — every line left of the gutter, then
  every line right of it — instead of across. A row whose right part starts with a field label
  (``Giới tính:``) is a row of form fields, read across.
* **tables** (:class:`ocr.forms.Table` grids): the words inside are read cell by cell in row order, one
  line per row, at the place of the table's first line; the cells' texts are kept.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from ocr.forms import Checkbox, Table

_TAG = re.compile(
    r"<(?:span|div|p) class='(ocr_carea|ocr_par|ocr_line|ocr_caption|ocr_textfloat|ocr_header|ocrx_word)'"
    r"[^>]*?title=[\"']bbox (\d+) (\d+) (\d+) (\d+)[^>]*>([^<]*)"
)
_LINE_KINDS = ("ocr_line", "ocr_caption", "ocr_textfloat", "ocr_header")


@dataclass
class Word:
    text: str
    box: tuple[int, int, int, int]


@dataclass
class Line:
    words: list[Word]
    box: tuple[int, int, int, int]
    par: int  # paragraph number (a blank line between paragraphs)
    order: int = 0
    parts: list[list[Word]] = field(default_factory=list)

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


def parse_lines(hocr: str, texts: list[str] | None = None) -> list[Line]:
    """The lines of an hOCR page in Tesseract's order, with their words (texts replaced by *texts*, the
    corrected words in the same order, when given)."""
    lines: list[Line] = []
    par = 0
    k = 0
    for m in _TAG.finditer(hocr):
        kind = m.group(1)
        box = (int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5)))
        if kind in ("ocr_par", "ocr_carea"):
            par += kind == "ocr_par"
        elif kind in _LINE_KINDS:
            lines.append(Line([], box, par))
        elif kind == "ocrx_word":
            text = html.unescape(m.group(6)).strip()
            if texts is not None:
                text = texts[k] if k < len(texts) else text
            k += 1
            if text and lines:
                lines[-1].words.append(Word(text, box))
    out = [ln for ln in lines if ln.words]
    for i, ln in enumerate(out):
        ln.order = i
    return out


def _inside(word: Word, box: tuple[int, int, int, int]) -> bool:
    cx, cy = (word.box[0] + word.box[2]) / 2, (word.box[1] + word.box[3]) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def _cell(values: list[int], v: float) -> int:
    for i in range(len(values) - 1):
        if v < values[i + 1]:
            return i
    return len(values) - 2


def _read_table(table: Table, words: list[Word]) -> list[str]:
    """One line per row of the table: the cells left to right, each cell's words in reading order."""
    nr, nc = len(table.rows) - 1, len(table.cols) - 1
    cells: list[list[list[Word]]] = [[[] for _ in range(nc)] for _ in range(nr)]
    for w in words:
        cx, cy = (w.box[0] + w.box[2]) / 2, (w.box[1] + w.box[3]) / 2
        cells[_cell(table.rows, cy)][_cell(table.cols, cx)].append(w)
    table.cells = []
    out = []
    for row in cells:
        texts = []
        for cell in row:
            texts.append(" ".join(w.text for w in _in_lines(cell)))
        table.cells.append(texts)
        line = " ".join(t for t in texts if t)
        if line:
            out.append(line)
    return out


def _in_lines(words: list[Word]) -> list[Word]:
    """Words of one cell in reading order: rows top to bottom (by vertical overlap), left to right."""
    rows: list[list[Word]] = []
    for w in sorted(words, key=lambda w: (w.box[1] + w.box[3]) / 2):
        cy = (w.box[1] + w.box[3]) / 2
        for r in rows:
            top, bottom = min(x.box[1] for x in r), max(x.box[3] for x in r)
            if top <= cy <= bottom:
                r.append(w)
                break
        else:
            rows.append([w])
    return [w for r in rows for w in sorted(r, key=lambda w: w.box[0])]


def _rows(lines: list[Line]) -> list[list[Line]]:
    """Lines grouped into visual rows (vertical overlap ≥ half the smaller line), top to bottom."""
    rows: list[list[Line]] = []
    for ln in sorted(lines, key=lambda ln: ln.box[1]):
        for r in rows:
            top, bottom = min(x.box[1] for x in r), max(x.box[3] for x in r)
            overlap = min(bottom, ln.box[3]) - max(top, ln.box[1])
            if overlap >= 0.5 * min(bottom - top, ln.height):
                r.append(ln)
                break
        else:
            rows.append([ln])
    return rows


def _gaps(words: list[Word], width: int, min_gap: float) -> list[tuple[int, int]]:
    """Empty x-intervals of a row at least *min_gap* wide (page edges included)."""
    spans = sorted((w.box[0], w.box[2]) for w in words)
    out, x = [], 0
    for a, b in spans:
        if a - x >= min_gap:
            out.append((x, a))
        x = max(x, b)
    if width - x >= min_gap:
        out.append((x, width))
    return out


_LABEL = re.compile(r"^\S+:$|^\d+\.$")


def _is_field_row(right: list[Word]) -> bool:
    """The right part of a row starts with a form field's label (``3. Giới tính:``, ``Dân tộc:``)."""
    first = [w.text for w in sorted(right, key=lambda w: w.box[0])[:4]]
    return bool(first) and (bool(re.match(r"^\d+\.$", first[0])) or any(t.endswith(":") for t in first))


def _real(words: list[Word]) -> bool:
    """Some word of two letters or digits (not a speck read as "i" or "|")."""
    return any(sum(ch.isalnum() for ch in w.text) >= 2 for w in words)


def find_columns(lines: list[Line], width: int) -> list[tuple[list[Line], int]]:
    """Bands of rows read as two side-by-side blocks: (the band's lines, the gutter's x)."""
    rows = _rows(lines)
    if len(rows) < 2:
        return []
    heights = sorted(ln.height for ln in lines)
    lh = heights[len(heights) // 2]
    min_gap = max(0.035 * width, 1.5 * lh)
    bands: list[tuple[list[Line], int]] = []
    i = floor = 0
    while i < len(rows):
        words = [w for ln in rows[i] for w in ln.words]
        gaps = [g for g in _gaps(words, width, min_gap) if 0.2 * width < (g[0] + g[1]) / 2 < 0.8 * width
                or g[0] > 0.2 * width and g[1] < 0.8 * width]  # fmt: skip
        best: tuple[int, list[int], int, int] | None = None
        for g0, g1 in gaps:
            lo, hi = g0, g1
            j, both = i, 0
            members: list[int] = []
            bottom = rows[i][0].box[1]
            while j < len(rows):
                ws = [w for ln in rows[j] for w in ln.words]
                top = min(ln.box[1] for ln in rows[j])
                if members and top - bottom > 3 * lh:
                    break
                a = max([lo, *[w.box[2] for w in ws if w.box[2] <= (lo + hi) / 2]])
                b = min([hi, *[w.box[0] for w in ws if w.box[0] >= (lo + hi) / 2]])
                crossing = any(w.box[0] < (lo + hi) / 2 < w.box[2] for w in ws)
                if crossing or b - a < 0.6 * min_gap:
                    break
                left = [w for w in ws if w.box[2] <= (a + b) / 2]
                right = [w for w in ws if w.box[0] >= (a + b) / 2]
                if left and right and _is_field_row(right):
                    break
                centre = (min(w.box[0] for w in ws) + max(w.box[2] for w in ws)) / 2
                if not (left and right) and abs(centre - width / 2) < 0.06 * width:
                    break  # a title centred on the page, below or above the two blocks
                lo, hi = a, b
                both += bool(_real(left) and _real(right))
                members.append(j)
                bottom = max(ln.box[3] for ln in rows[j])
                j += 1
            if both >= 2 and len(members) >= 3 and (best is None or len(members) > len(best[1])):
                best = (both, members, (lo + hi) // 2, lo)
        if best is None:
            i += 1
            continue
        _, members, gutter, edge = best
        members, gutter = _rows_above(rows, members, gutter, edge, width, lh, floor)
        bands.append(([ln for j in members for ln in rows[j]], gutter))
        i = floor = members[-1] + 1
    return bands


def _rows_above(rows: list[list[Line]], members: list[int], gutter: int, edge: int, width: int, lh: float,
                floor: int) -> tuple[list[int], int]:  # fmt: skip
    """*members* (and the gutter) with the rows just above the band that lie wholly right of its left block
    (*edge*: the left block's right edge), off the page's centre: the first line of the right block (a
    form's date line "Tân Lợi, ngày …", often wider than the block) printed above the left block's first
    line, which the band's search started below."""
    j = members[0] - 1
    while j >= floor:
        ws = [w for ln in rows[j] for w in ln.words]
        top = min(ln.box[1] for ln in rows[j + 1])
        bottom = max(ln.box[3] for ln in rows[j])
        centre = (min(w.box[0] for w in ws) + max(w.box[2] for w in ws)) / 2
        start = min(w.box[0] for w in ws)
        if top - bottom > 2 * lh or start <= edge + lh or centre < 0.56 * width:
            break
        members = [j, *members]
        gutter = min(gutter, (edge + start) // 2)  # the line may start left of the right block
        j -= 1
    return members, gutter


def reading_order(lines: list[Line], width: int, tables: list[Table] | None = None) -> str:
    """The page's text in reading order (module docstring); one text line per line, blank between paragraphs."""
    tables = tables or []
    # table words leave their lines; the table is read where its first line was
    table_at: dict[int, list[str]] = {}
    for t in tables:
        inside = [(ln, w) for ln in lines for w in ln.words if _inside(w, t.box)]
        if not inside:
            t.cells = []
            continue
        first = min(ln.order for ln, _ in inside)
        table_at[first] = _read_table(t, [w for _, w in inside])
        for ln, w in inside:
            ln.words.remove(w)
    kept = [ln for ln in lines if ln.words]
    band_at: dict[int, list[str]] = {}
    in_band: set[int] = set()
    for band, gutter in find_columns(kept, width):
        left = [(ln.box[1], [w for w in ln.words if w.box[2] <= gutter]) for ln in band]
        right = [(ln.box[1], [w for w in ln.words if w.box[0] >= gutter]) for ln in band]
        texts = [" ".join(w.text for w in ws) for _, ws in sorted(left, key=lambda t: t[0]) if ws]
        texts += [" ".join(w.text for w in ws) for _, ws in sorted(right, key=lambda t: t[0]) if ws]
        band_at[min(ln.order for ln in band)] = texts
        in_band.update(ln.order for ln in band)
    out: list[str] = []
    par = None
    for ln in lines:
        if ln.order in table_at:
            out += ["", *table_at[ln.order], ""]
        if ln.order in band_at:
            out += ["", *band_at[ln.order], ""]
        if ln.order in in_band or not ln.words:
            continue
        if par is not None and ln.par != par:
            out.append("")
        par = ln.par
        out.append(" ".join(w.text for w in ln.words))
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    return text + "\n" if text else ""


def label_checkboxes(boxes: list[Checkbox], lines: list[Line]) -> None:
    """Each checkbox's label: the words right of it on its line, up to the next checkbox."""
    for cb in boxes:
        cy = (cb.box[1] + cb.box[3]) / 2
        for ln in lines:
            if not ln.box[1] <= cy <= ln.box[3]:
                continue
            stops = [o.box[0] for o in boxes if o is not cb and o.box[0] > cb.box[2]
                     and ln.box[1] <= (o.box[1] + o.box[3]) / 2 <= ln.box[3]]  # fmt: skip
            end = min(stops, default=10**9)
            words = [w.text for w in ln.words if cb.box[2] <= w.box[0] < end]
            if words:
                cb.label = " ".join(words)
                break
