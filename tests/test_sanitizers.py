"""Property tests (Hypothesis) for what every upload's metadata passes through: the dossier-code check and
the file-name and label sanitizers."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import InputError
from ingest.validate import validate_metadata
from sohoa.settings import DEFAULT_DOSSIER_CODE_PATTERN, Settings
from sohoa.text import clean_label, safe_filename

SETTINGS = Settings(data_dir="/nonexistent")  # type: ignore[arg-type]
ASCII_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.]{0,39}-[0-9]{6}-[0-9]{4,6}")
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)


# candidates: any text, and strings shaped like a code whose \\d may be any Unicode digit (٢, ２ …) or end in \\n
CANDIDATES = TEXT | st.from_regex(DEFAULT_DOSSIER_CODE_PATTERN, fullmatch=False)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(CANDIDATES)
def test_dossier_code_is_refused_or_a_clean_ascii_code(raw: str) -> None:
    try:
        code, kind, _, _ = validate_metadata(SETTINGS, raw, "input")
    except InputError:
        return
    assert ASCII_CODE.fullmatch(code), code  # never a look-alike digit, never a trailing newline
    assert kind == "input"


@settings(max_examples=200)
@given(st.from_regex(DEFAULT_DOSSIER_CODE_PATTERN, fullmatch=True).filter(lambda s: ASCII_CODE.fullmatch(s)))
def test_every_well_formed_code_is_accepted_unchanged(code: str) -> None:
    assert validate_metadata(SETTINGS, f"  {code} ", "output")[0] == code


@settings(max_examples=400)
@given(TEXT)
def test_safe_filename(name: str) -> None:
    out = safe_filename(name)
    assert out and len(out) <= 180
    assert unicodedata.is_normalized("NFC", out)
    assert "/" not in out and "\\" not in out and not out.startswith(".")
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in out)
    assert out == out.strip() and "  " not in out
    assert safe_filename(out) == out  # idempotent: what is stored is what a re-upload stores


@given(st.text(alphabet="abcđêôơưáàảãạ0123456789 -_", min_size=1, max_size=400).filter(lambda s: s.strip()))
def test_long_names_keep_their_extension(stem: str) -> None:
    out = safe_filename(stem + ".pdf")
    assert out.endswith(".pdf") and len(out) <= 180


@given(TEXT)
def test_clean_label(text: str) -> None:
    out = clean_label(text)
    assert len(out) <= 300 and out == " ".join(out.split()) and unicodedata.is_normalized("NFC", out)
    assert clean_label(out) == out
