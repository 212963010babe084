"""The corrected words of a page with their boxes: the invisible text layer of the archival PDF.

Tesseract's hOCR gives a box per word it read; post-correction (:mod:`ocr.postcorrect`) and reading
order (:mod:`ocr.layout`) then change the words and their order. :func:`corrected_words` aligns the
corrected text's words with the hOCR words (Levenshtein opcodes over the two word lists, via
rapidfuzz) so that each corrected word gets the box of the word(s) it came from:

* equal / replaced one for one: the hOCR word's box;
* replaced *n* → *m* (merged or split words; adjacent edits form one block): the corrected words'
  characters are laid along the hOCR words' characters, each taking the part of the boxes it falls
  on (united on one line) — a merge takes the union, a split cuts the box in proportion;
* inserted (no hOCR word): shares the box of the word just before it (or after it), on its line;
* deleted (an hOCR word the corrected text does not have): dropped;
* a block of corrected words that the alignment could not place but whose exact text occurs among
  the dropped hOCR words (reading order moved a block) takes those words' boxes.

Pure: no I/O. Output is NFC and never contains ``Ð`` (U+00D0, Tesseract's look-alike of ``Đ``).
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

Box = tuple[int, int, int, int]

# a line-level element (or a word) of Tesseract's hOCR, its title and the text right after the tag
_ELEMENT = re.compile(
    r"<span class=['\"](ocr_line|ocr_header|ocr_caption|ocr_textfloat|ocrx_word)['\"][^>]*?"
    r"title=['\"]([^'\"]*)['\"][^>]*>([^<]*)"
)
_BBOX = re.compile(r"bbox (-?\d+) (-?\d+) (-?\d+) (-?\d+)")
_LOOKALIKES = str.maketrans({"Ð": "Đ", "ð": "đ", "Ɖ": "Đ", "ɖ": "đ"})


@dataclass(frozen=True)
class Word:
    text: str  # NFC, the corrected word
    box: Box  # x0, y0, x1, y1 in pixels of the OCR image (origin top-left)
    line: int  # line index (words of one hOCR line share it)


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", text).translate(_LOOKALIKES)


def hocr_words(hocr: str) -> list[Word]:
    """The words of an hOCR page as Tesseract read them, in its order, with their boxes and line index."""
    words: list[Word] = []
    line = -1
    for cls, title, body in _ELEMENT.findall(hocr):
        if cls != "ocrx_word":
            line += 1
            continue
        text = _clean(html.unescape(body)).strip()
        m = _BBOX.search(title)
        if not text or m is None:
            continue
        x0, y0, x1, y1 = (int(v) for v in m.groups())
        words.append(Word(text, (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)), max(line, 0)))
    return words


def _union(boxes: list[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _spread(texts: list[str], sources: list[Word]) -> list[Word]:
    """Place *texts* over the boxes of *sources* (n → m words).

    The texts' characters are laid along the sources' characters in proportion; a text takes the part
    of each source box its characters fall on (a source word's box cut by character), united on the
    line it overlaps most. So merged words take the union of their boxes and a split word cuts its box.
    """
    if len(texts) == len(sources):
        return [Word(t, s.box, s.line) for t, s in zip(texts, sources, strict=True)]
    src_len = [max(len(s.text), 1) for s in sources]
    dst_len = [max(len(t), 1) for t in texts]
    total_src, total_dst = sum(src_len), sum(dst_len)
    starts = [sum(src_len[:k]) for k in range(len(sources))]
    out: list[Word] = []
    pos = 0
    for t, n in zip(texts, dst_len, strict=True):
        a, b = pos * total_src / total_dst, (pos + n) * total_src / total_dst
        pos += n
        pieces: dict[int, list[tuple[float, float, int, int, float]]] = {}
        for s, st, ln in zip(sources, starts, src_len, strict=True):
            lo, hi = max(a, st), min(b, st + ln)
            if hi <= lo:
                continue
            x0, y0, x1, y1 = s.box
            part = (x0 + (x1 - x0) * (lo - st) / ln, x0 + (x1 - x0) * (hi - st) / ln, y0, y1, hi - lo)
            pieces.setdefault(s.line, []).append(part)
        line = max(pieces, key=lambda k: sum(p[4] for p in pieces[k]))
        ps = pieces[line]
        left = round(min(p[0] for p in ps))
        right = max(round(max(p[1] for p in ps)), left + 1)
        out.append(Word(t, (left, min(p[2] for p in ps), right, max(p[3] for p in ps)), line))
    return out


def _share_neighbour(texts: list[str], neighbour: Word, after: bool) -> list[Word]:
    """Inserted words: they split the neighbour's box with it (the neighbour keeps its part)."""
    return _spread([neighbour.text, *texts] if after else [*texts, neighbour.text], [neighbour])


def corrected_words(hocr: str, corrected_text: str) -> list[Word]:
    """The corrected text's words, each with the box of the hOCR word(s) it corresponds to (see module doc)."""
    src = hocr_words(hocr)
    dst = _clean(corrected_text).split()
    if not src or not dst:
        return []
    # runs of non-equal opcodes joined: a merge or split shows as a replacement next to a deletion or
    # an insertion, and must be placed as one n → m block
    blocks: list[tuple[str, int, int, int, int]] = []
    for op in Levenshtein.opcodes([w.text for w in src], dst):
        tag, i1, i2, j1, j2 = op.tag, op.src_start, op.src_end, op.dest_start, op.dest_end
        if blocks and tag != "equal" and blocks[-1][0] != "equal":
            _, p1, _, q1, _ = blocks[-1]
            tag = "replace" if (i2 > p1 and j2 > q1) else tag
            blocks[-1] = (tag, p1, i2, q1, j2)
        else:
            blocks.append((tag, i1, i2, j1, j2))
    placed: list[Word | None] = [None] * len(dst)
    unplaced: list[tuple[int, int]] = []  # dst ranges with no source words
    dropped: list[int] = []  # src indexes no dst word took
    for tag, i1, i2, j1, j2 in blocks:
        if tag in ("equal", "replace"):
            for w, j in zip(_spread(dst[j1:j2], src[i1:i2]), range(j1, j2), strict=True):
                placed[j] = w
        elif tag == "delete":
            dropped.extend(range(i1, i2))
        else:  # insert
            unplaced.append((j1, j2))
    # a block moved by reading order: a deleted run of hOCR words with exactly the inserted words' text
    if unplaced and dropped:
        by_text: dict[str, list[int]] = {}
        for i in dropped:
            by_text.setdefault(src[i].text, []).append(i)
        still: list[tuple[int, int]] = []
        for j1, j2 in unplaced:
            rest: list[int] = []
            for j in range(j1, j2):
                cands = by_text.get(dst[j])
                if cands:
                    i = cands.pop(0)
                    placed[j] = Word(dst[j], src[i].box, src[i].line)
                else:
                    rest.append(j)
            # what is left of the block: consecutive runs
            run: list[int] = []
            for j in [*rest, -2]:
                if run and j != run[-1] + 1:
                    still.append((run[0], run[-1] + 1))
                    run = []
                if j >= 0:
                    run.append(j)
        unplaced = still
    for j1, j2 in unplaced:
        before = next((k for k in range(j1 - 1, -1, -1) if placed[k] is not None), None)
        after = next((k for k in range(j2, len(dst)) if placed[k] is not None), None)
        if before is not None and (after is None or before == j1 - 1):
            nb = placed[before]
            assert nb is not None
            parts = _share_neighbour(dst[j1:j2], nb, after=True)
            placed[before] = parts[0]
            for j, w in zip(range(j1, j2), parts[1:], strict=True):
                placed[j] = w
        elif after is not None:
            nb = placed[after]
            assert nb is not None
            parts = _share_neighbour(dst[j1:j2], nb, after=False)
            placed[after] = parts[-1]
            for j, w in zip(range(j1, j2), parts[:-1], strict=True):
                placed[j] = w
    return [w for w in placed if w is not None]
