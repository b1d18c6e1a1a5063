"""Language ID on real text (chatterbot-corpus): scripts of Chinese, Thai, Japanese, English told apart."""

from __future__ import annotations

from collections import Counter

import pytest

from corpusforge.steps.language import LanguageID, LanguageParams, chinese_script

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def lid():
    return LanguageID(LanguageParams())


def shares(lid, texts):
    counts = Counter(lid.identify(t)[0] for t in texts)
    return {k: v / len(texts) for k, v in counts.items()}, counts


def test_traditional_chinese_short_texts(lid, real_texts):
    share, counts = shares(lid, real_texts["zh_Hant"])
    # "zh" = no script-distinguishing character (e.g. "你好"): valid in both scripts, not a mistake
    assert share["zh_Hant"] >= 0.75, counts
    assert share["zh_Hant"] + share.get("zh", 0) >= 0.97, counts
    assert share.get("zh_Hans", 0) <= 0.005, counts
    assert share.get("ja", 0) <= 0.005, counts


def test_simplified_chinese_short_texts(lid, real_texts):
    share, counts = shares(lid, real_texts["zh_Hans"])
    assert share["zh_Hans"] >= 0.72, counts
    assert share["zh_Hans"] + share.get("zh", 0) >= 0.97, counts
    assert share.get("zh_Hant", 0) <= 0.005, counts


def test_japanese_is_not_read_as_chinese(lid, real_texts):
    share, counts = shares(lid, real_texts["ja"])
    assert share["ja"] >= 0.97, counts


def test_thai_and_english(lid, real_texts):
    th, _ = shares(lid, real_texts["th"])
    assert th["th"] == 1.0
    en, counts = shares(lid, real_texts["en"])
    assert en["en"] >= 0.95, counts


def test_script_settles_what_fasttext_cannot(lid):
    # fastText alone labels both `zh`, and reads this kana-free punctuation-heavy line as Serbian (sr)
    assert lid.identify("恰恰相反,這一切都對我的假想心理有意義。")[0] == "zh_Hant"
    assert lid.identify("恰恰相反,这一切都对我来说很有意义。")[0] == "zh_Hans"
    assert lid.identify("時々。")[0] == "ja"  # the iteration mark is Japanese, no kana needed
    assert chinese_script("你好") == "zh"  # no character that only one script uses


def test_paragraph_level_text(lid, real_texts):
    # a few hundred characters of running text per document, not only one-liners
    for lang in ("zh_Hant", "zh_Hans", "ja", "en"):
        texts = real_texts[lang]
        docs = ["\n".join(texts[i : i + 12]) for i in range(0, 240, 12)]
        labels = Counter(lid.identify(d)[0] for d in docs)
        assert labels[lang] == len(docs), (lang, labels)


def test_unknown_language_code_names_the_fix():
    with pytest.raises(ValueError, match="unknown language 'zh-tw' — did you mean 'zh_Hant'"):
        LanguageParams(keep=["zh-tw"])
    with pytest.raises(ValueError, match="did you mean 'th'"):
        LanguageParams(keep=["tha"])
