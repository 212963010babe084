"""Where the query's words are on a page: boxes on the page image (from the hOCR word boxes) and marks
in the page text, both matched without diacritics (``dat`` marks ``đất``), as the search itself does."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from markupsafe import Markup

from sohoa.text import _WORD, fold, nfc, parse_query

_PAGE = re.compile(r"class=(['\"])ocr_page\1[^>]*?title=(['\"])(?:(?!\2).)*?bbox (\d+) (\d+) (\d+) (\d+)")
_WORD_SPAN = re.compile(
    r"<span class=['\"]ocrx_word['\"][^>]*title=['\"]bbox (\d+) (\d+) (\d+) (\d+)[^'\"]*['\"][^>]*>([^<]*)"
)


@dataclass(frozen=True)
class Box:
    """A word's box in percent of the page, ready for CSS (left, top, width, height)."""

    left: float
    top: float
    width: float
    height: float
    word: str


def query_words(q: str) -> set[str]:
    return set(parse_query(q).folded_words)


def word_boxes(hocr: str, q: str) -> list[Box]:
    wanted = query_words(q)
    page = _PAGE.search(hocr)
    if not wanted or not page:
        return []
    x0, y0, x1, y1 = (int(v) for v in page.groups()[2:])
    w, h = max(1, x1 - x0), max(1, y1 - y0)
    out = []
    for a, b, c, d, text in _WORD_SPAN.findall(hocr):
        word = html.unescape(text).strip()
        tokens = {t for t in _WORD.findall(fold(nfc(word)).lower())}
        if tokens & wanted:
            out.append(Box(100 * (int(a) - x0) / w, 100 * (int(b) - y0) / h, 100 * (int(c) - int(a)) / w,
                           100 * (int(d) - int(b)) / h, word))  # fmt: skip
    return out


def mark_text(text: str, q: str) -> Markup:
    """The whole page text, escaped, with the query's words in ``<mark>`` (folding keeps offsets aligned)."""
    text = nfc(text)
    wanted = query_words(q)
    if not wanted:
        return Markup(html.escape(text))
    folded = fold(text).lower()
    out, pos = [], 0
    for m in _WORD.finditer(folded):
        if m.group(0) in wanted:
            out.append(html.escape(text[pos : m.start()]))
            out.append(f'<mark id="m{len(out)}">{html.escape(text[m.start() : m.end()])}</mark>')
            pos = m.end()
    out.append(html.escape(text[pos:]))
    return Markup("".join(out))
