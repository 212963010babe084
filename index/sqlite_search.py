"""Helpers of the SQLite search at province scale (see :mod:`index.sqlite`).

Document-level filters are pushed into the FTS5 query: every page row carries a ``filters`` column of
filter tokens (dossier, kind, unit, unit-scope key, received year / month / day), so a filtered query
is one FTS5 expression and never a join over every match. A received-date range becomes an ``OR`` of the
fewest year, month and day tokens that cover it (at most ~90 tokens for any range).

The three FTS5 columns have disjoint token spaces: ``literal`` holds every word of the page with :data:`MARK`
in front (``ǂquân``, ``ǂquan``), ``folded`` the plain folded words (``quan``), ``filters`` the filter tokens,
each starting with :data:`FILTER_MARK`; both marks are removed from page texts and query words. FTS5 keeps one
doclist per token whatever the column, so ``"ǂquan"`` walks only the pages holding the literal word ``quan``
(not every page holding ``quan``/``quân``/``quản``…), and no query needs a column filter (a column filter
makes FTS5 read every candidate's position list: ~35 % of a common word's count).
"""

from __future__ import annotations

import calendar
import hashlib
import html
import re
from datetime import date, timedelta

from sohoa.domain import scope_keys, unit_key
from sohoa.text import ParsedQuery, fold, nfc, render_excerpt
from sohoa.text import snippet as text_snippet

MARK = "ǂ"  # U+01C2, a letter for FTS5's unicode61 tokenizer: never in Vietnamese text (removed if it is)
FILTER_MARK = "ǁ"  # U+01C1, likewise: the first letter of every filter token
_STRIP = str.maketrans({MARK: " ", FILTER_MARK: " "})
_RUN = re.compile(r"[^\W_]+")  # letter/digit runs: unicode61's tokens ('_' and marks separate, as there)


def strip_marks(text: str) -> str:
    return text.translate(_STRIP) if MARK in text or FILTER_MARK in text else text


def literal_text(text: str) -> str:
    """The ``literal`` column of a text: its words, each with :data:`MARK` in front (token positions kept)."""
    runs = _RUN.findall(strip_marks(text))
    return MARK + (" " + MARK).join(runs) if runs else ""


def _h(prefix: str, value: str) -> str:
    return FILTER_MARK + prefix + hashlib.blake2b(value.encode("utf-8"), digest_size=8).hexdigest()


def dossier_token(code: str) -> str:
    return _h("c", nfc(code))


def kind_token(kind: str) -> str:
    return _h("k", nfc(kind))


def unit_token(unit: str) -> str:
    return _h("u", nfc(unit))


def scope_token(key: str) -> str:
    """Token of a unit-scope comparison key (:func:`sohoa.domain.unit_key`)."""
    return _h("s", key)


def doc_token(doc_id: str) -> str:
    return _h("i", doc_id)


def meta_text(doc_id: str, dossier_code: str, kind: str, unit: str, received_at: str) -> str:
    """The ``filters`` column (and ``pages.meta``) of a page of this document: its filter tokens, space separated."""
    toks = [doc_token(doc_id), dossier_token(dossier_code), kind_token(kind), unit_token(unit)]
    key = unit_key(unit) if unit else ""
    if key:  # an empty unit is never in a scope (visible only to unrestricted callers)
        toks.append(scope_token(key))
    day = received_at[:10]
    if len(day) == 10 and day[4] == "-" and day[7] == "-":
        y, m, d = day[:4], day[5:7], day[8:10]
        toks += [f"{FILTER_MARK}y{y}", f"{FILTER_MARK}m{y}{m}", f"{FILTER_MARK}d{y}{m}{d}"]
    return " ".join(toks)


def any_of(tokens: list[str]) -> str:
    """FTS5 expression matching any of the filter *tokens* (``()`` matches nothing: caller handles)."""
    return "(" + " OR ".join(f'"{t}"' for t in tokens) + ")"


def date_tokens(start: date, end: date) -> list[str]:
    """Fewest ``ǁy``/``ǁm``/``ǁd`` tokens covering the inclusive range [start, end]."""
    out: list[str] = []
    d = start
    while d <= end:
        if d.month == 1 and d.day == 1 and date(d.year, 12, 31) <= end:
            out.append(f"{FILTER_MARK}y{d.year:04d}")
            d = date(d.year + 1, 1, 1) if d.year < 9999 else end + timedelta(days=1)
            continue
        last = calendar.monthrange(d.year, d.month)[1]
        if d.day == 1 and date(d.year, d.month, last) <= end:
            out.append(f"{FILTER_MARK}m{d.year:04d}{d.month:02d}")
            d = date(d.year, d.month, last) + timedelta(days=1)
            continue
        out.append(f"{FILTER_MARK}d{d.year:04d}{d.month:02d}{d.day:02d}")
        d += timedelta(days=1)
    return out


def date_match(start: date, end: date) -> str:
    """FTS5 expression of the received dates in [start, end]: :func:`date_tokens`, where a month is mostly
    covered written as the month minus its other days (``ǁm202403 NOT (ǁd20240329 OR …)``): FTS5 advances every
    term of an ``OR`` for each candidate row, so 28 day tokens cost ~7× the 4 terms of the same month."""
    parts: list[str] = []
    by_month: dict[str, list[str]] = {}
    for t in date_tokens(start, end):
        if t[1] == "d":
            by_month.setdefault(t[2:8], []).append(t)
        else:
            parts.append(f'"{t}"')
    for ym, days in by_month.items():
        n = calendar.monthrange(int(ym[:4]), int(ym[4:]))[1]
        if len(days) <= n - len(days) + 1:
            parts += [f'"{t}"' for t in days]
            continue
        inside = set(days)
        others = [t for t in (f"{FILTER_MARK}d{ym}{d:02d}" for d in range(1, n + 1)) if t not in inside]
        parts.append(f'("{FILTER_MARK}m{ym}" NOT (' + " OR ".join(f'"{t}"' for t in others) + "))")
    return "(" + " OR ".join(parts) + ")"


def scope_tokens(units: tuple[str, ...]) -> list[str]:
    return [scope_token(k) for k in scope_keys(units)]


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"  # what \w matches


def _word_spans(folded: str, wanted: set[str], complete: bool) -> list[tuple[int, int]]:
    """Where the words of *wanted* occur in *folded* as whole ``\\w+`` tokens (``str.find``: C speed); a match
    touching the end of an incomplete prefix may continue past it and is left out."""
    size = len(folded)
    out: list[tuple[int, int]] = []
    for w in wanted:
        i = folded.find(w)
        while i >= 0:
            e = i + len(w)
            if (i == 0 or not _is_word_char(folded[i - 1])) and (
                (e < size and not _is_word_char(folded[e])) or (e == size and complete)
            ):
                out.append((i, e))
            i = folded.find(w, i + 1)
    out.sort()
    return out


def snippet(text: str, query: ParsedQuery, width: int = 220) -> str:
    """:func:`sohoa.text.snippet`, the same output, faster: ``str.find`` of the query's words in the folded text
    instead of a Python step per word of the page, and the text folded a growing prefix at a time until the
    excerpt is known (the first match is usually early; a page without the query's exact words is never
    searched for them). The reference took ~0.3–0.6 ms a hit, most of a search's Python time, holding the GIL."""
    wanted = set(query.folded_words)
    text = nfc(text)
    if not wanted or "Σ" in text:  # Σ lowers by context: a prefix could lower differently
        return text_snippet(text, query, width)
    exact_wanted = {w.lower() for w in query.all_words}
    lowered = text.lower()
    # an exact span is a substring of the lowered text: without one, the anchor is the first match
    need_exact = query.has_diacritics and any(w in lowered for w in exact_wanted)
    n = len(text)
    folded = ""
    size = 4 * width
    while True:
        k = min(n, size)
        part = fold(text[len(folded) : k]).lower()
        if len(part) != k - len(folded):  # lower() changed lengths (rare letters): the reference path
            return text_snippet(text, query, width)
        folded += part
        spans = [(s, e, text[s:e].lower() in exact_wanted) for s, e in _word_spans(folded, wanted, k == n)]
        anchor = next((sp for sp in spans if sp[2]), None) if need_exact else None
        if anchor is None and spans and (not need_exact or k == n):
            anchor = spans[0]
        if anchor is not None and (anchor[0] + width < k or k == n):
            break  # every span of the excerpt [start, start + width), start ≤ anchor, is known
        if k == n:
            body = text[:width]
            return html.escape(" ".join(body.split())) + ("…" if n > width else "")
        size *= 4
    return render_excerpt(text, spans, anchor[0], width)
