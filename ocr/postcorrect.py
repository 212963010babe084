"""Vietnamese post-correction of OCR text (conservative: look-alike characters and NFC only)."""

from __future__ import annotations

import re
import unicodedata

# characters Tesseract emits for Vietnamese letters that look the same
LOOKALIKES = str.maketrans({"Ð": "Đ", "ð": "đ", "Ɖ": "Đ", "ɖ": "đ"})
_SPACES = re.compile(r"[ \t]+\n")


def postcorrect(text: str) -> str:
    """NFC, look-alikes (``Ð`` U+00D0 → ``Đ`` U+0110), trailing blanks; never changes a valid syllable."""
    text = unicodedata.normalize("NFC", text).translate(LOOKALIKES)
    return _SPACES.sub("\n", text).strip("\n") + ("\n" if text.strip() else "")
