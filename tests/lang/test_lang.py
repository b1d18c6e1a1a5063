"""corpusforge.lang: the language-code helpers and the identifier the steps, KD and the diagnostics share."""

from __future__ import annotations

import pickle
import re

import pytest

from corpusforge.lang.lid import LanguageIdentifier
from corpusforge.lang.names import base_language, bcp47, check_language
from corpusforge.lang.scripts import UNSPACED_RANGES, char_ranges, chinese_label


def test_language_codes():
    assert check_language("zh_Hant") == "zh_Hant" and check_language("th") == "th"
    with pytest.raises(ValueError, match=r"unknown language 'zh-tw'.*zh_Hant"):
        check_language("zh-tw")
    assert (base_language("zh_Hant"), base_language("th")) == ("zh", "th")
    assert (bcp47("zh_Hant"), bcp47("en")) == ("zh-Hant", "en")


def test_chinese_label_is_the_majority_script():
    assert (chinese_label(2, 1), chinese_label(0, 3), chinese_label(1, 1)) == ("zh_Hant", "zh_Hans", "zh")


def test_char_ranges_match_exactly_their_code_points():
    unspaced = re.compile(f"[{char_ranges(*UNSPACED_RANGES)}]")
    inside = {c for lo, hi in UNSPACED_RANGES for c in range(lo, hi + 1)}
    assert all(bool(unspaced.match(chr(c))) == (c in inside) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF)


def test_the_identifier_pickles_without_its_model():
    lid = LanguageIdentifier()
    assert lid.explain("這是一個測試。")[0] == "zh_Hant" and lid._model is None  # settled by the script
    assert lid.identify("The weather in Bangkok is hot and humid today.")[0] == "en" and lid._model is not None
    copy = pickle.loads(pickle.dumps(lid))
    assert copy._model is None and copy.identify("The weather in Bangkok is hot and humid today.")[0] == "en"
