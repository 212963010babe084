"""Vietnamese post-correction: look-alikes, tone marks from the LSTM's alternatives, syllable-pair context."""

from __future__ import annotations

import pytest

from ocr.lexicon import spellings, strip_tone, syllable_freq, syllable_key, syllable_pairs, tone_variants
from ocr.postcorrect import (
    Word,
    apply_hocr_words,
    apply_words,
    correct_words,
    parse_hocr_words,
    postcorrect,
    strip_choices,
)


def test_lexicon_is_installed() -> None:
    # wordfreq is a dependency and scripts/setup.sh installs the word list: without them the tone
    # correction silently weakens, so the test suite insists on them
    assert len(syllable_freq()) > 5000, "wordfreq's Vietnamese list is missing"
    assert len(syllable_pairs()) > 10000, "vi-words.txt missing: run scripts/setup.sh"
    assert syllable_key("quyền") in syllable_freq()
    assert (syllable_key("thế"), syllable_key("chấp")) in syllable_pairs()


def test_tone_placement_does_not_matter() -> None:
    # hóa/hoá, thủy/thuỷ are one syllable written two ways: one key, one frequency, one spelling
    assert syllable_key("hóa") == syllable_key("hoá") != syllable_key("hoa")
    assert syllable_key("thủy") == syllable_key("thuỷ") != syllable_key("thùy")
    assert spellings()[syllable_key("hoá")] in {"hóa", "hoá"}


def w(text: str, *alts: tuple[int, str, float], conf: float = 93.0) -> Word:
    """A word whose character *i* had the LSTM alternatives given as (i, character, confidence)."""
    choices = [[(c, conf)] for c in text]
    for i, c, v in alts:
        choices[i].append((c, v))
    return Word(text, 95, choices)


def test_tone_helpers() -> None:
    assert strip_tone("quyền") == "quyên" and strip_tone("Đất") == "Đât"
    assert {"chuyển", "chuyên", "chuyến", "chuyện"} <= tone_variants("chuyền")
    assert {"đất", "đắt"} <= tone_variants("đât")  # â ↔ ă


def test_alternative_offered_and_much_more_common_wins() -> None:
    assert correct_words([w("quyên", (3, "ề", 44.8))]) == ["quyền"]
    assert correct_words([w("Quyên,", (3, "ề", 44.8))]) == ["Quyền,"]  # case and punctuation kept


def test_valid_syllable_without_evidence_is_kept() -> None:
    # "tôi" and "đề" are real syllables: with no alternative from the LSTM they stay
    assert correct_words([w("tôi"), w("đề"), w("quyên")]) == ["tôi", "đề", "quyên"]
    # an alternative that is rarer than the reading changes nothing either
    assert correct_words([w("quyền", (3, "ê", 40.0))]) == ["quyền"]


def test_non_syllable_takes_its_clearly_most_common_tone_variant() -> None:
    assert correct_words([w("xuât,"), w("Quyêt")]) == ["xuất,", "Quyết"]
    # "đât": đất and đặt are both common, so without context it is left alone
    assert correct_words([w("đât.")]) == ["đât."]
    assert correct_words([w("ABC"), w("12/2020"), w("QĐ-CA"), w("Email")]) == ["ABC", "12/2020", "QĐ-CA", "Email"]


def test_syllable_pair_context() -> None:
    # both syllables misread; the LSTM listed the right marks, the pair "thế chấp" decides
    words = [w("thê", (2, "ể", 40.0), (2, "ế", 30.0)), w("châp", (2, "ậ", 30.0), (2, "ấ", 25.0))]
    assert correct_words(words) == ["thế", "chấp"]
    # punctuation between words cuts the context
    assert correct_words([w("Tòa"), w("án"), w("tôi", (1, "ố", 20.0)), w("cao.")]) == ["Tòa", "án", "tối", "cao."]
    assert correct_words([w("tôi,", (1, "ố", 20.0)), w("cao")]) == ["tôi,", "cao"]


def test_valid_syllable_changed_only_with_word_context() -> None:
    # no LSTM alternative at all: "khâu" is a valid syllable, but "xuất khẩu" is a word and "xuất khâu"
    # is not, and "khẩu" is more common: the tone is restored
    assert correct_words([w("xuất"), w("khâu,")]) == ["xuất", "khẩu,"]
    assert correct_words([w("sự"), w("kiêm"), w("tra")]) == ["sự", "kiểm", "tra"]
    # the same syllable on its own, or in a word it does form ("khâu vá"), is kept
    assert correct_words([w("khâu")]) == ["khâu"]
    assert correct_words([w("khâu"), w("vá")]) == ["khâu", "vá"]
    # proper names are left to the LSTM's own alternatives: "tỉnh Thanh Hóa" is not "tỉnh thành"
    assert correct_words([w("tỉnh"), w("Thanh"), w("Hóa")]) == ["tỉnh", "Thanh", "Hóa"]


def test_numbers_give_context() -> None:
    # an amount is followed by the currency, a number is introduced by "số"
    assert correct_words([w("8.000.000.000"), w("đông,"), w("nợ")]) == ["8.000.000.000", "đồng,", "nợ"]
    assert correct_words([w("bản"), w("đồ"), w("sô"), w("24/2018/DS-PT")]) == ["bản", "đồ", "số", "24/2018/DS-PT"]
    # a number's own punctuation ends the context: "2017, đông" is left alone
    assert correct_words([w("2017,"), w("đông")]) == ["2017,", "đông"]
    # numbers themselves are never changed
    assert correct_words([w("20"), w("tháng")]) == ["20", "tháng"]


def test_lookalikes_and_nfc() -> None:
    assert postcorrect("ÐẤT ðai  \n") == "ĐẤT đai\n"


HOCR = """<span class='ocrx_word' id='word_1_1' title='bbox 1 2 3 4; x_wconf 96'>quyên
 <span class='ocrx_cinfo' id='lstm_choices_1_1_1'>
  <span class='ocrx_cinfo' id='choice_1_1_1' title='x_confs 95.5'> </span></span>
 <span class='ocrx_cinfo' id='lstm_choices_1_1_2'>
  <span class='ocrx_cinfo' id='choice_1_1_2' title='x_confs 93.2'>q</span></span>
 <span class='ocrx_cinfo' id='lstm_choices_1_1_3'>
  <span class='ocrx_cinfo' id='choice_1_1_3' title='x_confs 92.6'>u</span></span>
 <span class='ocrx_cinfo' id='lstm_choices_1_1_4'>
  <span class='ocrx_cinfo' id='choice_1_1_4' title='x_confs 92.1'>y</span></span>
 <span class='ocrx_cinfo' id='lstm_choices_1_1_5'>
  <span class='ocrx_cinfo' id='choice_1_1_5' title='x_confs 92.4'>ê</span>
  <span class='ocrx_cinfo' id='choice_1_1_6' title='x_confs 44.8'>ề</span>
  <span class='ocrx_cinfo' id='choice_1_1_7' title='x_confs 0'>ế</span></span>
 <span class='ocrx_cinfo' id='lstm_choices_1_1_6'>
  <span class='ocrx_cinfo' id='choice_1_1_8' title='x_confs 93.9'>n</span></span>
</span>
<span class='ocrx_word' id='word_1_2' title='bbox 5 2 9 4; x_wconf 91'>Ð&amp;C
</span>"""


def test_parse_hocr_words_with_choices() -> None:
    words = parse_hocr_words(HOCR)
    assert [x.text for x in words] == ["quyên", "Đ&C"]
    assert words[0].conf == 96 and words[0].choices[3] == [("ê", 92.4), ("ề", 44.8), ("ế", 0.0)]
    assert words[1].choices == []


def test_strip_choices_and_write_back() -> None:
    small = strip_choices(HOCR)
    assert "ocrx_cinfo" not in small and "x_wconf 96'>quyên" in small
    fixed = apply_hocr_words(small, ["quyên", "Đ&C"], ["quyền", "Đ&C"])
    assert "x_wconf 96'>quyền" in fixed and "x_wconf 91'>Đ&amp;C" in fixed
    assert apply_words("quyên  sử\nĐ&C\n", ["quyên", "sử", "Đ&C"], ["quyền", "sử", "Đ&C"]) == "quyền  sử\nĐ&C\n"
    assert apply_words("a b", ["a"], ["x"]) == "a b"  # tokens do not match: unchanged


def test_domain_phrases_give_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """One-stop-centre terms missing from the general word list (`tờ bản đồ`, `trích đo`) are pair evidence."""
    import sys

    from ocr.lexicon import domain_pairs, syllable_pairs

    words = [[w("tờ"), w("bán", (1, "ả", 40.0)), w("đồ")], [w("trích"), w("đồ", (1, "o", 40.0))]]
    assert [correct_words(ws) for ws in words] == [["tờ", "bản", "đồ"], ["trích", "đo"]]
    general = syllable_pairs() - domain_pairs()
    monkeypatch.setattr(sys.modules["ocr.postcorrect"], "syllable_pairs", lambda: general)
    assert [correct_words(ws) for ws in words] == [["tờ", "bán", "độ"], ["trích", "đồ"]]  # without them
