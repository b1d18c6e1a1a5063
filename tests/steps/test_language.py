"""Language ID on real text (chatterbot-corpus): scripts of Chinese, Thai, Japanese, English told apart."""

from __future__ import annotations

from collections import Counter

import pytest

from corpusforge.lang.scripts import HAN, KANA, chinese_script, chinese_script_counts
from corpusforge.steps.language import LanguageID, LanguageParams
from tests.support import package_messages, short_lines

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


def ui_and_doc_lines(locale_by_package: dict[str, str], translated: bool = True) -> list[str]:
    """Real single lines of 10–80 characters: Django's UI strings and Sphinx's messages (placeholders, options,
    identifiers and code mixed in), the translations or (``translated=False``) their English originals."""
    texts = [
        (value if translated else msgid)
        for package, locale in locale_by_package.items()
        for msgid, value in package_messages(package, locale)
    ]
    return short_lines(texts)


@pytest.fixture(scope="module")
def keep_hant():
    return LanguageID(LanguageParams(keep=["zh_Hant"]))


def kept(step, lines):
    from datatrove.data import Document

    docs = [Document(text=line, id=str(i)) for i, line in enumerate(lines)]
    return [doc for doc in docs if step.filter(doc) is True]


def test_short_mixed_traditional_lines_are_kept(keep_hant):
    lines = [line for line in ui_and_doc_lines({"django": "zh_Hant", "sphinx": "zh_TW"}) if HAN.search(line)]
    mixed = [line for line in lines if any("a" <= c.lower() <= "z" for c in line)]
    assert len(lines) >= 700 and len(mixed) >= 300
    docs = kept(keep_hant, lines)
    assert len(docs) / len(lines) >= 0.95, len(docs)
    assert sum(doc.text in set(mixed) for doc in docs) / len(mixed) >= 0.95
    # each kept line was decided by its script, and says so
    assert {doc.metadata["language"] for doc in docs} == {"zh_Hant", "zh"}
    assert all(doc.metadata["language_reason"].startswith("script: ") for doc in docs)


def test_simplified_japanese_and_english_lines_are_not_kept(keep_hant):
    simplified = ui_and_doc_lines({"django": "zh_Hans", "sphinx": "zh_CN"})
    docs = kept(keep_hant, simplified)
    # only lines written identically in both scripts (`zh`) pass: none holds a Simplified-only character
    assert all(chinese_script_counts(doc.text)[1] == 0 for doc in docs)
    assert {doc.metadata["language"] for doc in docs} <= {"zh"} and len(docs) / len(simplified) <= 0.1
    japanese = ui_and_doc_lines({"django": "ja", "sphinx": "ja"})
    docs = kept(keep_hant, japanese)
    # Japanese written in kanji alone ("%(count)s分前") is Chinese to the script; none with kana is kept
    assert not any(KANA.search(doc.text) for doc in docs) and len(docs) / len(japanese) <= 0.03
    english = ui_and_doc_lines({"django": "zh_Hant", "sphinx": "zh_TW"}, translated=False)
    assert len(english) >= 700 and kept(keep_hant, english) == []


def test_a_recipe_of_script_languages_asks_no_model_for_other_scripts():
    step = LanguageID(LanguageParams(keep=["zh_Hant", "th"]))
    english = ui_and_doc_lines({"django": "zh_Hant"}, translated=False)
    assert kept(step, english) == [] and step._model is None  # fastText never loaded
    annotate = LanguageID(LanguageParams())
    assert annotate.explain("setfscreatecon () 失敗")[:3:2] == (
        "zh_Hant",
        "script: traditional-only 1 > simplified-only 0",
    )
    assert annotate._model is None
    assert annotate.explain("Only use IPv4 addresses")[:3:2] == ("en", "fasttext")


def test_single_language_alphabets_settle_and_other_scripts_do_not():
    """Django's catalogs, line by line: Greek, Armenian, Tamil, Thai… are settled by their script (as fastText would
    label them); Russian, Bulgarian or Ukrainian lines are not, even with a Greek letter or, in a line of three words
    or more, a `中文` in them (shorter: one word each, either reading holds)."""
    lid = LanguageID(LanguageParams())
    for locale in ("el", "hy", "ta", "te", "ml", "km", "my", "th", "kn", "pa"):
        lines = ui_and_doc_lines({"django": locale})
        settled = [lid.explain(line) for line in lines]
        by_script = [lang for lang, _, reason in settled if reason.startswith("script: ")]
        assert len(by_script) >= 0.8 * len(lines) and set(by_script) == {locale}, (locale, set(by_script))
    for locale in ("ru", "bg", "uk"):
        for line in ui_and_doc_lines({"django": locale}):
            if not any(w.isalpha() for w in line.split()):
                continue  # a placeholder or an option with no Cyrillic word
            for text in (
                line,
                f"{line} α",
                *([f"{line} 中文"] if sum(w.isalpha() for w in line.split()) >= 3 else []),
            ):
                assert not lid.explain(text)[2].startswith("script: "), text


def test_a_fasttext_build_without_the_compiled_handle_gives_the_same_answers(lid, real_texts):
    """`model.f` is fastText's internal handle; a `fasttext` module without it goes through the public predict."""

    class PublicOnly:  # the public API of fasttext's FastText, nothing else
        def __init__(self, model):
            self.predict = model.predict

    texts = [t for lang in ("en", "th", "ja", "zh_Hans") for t in real_texts[lang][:60]]
    public = LanguageID(LanguageParams())
    public._model = PublicOnly(lid.model)
    assert not hasattr(public.model, "f")
    fast = [lid.explain(t) for t in texts]
    slow = [public.explain(t) for t in texts]
    assert sum(r[2].startswith("fasttext") for r in fast) >= 20  # the comparison reaches fastText
    assert [(lang, reason) for lang, _, reason in slow] == [(lang, reason) for lang, _, reason in fast]
    assert max(abs(a[1] - b[1]) for a, b in zip(fast, slow)) < 1e-4
