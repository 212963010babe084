"""Syllables read run together (`Hìnhthứcnhận`, `Quadịchvụ`, `Sốlượng`) split again.

Vietnamese writes every syllable apart, so a token made of several syllables is a reading error: Tesseract
loses a space when the gaps of a line are uneven (the erased checkbox squares of a form, a table cell's
padding). A token is split when it is no syllable itself, holds a Vietnamese letter (not plain ASCII: codes,
e-mail, foreign words stay), and cuts into 2–6 syllables that are all common (``MIN_FREQ`` in the `wordfreq`
list, or syllables of place names); among the cuts, fewest pieces first, then the one whose neighbours form
the most dictionary words, then the most common syllables. Digits and punctuation inside a token: unchanged.
"""

from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache

from ocr.lexicon import name_syllables, syllable_freq, syllable_key, syllable_pairs

MIN_FREQ = 1e-5  # a piece must be at least this common (≈ the 6,000th syllable)
MAX_SYLLABLE = 7  # letters of the longest Vietnamese syllable (nghiêng)
_TOKEN = re.compile(r"[^\W\d_]{4,}")
_VOWEL = re.compile("[aăâeêioôơuưy]")


@lru_cache(maxsize=20000)
def _piece(s: str) -> float | None:
    """log frequency of a lower-case piece that is a common syllable, else None."""
    k = syllable_key(s)
    if not _VOWEL.search(k):
        return None  # "m", "tr": no syllable without a vowel
    f = syllable_freq().get(k, 0.0)
    if f >= MIN_FREQ:
        return math.log(f)
    if k in name_syllables() and len(s) >= 2:
        return math.log(MIN_FREQ)
    return None


def split_token(token: str) -> str:
    """*token* with spaces where its syllables were run together, or unchanged."""
    low = token.lower()
    if token.isascii() or len(low) != len(token) or _piece(low) is not None or len(low) < 4:
        return token
    if syllable_key(low) in syllable_freq():
        return token  # a rare syllable is still one syllable
    pairs = syllable_pairs()
    n = len(low)
    # best[i]: (pieces, -pair words, -log freq, cut positions) of the best split of low[:i]
    best: list[tuple[int, int, float, tuple[int, ...]] | None] = [None] * (n + 1)
    best[0] = (0, 0, 0.0, ())
    for i in range(1, n + 1):
        for j in range(max(0, i - MAX_SYLLABLE), i):
            prev = best[j]
            if prev is None:
                continue
            lf = _piece(low[j:i])
            if lf is None:
                continue
            bonus = 0
            if prev[3]:
                a = low[prev[3][-2] if len(prev[3]) > 1 else 0 : j]
                bonus = int((syllable_key(a), syllable_key(low[j:i])) in pairs)
            cand = (prev[0] + 1, prev[1] - bonus, prev[2] - lf, (*prev[3], i))
            here = best[i]
            if here is None or cand < here:
                best[i] = cand
    done = best[n]
    if done is None or not 2 <= done[0] <= 6:
        return token
    cuts = (0, *done[3])
    return " ".join(token[a:b] for a, b in zip(cuts, cuts[1:], strict=False))


def split_glued(text: str) -> str:
    """*text* with every run-together token split into its syllables (see the module docstring)."""
    text = unicodedata.normalize("NFC", text)
    return _TOKEN.sub(lambda m: split_token(m.group(0)), text)
