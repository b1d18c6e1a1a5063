"""The content step: how terms match (whole words, substrings, both Chinese scripts, Thai sara am), its rules on
one mention and on dense pages, its keep rate on real clean text, its drop rate on gambling and adult pages planted
in real text, extra term files, URL rules, and the funnel of a recipe run.

Real text, none written by us: gettext catalogs of Debian packages (tests/text/locale: zh_TW, zh_CN and th
translations and their English msgids), Django's and Sphinx's catalogs, chatterbot-corpus (BSD-3), the standard
library's docstrings and its code. A planted page is a real page (consecutive messages of one catalog, 300-3,000
characters, as benchmarks/bench_quality.py builds them) with terms of the step's own lists (LDNOOBW and pythainlp
less the exclusions, and ours) put after a space, a line break or a punctuation mark, drawn with a seeded RNG, until
the page holds at least ``min_terms`` of them and ``density`` per 1,000 characters; Chinese terms in the page's
script (OpenCC `s2tw` for zh_TW pages, `t2s` for zh_CN).
"""

from __future__ import annotations

import json
import random

import pytest
from datatrove.data import Document

import corpusforge as cf
from corpusforge.lang.scripts import opencc_converter
from corpusforge.steps.content import (
    DATA,
    SHIPPED,
    Content,
    ContentParams,
    TermMatcher,
    read_terms,
    term_forms,
)
from tests.support import (
    corpus_texts,
    gettext_messages,
    make_recipe,
    package_messages,
    pages_of,
    stdlib_paragraphs,
    stdlib_source,
    write_jsonl,
)


def run(params: ContentParams, texts: list[str], **metadata) -> tuple[list[Document], dict]:
    step = Content(params)
    docs = [Document(text=t, id=str(i), metadata=dict(metadata)) for i, t in enumerate(texts)]
    out = list(step.run(iter(docs)))
    return out, {k: v.total for k, v in step.stats.stats.items()}


def counts(text: str, lang: str, params: ContentParams | None = None) -> dict[str, int]:
    return Content(params or ContentParams()).matchers[lang].counts(text)


# ------------------------------------------------------------------------------------------------ matching
def test_whole_words_in_english_substrings_in_chinese_and_thai():
    assert counts("Casino night: online casino, free spins, no  deposit\nbonus", "en") == {"gambling": 4}
    assert counts("casinos", "en") == {"gambling": 1}  # its own term
    assert counts("xcasino casinox poker_face 2pokers", "en") == {}  # glued to letters or digits: other words
    assert counts("百家樂娛樂城老虎機", "zh") == {"gambling": 3}  # no spaces between Chinese words
    assert counts("บาคาร่าสล็อตแทงบอลออนไลน์", "th") == {"gambling": 3}  # the longest term: แทงบอลออนไลน์
    assert counts("สล็อต PG Slot ufabet168", "th") == {"gambling": 2}  # Latin terms in a Thai list: whole words


def test_one_chinese_list_counts_in_both_scripts():
    # ours are written in Traditional, LDNOOBW's in Simplified: OpenCC adds the other forms
    for text in ("線上娛樂城 百家樂 老虎機", "线上娱乐城 百家乐 老虎机"):
        assert counts(text, "zh") == {"gambling": 3}, text
    for text in ("他妈的 鸡巴 婊子", "他媽的 雞巴 婊子"):
        assert counts(text, "zh") == {"adult": 3}, text
    assert "百家乐" in term_forms("百家樂") and "他媽的" in term_forms("他妈的")


def test_thai_sara_am_decomposed_or_not():
    # LDNOOBW writes น้ําแตก with NIKHAHIT + SARA AA; text mostly with SARA AM: both match both
    assert counts("น้ำแตก", "th") == counts("น้\u0e4d\u0e32แตก", "th") == {"adult": 1}


def test_exclusions_leave_ordinary_words_alone():
    text = "可能性 牛奶 幹部 路口交通 他妈妈的家 不干你的事 乳房檢查"
    assert counts(text, "zh") == {}
    assert counts("หีบ สัดส่วน ห่างไกล บ้าน ตายตัว เชี่ยวชาญ กะปิ สัตว์", "th") == {}
    assert counts("the butt of a joke, cum laude, guitar fingering, XXX: fix, a sexual health clinic", "en") == {}


def test_every_exclusion_names_a_term_of_a_list():
    for lang in ("zh", "th", "en"):
        listed = {
            k
            for cat in SHIPPED.values()
            for f in cat.get(lang, ())
            for t in read_terms(DATA / f)
            for k in term_forms(t)
        }
        stale = [t for t in read_terms(DATA / f"exclude.{lang}.txt") if not term_forms(t) & listed]
        assert not stale, f"exclude.{lang}.txt names terms no list has: {stale}"


def test_the_readme_names_every_list():
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    files = {f for cat in SHIPPED.values() for fs in cat.values() for f in fs} | {
        f"exclude.{x}.txt" for x in "zh th en".split()
    }
    for name in files:  # by name, or as `gambling.{zh,th,en}.txt`
        assert name in readme or name.split(".")[0] + ".{" in readme, name


# ------------------------------------------------------------------------------------------------ rules
GAMBLING_PAGE = "歡迎光臨線上娛樂城！百家樂、老虎機、真人荷官，首存送100%，返水天天領。"


def test_one_mention_is_kept_and_a_dense_page_dropped():
    ordinary = [
        "新聞：政府宣布將修法管理賭場，業者表示尊重，並會配合相關規定辦理。",
        "ข่าววันนี้ ตำรวจจับกุมเว็บพนันออนไลน์ได้หนึ่งแห่ง และจะดำเนินคดีตามกฎหมายต่อไป",
        "The film Casino (1995) is a crime drama directed by Martin Scorsese, starring Robert De Niro.",
    ]
    dense = [
        GAMBLING_PAGE,
        "บาคาร่า สล็อตเว็บตรง แทงบอล ฝากถอนออโต้ เครดิตฟรี",
        "Online casino: free spins, roulette, poker!",
    ]
    out, stats = run(ContentParams(), ordinary + dense)
    assert [d.text for d in out] == ordinary
    assert stats["dropped_content_gambling"] == 3 and stats["forwarded"] == 3


def test_thresholds_per_category_and_language():
    page = "百家樂 老虎機 " + "這是一段很普通的文字，" * 20  # 2 terms in 226 characters
    assert run(ContentParams(), [page])[1]["forwarded"] == 1
    assert run(ContentParams(min_count=2), [page])[1].get("forwarded", 0) == 0
    assert run(ContentParams(rules={"gambling": {"min_count": 2}}), [page])[1].get("forwarded", 0) == 0
    assert run(ContentParams(rules={"zh.gambling": {"min_count": 2}}), [page])[1].get("forwarded", 0) == 0
    assert run(ContentParams(rules={"th.gambling": {"min_count": 2}}), [page])[1]["forwarded"] == 1
    assert run(ContentParams(min_count=2, rules={"zh.gambling": {"density": 50}}), [page])[1]["forwarded"] == 1


def test_language_from_metadata_else_the_script():
    step = Content(ContentParams())
    assert step.language(Document(text="百家樂", id="1")) == "zh"
    assert step.language(Document(text="บาคาร่า", id="1")) == "th"
    assert step.language(Document(text="hello", id="1")) == "en"
    assert step.language(Document(text="hello", id="1", metadata={"language": "zh_Hant"})) == "zh"
    # a language without lists: only the extra terms given for every language
    out, _ = run(ContentParams(), ["Online casino: free spins, roulette, poker!"], language="fr")
    assert len(out) == 1


def test_flag_keeps_and_records():
    out, stats = run(ContentParams(action="flag"), [GAMBLING_PAGE, "普通的一句話"])
    assert (
        len(out) == 2 and out[0].metadata["content_flags"] == ["gambling"] and "content_flags" not in out[1].metadata
    )
    assert stats["count_gambling"] == 1 and "dropped" not in stats


# ------------------------------------------------------------------------------------------------ URLs
def test_url_rules_look_at_the_host():
    urls = {
        "https://ufabet168.com/th/promo": False,
        "https://www.pornhub.com/view": False,
        "http://xn--casino-thai.net/": False,
        "https://en.wikipedia.org/wiki/Casino_Royale_(2006_film)": True,  # a topic, not a site
        "https://www.sussex.ac.uk/": True,
    }
    docs = [Document(text="a page", id=str(i), metadata={"url": u}) for i, u in enumerate(urls)]
    step = Content(ContentParams())
    kept = [d.metadata["url"] for d in step.run(iter(docs))]
    assert kept == [u for u, keep in urls.items() if keep]
    stats = {k: v.total for k, v in step.stats.stats.items()}
    assert stats["dropped_content_url_gambling"] == 2 and stats["dropped_content_url_adult"] == 1


def test_url_patterns_of_the_recipe_and_percent_decoding():
    params = ContentParams(url_patterns={"gambling": [r"/บาคาร่า/", r"^https?://[^/]*\.bet\b"]}, url_field="link")
    docs = [
        "https://x.com/%E0%B8%9A%E0%B8%B2%E0%B8%84%E0%B8%B2%E0%B8%A3%E0%B9%88%E0%B8%B2/1",
        "https://Win.BET/",
        "https://x.com/",
    ]
    out, stats = run(params, ["a page"] * 3)
    assert len(out) == 3  # no `link` field
    step = Content(params)
    kept = list(step.run(iter(Document(text="a page", id=str(i), metadata={"link": u}) for i, u in enumerate(docs))))
    assert [d.metadata["link"] for d in kept] == ["https://x.com/"]
    assert run(ContentParams(url_patterns={}), ["a page"], url="https://pornhub.com/")[1]["forwarded"] == 1


# ------------------------------------------------------------------------------------------------ extra terms
def test_extra_terms_files(tmp_path):
    (tmp_path / "words.txt").write_text("# ours\nfoobarbaz\n菠蘿麵包\n", encoding="utf-8")
    (tmp_path / "terms.yaml").write_text(
        "gambling:\n  th: [หวยใต้ดิน]\nscam: [get rich quick, 快速致富]\n", encoding="utf-8"
    )
    (tmp_path / "terms.json").write_text(json.dumps({"scam": {"en": ["wire the money"]}}), encoding="utf-8")

    txt = ContentParams(extra_terms=str(tmp_path / "words.txt"), rules={"custom": {"min_count": 1, "density": 0}})
    assert txt.input_files() == [str(tmp_path / "words.txt")]
    out, stats = run(txt, ["I like foobarbaz", "买个菠萝面包", "nothing"])  # also in the other script
    assert [d.text for d in out] == ["nothing"] and stats["dropped_content_custom"] == 2

    yml = ContentParams(extra_terms=str(tmp_path / "terms.yaml"), min_count=1, density=0)
    out, stats = run(yml, ["ซื้อหวยใต้ดิน", "get  rich quick", "快速致富", "หวยใต้ดิน in English"], language="th")
    assert not out and stats["dropped_content_gambling"] == 2 and stats["dropped_content_scam"] == 2
    out, _ = run(yml, ["get rich quick"], language="ja")  # terms without a language apply to every language
    assert not out

    js = ContentParams(extra_terms=str(tmp_path / "terms.json"), min_count=1, density=0)
    assert not run(js, ["please wire the money"], language="en")[0]
    assert run(js, ["please wire the money"], language="th")[0]


def test_params_are_checked(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        ContentParams(extra_terms=str(tmp_path / "missing.txt"))
    (tmp_path / "bad.yaml").write_text("gambling: [a, [b]]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="list of strings"):
        ContentParams(extra_terms=str(tmp_path / "bad.yaml"))
    (tmp_path / "bad2.yaml").write_text("Gambling Terms: [a]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="lowercase name"):
        ContentParams(extra_terms=str(tmp_path / "bad2.yaml"))
    (tmp_path / "bad3.yaml").write_text("gambling: {tw: [a]}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown language 'tw'"):
        ContentParams(extra_terms=str(tmp_path / "bad3.yaml"))
    (tmp_path / "bad.csv").write_text("a\n", encoding="utf-8")
    with pytest.raises(ValueError, match=".txt list"):
        ContentParams(extra_terms=str(tmp_path / "bad.csv"))
    with pytest.raises(ValueError, match="not a regular expression"):
        ContentParams(url_patterns={"adult": ["(porn"]})
    with pytest.raises(ValueError, match="names no category"):
        ContentParams(rules={"th.gamble": {"density": 1}})
    with pytest.raises(ValueError, match="unknown language"):
        ContentParams(rules={"tj.gambling": {"density": 1}})
    with pytest.raises(ValueError, match="without its script"):
        ContentParams(rules={"zh_Hant.gambling": {"density": 1}})
    with pytest.raises(ValueError):
        ContentParams(categories=["violence"])
    with pytest.raises(ValueError):
        ContentParams(unknown=1)


def test_terms_pattern_is_one_pass_with_a_first_character_each():
    # every top-level alternative starts with a plain character: the engine's fast skip (see terms_pattern)
    import re._compiler as compiler
    import re._parser as parser

    for lang, matcher in Content(ContentParams()).matchers.items():
        if matcher.pattern is not None:
            assert compiler._get_charset_prefix(parser.parse(matcher.pattern.pattern), 0), lang
    assert TermMatcher({}).counts("anything") == {}


# ------------------------------------------------------------------------------------------------ real text
def clean_corpora() -> dict[str, dict[str, list[str]]]:
    """language → corpus name → real clean texts."""

    def unique(texts):
        return [t for t in dict.fromkeys(texts) if t.strip()]

    return {
        "zh": {
            "gettext zh_TW": unique(t for _, t in gettext_messages("zh_TW")),
            "gettext zh_CN": unique(t for _, t in gettext_messages("zh_CN")),
            "django + sphinx zh": unique(t for p in ("django", "sphinx") for loc in ("zh_Hant", "zh_Hans", "zh_TW", "zh_CN")
                                         for _, t in package_messages(p, loc)),
            "chatterbot zh": unique(corpus_texts("traditionalchinese") + corpus_texts("chinese")),
        },
        "th": {
            "gettext th": unique(t for _, t in gettext_messages("th")),
            "django + sphinx th": unique(t for p in ("django", "sphinx") for _, t in package_messages(p, "th")),
            "chatterbot th": unique(corpus_texts("thai")),
        },
        "en": {
            "gettext msgids": unique(m for loc in ("zh_TW", "th") for m, _ in gettext_messages(loc)),
            "stdlib docstrings": unique(stdlib_paragraphs(40, 3000)),
            "chatterbot en": unique(corpus_texts("english")),
            "stdlib source code": stdlib_source(),
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def corpora():
    return clean_corpora()


def test_keep_rate_on_real_clean_text(corpora):
    """≥ 99 % of real clean messages and of real clean pages kept, per corpus; ≥ 99.9 % of all."""
    step = Content(ContentParams())
    total = dropped = 0
    lines = []
    for by_name in corpora.values():
        for name, texts in by_name.items():
            for kind, docs in (("texts", texts), ("pages", pages_of(texts, random.Random(name)))):
                fired = [(t, r) for t in docs if (r := step.reasons(Document(text=t, id="x")))]
                total, dropped = total + len(docs), dropped + len(fired)
                lines += [f"{name} {kind}: {r} {t[:100]!r}" for t, r in fired]
                print(f"\n{name} {kind}: {len(docs)} documents, kept {1 - len(fired) / max(len(docs), 1):.3%}")
                assert len(fired) <= 0.01 * len(docs), lines[-10:]
    print(f"all: {total} documents, {dropped} dropped ({dropped / total:.4%})")
    assert total > 100_000
    assert dropped <= 0.001 * total, lines


def source_terms(lang: str, category: str) -> list[str]:
    """The terms of a category's shipped lists, as written there, less the exclusions: what the step counts."""
    excluded = {k for t in read_terms(DATA / f"exclude.{lang}.txt") for k in term_forms(t)}
    terms = [t for f in SHIPPED[category][lang] for t in read_terms(DATA / f)]
    return [t for t in dict.fromkeys(terms) if not term_forms(t) & excluded]


PUNCTUATION = set(" \n，。、；：！？（）「」,.;:!?()")


def plant_terms(rng: random.Random, page: str, terms: list[str], density: float, min_terms: int = 3) -> str:
    """``page`` with terms of ``terms`` put after spaces, line breaks and punctuation (the start of the page if
    it has none), until it holds ``min_terms`` of them and ``density`` per 1,000 characters."""
    spots = [i for i in range(1, len(page)) if page[i - 1] in PUNCTUATION] or [0]
    planted: list[tuple[int, str]] = []
    size = len(page)
    while len(planted) < min_terms or len(planted) * 1000 < density * size:
        term = rng.choice(terms)
        spot = rng.choice(spots)
        sep = " " if term.isascii() else ""
        planted.append((spot, sep + term + sep))
        size += len(planted[-1][1])
    for spot, term in sorted(planted, reverse=True):
        page = page[:spot] + term + page[spot:]
    return page


PLANT_SOURCES = {  # language → (clean corpus, OpenCC conversion of the terms into the page's script)
    "zh_Hant": ("gettext zh_TW", "s2tw"),
    "zh_Hans": ("gettext zh_CN", "t2s"),
    "th": ("gettext th", None),
    "en": ("stdlib docstrings", None),
}


def planted_pages(
    corpora, language: str, category: str, density: float, min_terms: int = 3, n: int = 300
) -> list[str]:
    corpus, convert = PLANT_SOURCES[language]
    lang = language.split("_")[0]
    rng = random.Random(f"{language}-{category}-{density}")
    pages = pages_of(corpora[lang][corpus], rng)
    terms = source_terms(lang, category)
    if convert:
        terms = list(dict.fromkeys(opencc_converter(convert).convert(t) for t in terms))
    return [plant_terms(rng, rng.choice(pages), terms, density, min_terms) for _ in range(n)]


@pytest.mark.parametrize("category", ["gambling", "adult"])
@pytest.mark.parametrize("language", ["zh_Hant", "zh_Hans", "th", "en"])
def test_drop_rate_on_planted_pages(corpora, language, category):
    step = Content(ContentParams())
    dense = planted_pages(corpora, language, category, density=5.0)
    caught = sum(category in step.reasons(Document(text=p, id="x")) for p in dense)
    once = planted_pages(corpora, language, category, density=0.0, min_terms=1, n=100)  # one term, once
    kept = sum(not step.reasons(Document(text=p, id="x")) for p in once)
    print(
        f"\n{language} {category}: dropped {caught / len(dense):.1%} at 5 per 1,000 characters; kept {kept} of "
        f"{len(once)} with one term"
    )
    assert caught >= 0.99 * len(dense)
    assert kept >= 0.99 * len(once)


# ------------------------------------------------------------------------------------------------ a recipe run
def test_reasons_reach_the_manifest_funnel(tmp_path):
    rows = [
        {"text": GAMBLING_PAGE, "url": "https://example.org/news"},
        {"text": "一段普通的文字。", "url": "https://www.pornhub.com/view_video"},
        {"text": "บาคาร่า สล็อตเว็บตรง แทงบอล ฝากถอนออโต้ เครดิตฟรี"},
        {"text": "乾淨的一行，沒有任何問題。", "url": "https://zh.wikipedia.org/wiki/百家樂"},
    ]
    write_jsonl(tmp_path / "in.jsonl", rows)
    recipe = make_recipe(
        tmp_path, str(tmp_path / "in.jsonl"), steps=[{"language": {}}, {"content": {}}], source={"fields": ["url"]}
    )
    result = cf.run(cf.Recipe.from_dict(recipe))
    row = {s["step"]: s for s in result.manifest["steps"]}["content"]
    assert row["in"] == 4 and row["out"] == 1
    assert row["dropped"] == {"content_gambling": 2, "content_url_adult": 1}
    assert list(result.load()["text"]) == ["乾淨的一行，沒有任何問題。"]


def test_the_extra_terms_file_is_an_input_of_the_build(tmp_path):
    from corpusforge.runner.inputs import step_files

    terms = tmp_path / "terms.txt"
    terms.write_text("foobarbaz\n", encoding="utf-8")
    write_jsonl(tmp_path / "in.jsonl", [{"text": "foobarbaz foobarbaz foobarbaz"}, {"text": "clean"}])
    recipe = cf.Recipe.from_dict(
        make_recipe(tmp_path, str(tmp_path / "in.jsonl"), steps=[{"content": {"extra_terms": str(terms)}}])
    )
    assert step_files(recipe) == [(("steps", 0, "content"), str(terms))]
    result = cf.run(recipe)
    assert {s["step"]: s for s in result.manifest["steps"]}["content"]["dropped"] == {"content_custom": 1}
