"""Vietnamese post-correction of OCR text.

Two steps, both conservative:

* :func:`postcorrect` — NFC, look-alike characters (``Ð`` U+00D0 → ``Đ`` U+0110 …), trailing blanks.
* :func:`correct_words` — tone and vowel marks, per syllable, from the evidence Tesseract itself gives:
  its LSTM's alternative characters (hOCR with ``lstm_choice_mode=2``) weighed against how common each
  reading is in Vietnamese (:mod:`ocr.lexicon`). A valid syllable is only replaced when Tesseract
  offered the replacement as an alternative *and* the replacement is much more common; a syllable that
  does not exist in Vietnamese may also be replaced by its one clearly most common tone variant.
"""

from __future__ import annotations

import html
import itertools
import math
import re
import unicodedata
from dataclasses import dataclass

from ocr.lexicon import (
    NUMBER,
    SURNAMES,
    name_syllables,
    place_keys,
    spellings,
    syllable_freq,
    syllable_key,
    syllable_pairs,
    tone_variants,
)

# characters Tesseract emits for Vietnamese letters that look the same
LOOKALIKES = str.maketrans({"Ð": "Đ", "ð": "đ", "Ɖ": "Đ", "ɖ": "đ"})
_SPACES = re.compile(r"[ \t]+\n")


def postcorrect(text: str) -> str:
    """NFC, look-alikes (``Ð`` U+00D0 → ``Đ`` U+0110), trailing blanks; never changes a valid syllable."""
    text = unicodedata.normalize("NFC", text).translate(LOOKALIKES)
    return _SPACES.sub("\n", text).strip("\n") + ("\n" if text.strip() else "")


# --- hOCR with LSTM choices --------------------------------------------------------------------------

_WORD_START = re.compile(r"<span class='ocrx_word' id='[^']*' title='[^']*?x_wconf (\d+)'[^>]*>([^<]*)")
_GROUP = re.compile(r"<span class='ocrx_cinfo' id='lstm_choices[^']*'>(.*?)</span></span>", re.S)
_CHOICE = re.compile(r"title='x_confs ([\d.]+)'>([^<]*)</span>")
_CINFO = re.compile(r"\s*<span class='ocrx_cinfo' id='lstm_choices[^']*'>.*?</span></span>", re.S)


@dataclass
class Word:
    text: str  # as Tesseract wrote it (NFC, look-alikes fixed)
    conf: int  # x_wconf
    choices: list[list[tuple[str, float]]]  # per character of text: (character, confidence), best first


def parse_hocr_words(hocr: str) -> list[Word]:
    """Words of an hOCR page in reading order, with the LSTM's per-character alternatives when present."""
    words = []
    starts = list(_WORD_START.finditer(hocr))
    for k, m in enumerate(starts):
        end = starts[k + 1].start() if k + 1 < len(starts) else len(hocr)
        text = postcorrect(html.unescape(m.group(2))).strip()
        groups = []
        for g in _GROUP.findall(hocr, m.end(), end):
            ch = [(unicodedata.normalize("NFC", html.unescape(c)).translate(LOOKALIKES), float(v))
                  for v, c in _CHOICE.findall(g + "</span>")]  # fmt: skip
            if ch and ch[0][0] != " ":
                groups.append(ch)
        if len(groups) != len(text):
            groups = []
        else:
            # the word text may differ from the per-step best character (the beam search decided)
            groups = [g if g[0][0] == c else [(c, g[0][1]), *[x for x in g if x[0] != c]]
                      for c, g in zip(text, groups, strict=True)]  # fmt: skip
        words.append(Word(text, int(m.group(1)), groups))
    return words


def apply_hocr_words(hocr: str, old: list[str], new: list[str]) -> str:
    """Write the corrected *new* words into the hOCR word spans (whose texts are *old*, in order)."""
    starts = list(_WORD_START.finditer(hocr))
    if len(starts) != len(old) or len(old) != len(new):
        return hocr
    parts, pos = [], 0
    for m, n in zip(starts, new, strict=True):
        if html.unescape(m.group(2)).strip() != n:  # corrected, or look-alikes fixed
            raw = m.group(2)
            parts += [hocr[pos : m.start(2)], html.escape(n, quote=False), raw[len(raw.rstrip()) :]]
            pos = m.end(2)
    return "".join(parts) + hocr[pos:]


def strip_choices(hocr: str) -> str:
    """hOCR without the LSTM choice spans (ten times smaller)."""
    return _CINFO.sub("", hocr)


# --- the correction ------------------------------------------------------------------------------------

MIN_ALT = 1.0  # an alternative character below this LSTM confidence is no evidence
FLOOR = 1e-8  # frequency of a syllable the lexicon does not know


@dataclass(frozen=True)
class CorrectionSettings:
    channel_weight: float = 1.0  # weight of log(alternative conf / best conf) against log(frequency ratio)
    keep_bonus: float = math.log(2.0)  # Tesseract's own reading is favoured by this much (log-odds)
    pair_bonus: float = 4.5  # two neighbouring syllables forming a dictionary word (≈ log 90)
    nonword_ratio: float = 3.0  # non-word → tone variant only when it is this much more common than the next
    # a valid syllable's other tone variants (not offered by the LSTM) compete only with this handicap:
    # with pair_bonus 4.5 a variant wins only when it makes a dictionary word with a neighbour that the
    # reading does not make, and is ≥ 2.2× as common (`xuất khâu` → `xuất khẩu`); never inside a proper
    # name. Swept log 10 / 30 / 100 / e⁶ on ocr-eval (docs/ocr.md); inf disables
    variant_penalty: float = math.log(100)
    # alternatives the LSTM listed with a confidence below MIN_ALT count as this confidence (0: ignored)
    listed_conf: float = 0.5
    # a proper name's valid syllables (Vietnamese or place-name syllables) are never changed
    protect_names: bool = True


def _split(token: str) -> tuple[str, str, str]:
    i, j = 0, len(token)
    while i < j and not token[i].isalpha():
        i += 1
    while j > i and not token[j - 1].isalpha():
        j -= 1
    return token[:i], token[i:j], token[j:]


def _recase(like: str, word: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def candidates(
    w: Word, freq: dict[str, float], s: CorrectionSettings, name: bool = False, protected: bool = False
) -> list[tuple[str, float]]:
    """Readings of the word's letters with their scores (log frequency + channel); Tesseract's first.

    *name*: the word looks like part of a proper name (capitalised next to a capitalised word), so only
    readings the LSTM itself offered are considered, and a reading that is a place-name syllable but no
    common word (``Pắc``, ``Lắk``) is kept. *protected*: the name is a known place (``Krông Pắc``,
    ``Buôn Ma Thuột``) or a person's (it starts with a family name): how common a syllable is says
    nothing there (``Thuột`` is 100× rarer than ``Thuật``), so a reading that is a name syllable is kept.
    """
    pre, core, post = _split(w.text)
    key0 = syllable_key(core.lower())
    f0 = freq.get(key0, 0.0)
    out = [(core, math.log(f0 or FLOOR) + s.keep_bonus)]
    if not core.isalpha():
        return out
    if name and s.protect_names and key0 in name_syllables() and (protected or not f0):
        return out
    seen = {key0}
    if len(w.choices) == len(w.text):
        alts = []
        for g in w.choices[len(pre) : len(pre) + len(core)]:
            rest = [(c, v if v >= MIN_ALT else s.listed_conf) for c, v in g[1:]
                    if c.isalpha() and c != g[0][0] and (v >= MIN_ALT or s.listed_conf > 0)]  # fmt: skip
            alts.append([g[0], *rest])
        varying = sorted((k for k, g in enumerate(alts) if len(g) > 1), key=lambda k: -alts[k][1][1])[:3]
        for combo in itertools.product(*[alts[k][:4] for k in varying]):
            chars = list(core)
            channel = 0.0
            for k, (c, v) in zip(varying, combo, strict=True):
                chars[k] = c
                channel += math.log(max(v, 1e-3) / max(alts[k][0][1], 1e-3))
            cand = unicodedata.normalize("NFC", "".join(chars))
            key = syllable_key(cand.lower())
            fc = freq.get(key, 0.0)
            if fc and key not in seen:
                seen.add(key)
                out.append((cand, math.log(fc) + s.channel_weight * channel))
    if f0 and s.variant_penalty < math.inf and not name:
        for variant in tone_variants(core.lower()):
            key = syllable_key(variant)
            fv = freq.get(key, 0.0)
            if fv and key not in seen:
                seen.add(key)
                out.append((_recase(core, spellings().get(key, variant)), math.log(fv) - s.variant_penalty))
    if not f0 and not core.isascii():
        # not a Vietnamese syllable although written with Vietnamese marks: its clearly most common
        # tone variant is a candidate too
        by_key = {vk: spellings().get(vk, v) for v in tone_variants(core.lower()) if (vk := syllable_key(v))}
        ranked = sorted(((f, v) for vk, v in by_key.items() if (f := freq.get(vk, 0.0))), reverse=True)
        if ranked and (len(ranked) == 1 or ranked[0][0] >= s.nonword_ratio * ranked[1][0]):
            cand = _recase(core, ranked[0][1])
            if syllable_key(ranked[0][1]) not in seen:
                out.append((cand, math.log(ranked[0][0]) - math.log(s.nonword_ratio)))
    return out


def _is_number(token: str) -> bool:
    return token[:1].isdigit()


def _ends_phrase(token: str) -> bool:
    """Punctuation after the word cuts the context (a number's own dots and slashes do not)."""
    if _is_number(token):
        return token[-1] in ',;:)”"!?' or (token[-1] == "." and not token[-2:-1].isdigit())
    return bool(_split(token)[2])


def _joins(token: str) -> bool:
    """The word continues the context of the previous one (no punctuation before it)."""
    return _is_number(token) or not _split(token)[0]


def _titled(w: Word) -> bool:
    core = _split(w.text)[1]
    return core[:1].isupper() and not core.isupper()


_SURNAME_KEYS = frozenset(syllable_key(x.lower()) for x in SURNAMES)


def _protected_names(chain: list[Word], names: list[bool]) -> list[bool]:
    """Words of *chain* inside a person's name (a capitalised run starting with a family name) or inside
    a known place name (its syllables, as read, match a place of the list)."""
    keys = [syllable_key(_split(w.text)[1].lower()) for w in chain]
    out = [False] * len(chain)
    places = place_keys()
    k = 0
    while k < len(chain):
        if not names[k]:
            k += 1
            continue
        j = k
        while j + 1 < len(chain) and names[j + 1] and not _ends_phrase(chain[j].text):
            j += 1
        if keys[k] in _SURNAME_KEYS and j > k:
            out[k : j + 1] = [True] * (j + 1 - k)
        for a in range(k, j + 1):
            for b in range(a + 2, min(j + 1, a + 5) + 1):
                if tuple(keys[a:b]) in places:
                    out[a:b] = [True] * (b - a)
        k = j + 1
    return out


def correct_words(words: list[Word], s: CorrectionSettings | None = None) -> list[str]:
    """Best reading of every word: a Viterbi pass over the page's syllables.

    Each word's candidates are scored by frequency and by how confident the LSTM was in the changed
    characters; neighbouring syllables that form a word of the word list (``thế chấp``) earn a bonus.
    Punctuation between two words cuts the chain.
    """
    s = s or CorrectionSettings()
    freq = syllable_freq()
    if not freq:
        return [w.text for w in words]
    pairs = syllable_pairs()
    out: list[str] = []
    i = 0
    while i < len(words):
        # a chain: words joined without punctuation between them
        j = i
        while j + 1 < len(words) and not _ends_phrase(words[j].text) and _joins(words[j + 1].text):
            j += 1
        chain = words[i : j + 1]
        names = [
            _titled(w) and ((k > 0 and _titled(chain[k - 1])) or (k + 1 < len(chain) and _titled(chain[k + 1])))
            for k, w in enumerate(chain)
        ]
        protected = _protected_names(chain, names) if s.protect_names else [False] * len(chain)
        cands = [
            candidates(w, freq, s, name, prot)[:1] if _is_number(w.text) else candidates(w, freq, s, name, prot)
            for w, name, prot in zip(chain, names, protected, strict=True)
        ]
        # Viterbi
        keys = [
            [NUMBER] if _is_number(w.text) else [syllable_key(c.lower()) for c, _ in cs]
            for w, cs in zip(chain, cands, strict=True)
        ]
        score = [sc for _, sc in cands[0]]
        back: list[list[int]] = []
        for k in range(1, len(chain)):
            new_score, ptr = [], []
            for (_c, sc), ck in zip(cands[k], keys[k], strict=True):
                best_p, best_v = 0, -math.inf
                for p, pk in enumerate(keys[k - 1]):
                    v = score[p] + (s.pair_bonus if (pk, ck) in pairs else 0.0)
                    if v > best_v:
                        best_p, best_v = p, v
                new_score.append(best_v + sc)
                ptr.append(best_p)
            score, back = new_score, [*back, ptr]
        pick = [max(range(len(score)), key=score.__getitem__)]
        for ptr in reversed(back):
            pick.append(ptr[pick[-1]])
        pick.reverse()
        for w, cs, k in zip(chain, cands, pick, strict=True):
            pre, core, post = _split(w.text)
            out.append(pre + cs[k][0] + post if k else w.text)
        i = j + 1
    return out


_TOKEN = re.compile(r"\S+")


def apply_words(text: str, old: list[str], new: list[str]) -> str:
    """Replace the whitespace-separated tokens of *text* (which must be *old*, in order) by *new*."""
    tokens = _TOKEN.findall(text)
    if tokens != old or len(old) != len(new):
        return text
    it = iter(new)
    return _TOKEN.sub(lambda _m: next(it), text)
