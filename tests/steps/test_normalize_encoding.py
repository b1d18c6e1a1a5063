"""`normalize: {fix_encoding: true}` on real text: mojibake made the way the web makes it (UTF-8 bytes shown as
Windows-1252 or Latin-1) is repaired exactly, and real clean text is left alone."""

from __future__ import annotations

import ftfy
import ftfy.bad_codecs  # noqa: F401  (the sloppy-windows-1252 codec)
import pytest
from datatrove.data import Document

import corpusforge as cf
from corpusforge.steps.normalize import Normalize, NormalizeParams, fix_encoding
from tests.support import corpus_texts, gettext_messages, make_recipe, package_messages, stdlib_paragraphs, write_jsonl

# Windows-1252 as browsers decode it (WHATWG): its five unassigned bytes become the C1 controls of the same number,
# where Python's strict cp1252 codec raises. Latin-1 is the other label pages are wrongly served or read with.
WEB_CODECS = ("sloppy-windows-1252", "latin-1")


def documents(lines: list[str], n: int = 5) -> list[str]:
    """Real lines, ``n`` to a document, in order."""
    lines = [line for line in lines if line.strip()]
    return ["\n".join(lines[i : i + n]) for i in range(0, len(lines) - n + 1, n)]


def mangle(text: str, codec: str) -> str:
    return text.encode("utf-8").decode(codec)


@pytest.fixture(scope="module")
def web_documents() -> dict[str, list[str]]:
    """Real zh_Hant, Thai, English and Portuguese (`é` → `Ã©`) documents with characters outside ASCII (only those
    can be mangled)."""
    sets = {
        "zh_Hant": documents([t for _, t in gettext_messages("zh_TW")])
        + documents(corpus_texts("traditionalchinese")),
        "th": documents([t for _, t in gettext_messages("th")]) + documents(corpus_texts("thai"), 2),
        # English with typography: curly quotes, dashes, accented names
        "en": documents(corpus_texts("english")) + stdlib_paragraphs(100, 2000),
        "pt": documents(corpus_texts("portuguese")),
    }
    return {lang: [d for d in docs if not d.isascii()] for lang, docs in sets.items()}


@pytest.mark.parametrize("codec", WEB_CODECS)
def test_mojibake_of_real_text_is_repaired_exactly(web_documents, codec):
    step, plain = Normalize(NormalizeParams(fix_encoding=True)), Normalize(NormalizeParams())
    for lang, docs in web_documents.items():
        assert len(docs) >= {"zh_Hant": 5000, "th": 800, "en": 150, "pt": 140}[lang], lang
        broken = [mangle(d, codec) for d in docs]
        assert all(b != d for b, d in zip(broken, docs))
        fixed = [fix_encoding(b) for b in broken]
        wrong = [(d, f) for d, f in zip(docs, fixed) if f != d]
        assert not wrong, f"{lang}: {len(wrong)}/{len(docs)} not repaired, e.g. {wrong[0]}"
        # the step: the same text as the clean document normalized (the control characters mangled CJK carries are
        # its bytes: the repair runs before they are removed)
        assert [step.normalize(b) for b in broken[:300]] == [plain.normalize(d) for d in docs[:300]], lang
    assert fix_encoding("CafÃ© Ã  Paris") == "Café à Paris" and fix_encoding("æ—¥æœ¬") == "日本"


def test_a_document_with_some_lines_mangled_is_repaired_line_by_line():
    """Where mangled lines sit beside well-formed Chinese, the document cannot be re-decoded whole: ftfy judges each
    line, and a line of one or two mangled characters can pass for Latin text (`å¹´` is 年). Measured: 98.7% of such
    real zh_TW documents repaired exactly (Windows-1252), 99.8% (Latin-1)."""
    docs = documents([t for _, t in gettext_messages("zh_TW")], 6)
    for codec, floor in (("sloppy-windows-1252", 0.98), ("latin-1", 0.99)):
        mixed = ["\n".join(mangle(p, codec) if i % 2 else p for i, p in enumerate(d.split("\n"))) for d in docs]
        repaired = sum(fix_encoding(m) == d for m, d in zip(mixed, docs)) / len(docs)
        assert repaired >= floor, (codec, repaired)


def clean_texts() -> dict[str, list[str]]:
    """Real, well-formed text: translated messages (Debian's gettext catalogs, Django's and Sphinx's) with their
    English originals, chatterbot conversations in twelve languages, the standard library's docstrings."""
    texts = {f"gettext:{loc}": [t for _, t in gettext_messages(loc)] for loc in ("zh_TW", "zh_CN", "th", "ja")}
    texts["gettext:en"] = list(dict.fromkeys(e for loc in ("zh_TW", "th") for e, _ in gettext_messages(loc)))
    for folder in (
        "traditionalchinese chinese thai english french german portuguese spanish russian turkish korean japanese"
    ).split():
        texts[f"chatterbot:{folder}"] = corpus_texts(folder)
    for package in ("django", "sphinx"):
        for locale in ("fr", "de", "pt_BR", "es", "vi", "zh_Hant", "th"):
            texts[f"{package}:{locale}"] = [t for _, t in package_messages(package, locale)]
    texts["stdlib:en"] = stdlib_paragraphs(100, 2000)
    return texts


def test_real_clean_text_is_left_alone():
    """Measured: 0 of 143,589 real texts changed, and 0 of the 28,706 documents of five of them (≤ 0.1% asked)."""
    texts = clean_texts()
    units = [t for group in texts.values() for t in group]
    units += [d for group in texts.values() for d in documents(group)]
    assert len(units) > 100_000 and sum(not t.isascii() for t in units) > 80_000
    changed = [t for t in units if fix_encoding(t) != t]
    assert len(changed) / len(units) <= 0.001, changed[:5]


def test_what_ftfy_would_change_and_fix_encoding_keeps():
    """ftfy's defaults fold full-width punctuation and uncurl quotes; datatrove's FTFYFormatter (FineWeb-2's)
    unescapes HTML entities — in real text an entity may be the content (a zh_TW message of glib, verbatim)."""
    from datatrove.pipeline.formatters import FTFYFormatter

    kept = "你好，世界！（「引號」）；“curly” ‘quotes’ — ﬁ ＡＢＣ ｶﾀｶﾅ"
    assert fix_encoding(kept) == kept
    assert ftfy.fix_text(kept) != kept  # ftfy's defaults: width, quotes, ligatures
    entity = "字元參照的結束部分不是分號；很可能您想使用 & 字元但未將它變為實體 ─ 請將 & 轉換為 &amp;"
    assert entity in {t for _, t in gettext_messages("zh_TW")}
    assert fix_encoding(entity) == entity
    assert FTFYFormatter().format(entity).endswith("請將 & 轉換為 &")


def test_off_by_default_and_on_in_a_build(tmp_path):
    assert NormalizeParams().fix_encoding is False
    broken = mangle("台灣的夜市小吃，好吃又便宜！", "sloppy-windows-1252")
    assert Normalize(NormalizeParams()).normalize(broken) != "台灣的夜市小吃，好吃又便宜！"
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": broken}, {"text": "ภาษาไทย อ่านออกเขียนได้"}])
    recipe = make_recipe(tmp_path, str(path), steps=[{"normalize": {"fix_encoding": True}}])
    result = cf.run(cf.Recipe.from_dict(recipe), report=False)
    assert result.load()["text"] == ["台灣的夜市小吃，好吃又便宜！", "ภาษาไทย อ่านออกเขียนได้"]


def test_the_step_counts_what_it_repaired():
    step = Normalize(NormalizeParams(fix_encoding=True))
    docs = [Document(text=mangle("ภาษาไทย", "latin-1"), id="0"), Document(text="ภาษาไทย", id="1")]
    assert [d.text for d in step.run(iter(docs))] == ["ภาษาไทย", "ภาษาไทย"]
    assert step.stats["count_fixed_encoding"].total == 1
