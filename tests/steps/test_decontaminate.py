"""The decontaminate step: units and their normalisation, n-gram sizes across scripts, the eval-set kinds and their
errors, recall on eval items planted in real text (verbatim and with small edits), the share of real clean documents
it flags, and a build: the funnel's reason and counts, the flagged rows' metadata, a changed eval set refused on
resume, a Hub eval set pinned.

Real text, none written by us: the scorecard's shipped English prompts (MT-Bench, Vicuna, TruthfulQA); gettext
catalogs of Debian packages (tests/text/locale: zh_TW and th translations, the English msgids); Django's and Sphinx's
catalogs; chatterbot-corpus (BSD-3); the standard library's docstrings. Eval items and clean documents come from
sources that share no text (Debian's catalogs on one side, the others on the other, both ways round).
"""

from __future__ import annotations

import json
import pickle
import random
import re
import unicodedata

import numpy as np
import pytest
from datatrove.data import Document

import corpusforge as cf
from corpusforge.data import shipped_prompts
from corpusforge.lang.scripts import UNSPACED, UNSPACED_RANGES, char_ranges
from corpusforge.steps.decontaminate import (
    Decontaminate,
    DecontaminateParams,
    Index,
    Runs,
    Sizes,
    Units,
    unit_table,
)
from corpusforge.testing import locale_catalogs, mo_messages
from tests.support import (
    corpus_texts,
    locale_dir,
    make_recipe,
    package_messages,
    pages_of,
    stdlib_paragraphs,
    write_jsonl,
)


def unit_texts(text: str) -> list[str]:
    units = Units(text)
    return [units.norm[s:e] for s, e in zip(units.starts, units.ends)]


def run(params: DecontaminateParams, texts: list[str]) -> tuple[list[Document], dict]:
    step = Decontaminate(params)
    out = list(step.run(iter(Document(text=t, id=str(i)) for i, t in enumerate(texts))))
    return out, {k: v.total for k, v in step.stats.stats.items()}


def shipped_en() -> list[str]:
    return [json.loads(line)["prompt"] for line in shipped_prompts("en").read_text(encoding="utf-8").splitlines()]


# ------------------------------------------------------------------------------------------------ units
def test_units_ignore_case_width_spacing_and_punctuation():
    assert unit_texts("Hello,   World!") == unit_texts("ＨＥＬＬＯ　world") == ["hello", "world"]
    assert unit_texts("這是「測試」。") == unit_texts("這 是 測試") == list("這是測試")
    assert unit_texts("สวัสดี ครับ") == list("สวัสดีครับ")  # a Thai code point, vowel and tone marks too, each a unit
    assert unit_texts("用 Python 3.12 寫") == ["用", "python", "3", "12", "寫"]
    assert unit_texts("naïve café") == ["naïve", "café"]  # marks stay in their word
    table = unit_table()
    assert table[ord("中")] != table[ord("ก")] and table[ord("a")] != table[ord("中")]
    assert len(Units("")) == 0 and len(Units("!!! ... ---")) == 0
    assert unit_texts("abc \ud800 def") == ["abc", "def"]  # a lone surrogate (JSON lets one through) separates


def test_the_hash_of_a_run_does_not_depend_on_where_it_is():
    a, b = Units("one two three four"), Units("zero, One  two THREE four!")
    assert np.array_equal(a.windows(3), b.windows(3)[1:])
    assert b.windows(3, np.array([1]))[0] == a.windows(3)[0]
    assert a.windows(5).size == 0
    assert b.text(1, 3) == "one two three"


def test_an_ngram_is_the_shortest_run_worth_one():
    """13 words, 25 CJK characters or 50 Thai ones; a run that mixes scripts is an n-gram at the shortest of those
    sizes at which its units add up to one (a word 1/13, a CJK character 1/25, a Thai one 1/50)."""
    runs = Runs(Sizes(words=13, cjk=25, thai=50))
    expected = {
        " ".join(["word"] * 14): [13, 13],
        "字" * 26: [25, 25],
        "ก" * 50: [50],
        "字" * 24: [],  # 24/25
        "word " * 12 + "字" * 13: [25],  # 12/13 + 1/25 short of one at 13 units; 12/13 + 13/25 at 25
        "ก" * 25 + "字" * 13: [],  # 25/50 + 13/25 = 1.02, but in 38 units: too few for 50
        "ก" * 25 + "字" * 25: [25, 50],  # the 25 CJK ones; from the start, 50 units (24 CJK and one Thai: 0.98)
    }
    found = {t: [size for size, first in runs.starts(Units(t)).items() for _ in first] for t in expected}
    assert found == expected


# ------------------------------------------------------------------------------------------------ eval sets, errors
def recipe_with(tmp_path, eval_sets, **params) -> dict:
    write_jsonl(tmp_path / "in.jsonl", [{"text": "a document"}])
    return make_recipe(
        tmp_path, str(tmp_path / "in.jsonl"), steps=[{"decontaminate": {"eval_sets": eval_sets, **params}}]
    )


@pytest.mark.parametrize(
    ("eval_set", "message"),
    [
        ({"file": "missing.jsonl", "fields": ["q"]}, r"eval_sets\[0\]: file: 'missing.jsonl' does not exist"),
        ({"file": "{tmp}/evals.jsonl", "fields": ["question"]}, r"eval_sets\[0\]: fields: no field 'question'"),
        ({"file": "{tmp}/evals.jsonl"}, r"eval_sets\[0\]: fields: name the fields .* has \['prompt', 'answer'\]"),
        ({"file": "{tmp}/evals.xml", "fields": ["q"]}, r"eval_sets\[0\]: file: cannot tell the format"),
        (
            {"file": "{tmp}/bad.jsonl", "fields": ["q"]},
            r"eval_sets\[0\]: file: '.*bad.jsonl' holds no readable record \(.*bad.jsonl:1: ",
        ),
        ({"file": "{tmp}/lines.txt", "fields": ["q"]}, r"eval_sets\[0\]: fields: a txt file has no fields"),
        ({"shipped": "xx"}, r"eval_sets\[0\]\.shipped: corpusforge ships no prompt set 'xx' \(it ships: en\)"),
        ({"hf": {"path": "no/such/folder"}, "fields": ["q"]}, r"eval_sets\[0\]: hf.path: 'no/such/folder' is neither"),
        ({"hf": {"path": "json"}, "fields": ["q"]}, r"eval_sets\[0\]: hf.path: 'json' is a `datasets` builder"),
        ({"shipped": "en", "fields": ["prompt"]}, r"eval_sets\[0\]\.fields: unknown key 'fields'"),
    ],
)
def test_a_bad_eval_set_is_named_at_validation(tmp_path, eval_set, message):
    write_jsonl(tmp_path / "evals.jsonl", [{"prompt": "p", "answer": "a"}])
    (tmp_path / "evals.xml").write_text("<x/>")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    (tmp_path / "lines.txt").write_text("one item\n")
    spec = json.loads(json.dumps(eval_set).replace("{tmp}", str(tmp_path)))
    with pytest.raises(cf.RecipeError, match=r"steps\[0\]\.decontaminate\." + message):
        cf.Recipe.from_dict(recipe_with(tmp_path, [spec]))


def test_sizes_and_names_are_checked(tmp_path):
    with pytest.raises(cf.RecipeError, match=r"min_length.words \(14\) is larger than n.words"):
        cf.Recipe.from_dict(
            recipe_with(tmp_path, [{"shipped": "en"}], min_length={"words": 14, "cjk": 15, "thai": 30})
        )
    with pytest.raises(cf.RecipeError, match=r"eval_sets\[1\]: two eval sets are named 'scorecard-en'"):
        cf.Recipe.from_dict(recipe_with(tmp_path, [{"shipped": "en"}, {"shipped": "en"}]))
    params = DecontaminateParams(eval_sets=[{"shipped": "en"}, {"shipped": "en", "name": "again"}])
    assert [s.label for s in params.eval_sets] == ["scorecard-en", "again"]


def test_file_formats_and_fields(tmp_path):
    """jsonl, a JSON array, csv, parquet and txt read alike; lists and chat messages (their user turns) count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"question": "Which planet is known as the red planet of the solar system?", "answers": ["Mars", "Ares"]}]
    write_jsonl(tmp_path / "a.jsonl", rows)
    (tmp_path / "b.json").write_text(json.dumps(rows))
    (tmp_path / "c.csv").write_text("question,answers\n" + f'"{rows[0]["question"]}",Mars\n')
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    (tmp_path / "e.txt").write_text(rows[0]["question"] + "\n\n")
    chat = [{"role": "user", "content": rows[0]["question"]}, {"role": "assistant", "content": "Mars, the fourth."}]
    write_jsonl(tmp_path / "f.jsonl", [{"messages": chat}])
    sets = [
        {"file": str(tmp_path / n), "fields": ["question", "answers"]}
        for n in ("a.jsonl", "b.json", "c.csv", "d.parquet")
    ]
    sets += [{"file": str(tmp_path / "e.txt")}, {"file": str(tmp_path / "f.jsonl"), "fields": ["messages"]}]
    params = DecontaminateParams(eval_sets=sets)
    texts = [list(s.items([])) for s in params.eval_sets]
    q = rows[0]["question"]
    assert texts == [[f"{q}\nMars\nAres"]] * 2 + [[f"{q}\nMars"], [f"{q}\nMars\nAres"], [q], [q]]
    assert params.input_files() == [s["file"] for s in sets]
    assert [s.label for s in params.eval_sets] == ["a", "b", "c", "d", "e", "f"]


def test_short_items_are_matched_whole_and_the_shortest_never(tmp_path):
    items = ["hi", "Are toads frogs?", "How can I improve my time management skills?"]
    write_jsonl(tmp_path / "evals.jsonl", [{"q": q} for q in items])
    params = DecontaminateParams(eval_sets=[{"file": str(tmp_path / "evals.jsonl"), "fields": ["q"]}])
    docs = [
        "hi there, are toads frogs? Nobody knows.",  # 1 and 3 words: below min_length.words (8)
        "Tips: how can I improve my time management skills? Start early.",  # 8 words, whole
        "How can I improve my time management? Start early.",  # 7 of them
        "how can i improve my time-management skills",  # punctuation separates units: still the 8
    ]
    out, stats = run(params, docs)
    assert [d.text for d in out] == [docs[0], docs[2]]
    assert stats["dropped_contaminated"] == 2


# ------------------------------------------------------------------------------------------------ real text
def debian(locale: str) -> list[list[str]]:
    """The translations of each Debian catalog of ``locale``."""
    return [[t for _, t in mo_messages(p)] for p in locale_catalogs(locale_dir(), locale)]


def packages(*catalogs: tuple[str, str]) -> list[str]:
    return [t for package, locale in catalogs for _, t in package_messages(package, locale)]


@pytest.fixture(scope="module")
def real():
    """Eval items and documents from sources that share no text: Debian's catalogs on one side; Django's, Sphinx's,
    chatterbot's and the standard library's on the other (and the other way round). English eval items: the shipped
    prompts, against chatterbot's English, the docstrings and (where the items are not Debian's) the Debian msgids."""
    rng = random.Random("decontaminate")
    english = {"chatterbot en": corpus_texts("english"), "stdlib docstrings": stdlib_paragraphs(40, 3000)}
    # the English the Debian translations were made from (they keep parts of it: commands, option lists)
    msgids = list(dict.fromkeys(m for p in locale_catalogs(locale_dir(), "zh_TW") for m, _ in mo_messages(p)))
    django_zh, django_th = packages(("django", "zh_Hant"), ("sphinx", "zh_TW")), packages(("django", "th"))
    debian_zh, debian_th = debian("zh_TW"), debian("th")
    return {
        "Debian items": (
            {"zh_Hant": [m for c in debian_zh for m in c], "th": [m for c in debian_th for m in c]},
            {
                "django + sphinx zh_Hant": django_zh,
                "django th": django_th,
                "chatterbot zh_Hant, th": corpus_texts("traditionalchinese") + corpus_texts("thai"),
                **english,
            },
        ),
        "Django items": (
            {"zh_Hant": django_zh, "th": django_th},
            {
                "Debian zh_TW pages": [p for c in debian_zh for p in pages_of(c, rng)],
                "Debian th pages": [p for c in debian_th for p in pages_of(c, rng)],
                "Debian th messages": [m for c in debian_th for m in c],
                "Debian English msgids": msgids,
                **english,
            },
        ),
    }


def eval_params(tmp_path, items: dict[str, list[str]]) -> DecontaminateParams:
    sets = [{"shipped": "en"}]
    for lang in ("zh_Hant", "th"):
        write_jsonl(tmp_path / f"{lang}.jsonl", [{"text": t} for t in dict.fromkeys(items[lang])])
        sets.append({"file": str(tmp_path / f"{lang}.jsonl"), "fields": ["text"]})
    return DecontaminateParams(eval_sets=sets)


@pytest.mark.parametrize("side", ["Debian items", "Django items"])
def test_real_clean_documents_are_left_alone(real, tmp_path, side):
    """The shipped English prompts and the zh_Hant and Thai messages of one side as eval sets; the real documents of
    the other side, which hold none of them: at most 0.1 % flagged."""
    items, clean = real[side]
    index = Index(eval_params(tmp_path, items))
    total = flagged = 0
    lines = []
    for name, docs in clean.items():
        hits = [(d, index.find(Units(d))) for d in docs]
        hits = [(d, h) for d, h in hits if h is not None]
        lines += [f"{name}: {Units(d).text(h[1], h[2])!r} in {d[:60]!r}" for d, h in hits]
        total, flagged = total + len(docs), flagged + len(hits)
        print(f"\n{name}: {len(docs)} documents, {len(hits)} flagged ({len(hits) / len(docs):.3%})")
    print(f"all: {total} documents, {flagged} flagged ({flagged / total:.4%}); index: {index.items} items")
    print("\n".join(lines[:20]))
    assert total > 9_000 and index.items > 1_000
    assert flagged / total <= 0.001, lines[:20]


UNSPACED_GAP = re.compile(rf"(?<=[{char_ranges(*UNSPACED_RANGES)}]) +(?=[{char_ranges(*UNSPACED_RANGES)}])")
FULL_WIDTH = {cp: cp + 0xFEE0 for cp in range(0x21, 0x7F)}
PUNCTUATION = [",", ".", ";", "!", "?", "、", "，", "。", "：", "…", " - ", "«", "»"]


def separators(text: str) -> list[int]:
    """Positions where a mark can go without joining or splitting a word: at whitespace, or between two
    characters of an unspaced script."""
    table = unit_table()
    cls = [table[min(ord(c), len(table) - 1)] for c in text]
    return [i for i in range(1, len(text)) if text[i].isspace() or (cls[i - 1] > 1 and cls[i] > 1)]


def change_a_word(rng: random.Random, text: str) -> str:
    """The item (normalised) with a word in its middle third replaced: one word unit, 1-2 CJK characters or 4 Thai
    ones (about a word)."""
    units = Units(text)
    at = rng.randrange(len(units) // 3, max(2 * len(units) // 3 - 4, len(units) // 3 + 1))
    cls = int(units.classes[at])
    width = {1: 1, 2: rng.choice((1, 2)), 3: 4}[cls]
    replacement = {1: "zebra", 2: "鑫" * width, 3: "ก" * width}[cls]
    if units.text(at, width) == replacement:
        replacement = {1: "lion", 2: "淼" * width, 3: "ข" * width}[cls]
    return units.norm[: units.starts[at]] + f" {replacement} " + units.norm[units.ends[at + width - 1] :]


def survives_a_changed_word(index: Index, text: str) -> bool:
    """Whether an n-gram of the item is left wherever `change_a_word` changes it."""
    units = Units(text)
    spans = [(k, k + size) for size, first in index.runs.starts(units).items() for k in first.tolist()]
    middle = range(len(units) // 3, max(2 * len(units) // 3 - 4, len(units) // 3 + 1))
    width = {1: 1, 2: 2, 3: 4}
    return bool(spans) and all(
        any(end <= at or start >= at + width[int(units.classes[at])] for start, end in spans) for at in middle
    )


EDITS = ("verbatim", "case", "punctuation", "spacing", "full width", "changed word")


def edit(rng: random.Random, text: str, how: str) -> str:
    if how == "case":
        return text.upper() if rng.random() < 0.5 else text.swapcase()
    if how == "punctuation":
        text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text)
        spots = sorted(rng.sample(separators(text), min(3, len(separators(text)))), reverse=True)
        for at in spots:
            text = text[:at] + rng.choice(PUNCTUATION) + text[at:]
        return text
    if how == "spacing":
        if not UNSPACED.search(text):
            return "".join(rng.choice(["  ", "\n", "\t ", " "]) if c == " " else c for c in text)
        if rng.random() < 0.5:  # the spaces between two characters of an unspaced script dropped
            text = UNSPACED_GAP.sub("", text)
        for at in sorted(rng.sample(separators(text), min(5, len(separators(text)))), reverse=True):
            text = text[:at] + " " + text[at:]
        return text
    if how == "full width":
        return text.translate(FULL_WIDTH)
    if how == "changed word":
        return change_a_word(rng, text)
    return text


PLANTS = 420


@pytest.mark.parametrize(
    ("language", "docs_from"),
    [("en", "stdlib docstrings"), ("zh_Hant", "django + sphinx zh_Hant"), ("th", "django th"), ("en", "django th")],
    ids=["en", "zh_Hant", "th", "en-in-th"],
)
def test_recall_on_eval_items_planted_in_real_text(real, tmp_path, language, docs_from):
    """Eval items put into real documents verbatim, upper- or swap-cased, with their punctuation changed, their
    spacing changed, in full-width forms, or with a word changed: found ≥ 99 %. A changed word is survivable where an
    unbroken n-gram is left (an item 2n + 1 units long keeps one wherever the change is): planted so in the items that
    keep one wherever the change falls; its recall on every item with an n-gram is printed."""
    items, clean = real["Debian items"]
    items = {**items, "en": shipped_en()}
    index = Index(eval_params(tmp_path, items))
    rng = random.Random(f"plant-{language}-{docs_from}")
    docs = [d for d in clean[docs_from] if index.find(Units(d)) is None]
    assert len(docs) > 300
    whole = [index.matched_whole(t) for t in items[language]]
    matchable = [t for t, w in zip(items[language], whole) if w is not None]
    with_ngram = [t for t, w in zip(items[language], whole) if w is False]
    long_enough = [t for t in with_ngram if survives_a_changed_word(index, t)]
    assert len(matchable) >= 200 and len(long_enough) >= 20, (len(matchable), len(long_enough))
    missed: dict[str, list[str]] = {how: [] for how in EDITS}
    planted = dict.fromkeys(EDITS, 0)
    for i in range(PLANTS):
        how = EDITS[i % len(EDITS)]
        text = rng.choice(long_enough if how == "changed word" else matchable)
        changed = edit(rng, text, how)
        doc = rng.choice(docs)
        at = rng.choice([i for i, c in enumerate(doc) if c in " \n"] or [len(doc)])
        planted[how] += 1
        if index.find(Units(doc[:at] + " " + changed + " " + doc[at:])) is None:
            missed[how].append(changed[:100])
    recall = {how: 1 - len(missed[how]) / planted[how] for how in EDITS}
    overall = 1 - sum(map(len, missed.values())) / PLANTS
    survived = sum(index.find(Units(change_a_word(rng, t))) is not None for t in with_ngram)
    print(f"\n{language} in {docs_from}: recall {overall:.3f} over {PLANTS} plants; per edit {recall}")
    print(
        f"a changed word, every item with an n-gram: {survived}/{len(with_ngram)} = {survived / len(with_ngram):.3f}"
    )
    assert overall >= 0.99 and all(r >= 0.98 for r in recall.values()), {h: m[:3] for h, m in missed.items() if m}


# ------------------------------------------------------------------------------------------------ the step
def test_flag_keeps_the_document_and_says_where(tmp_path):
    prompt = shipped_en()[1]
    docs = [f"Forum post.\n{prompt}\nThanks!", "Nothing to see in this one, just an ordinary sentence or two."]
    out, stats = run(DecontaminateParams(eval_sets=[{"shipped": "en"}], action="flag"), docs)
    assert len(out) == 2 and stats["count_contaminated"] == stats["count_in_scorecard-en"] == 1
    found = out[0].metadata["contaminated"]
    assert (
        found["set"] == "scorecard-en" and len(unit_texts(found["ngram"])) == 13 and found["ngram"] in prompt.lower()
    )
    assert "contaminated" not in out[1].metadata


def test_the_step_pickles_without_its_index():
    step = Decontaminate(DecontaminateParams(eval_sets=[{"shipped": "en"}]))
    assert step.index.items == 306
    clone = pickle.loads(pickle.dumps(step))
    assert clone._index is None and clone.index.items == 306


def test_a_datasets_folder_and_a_kd_build_are_eval_sets(tmp_path):
    """A `save_to_disk` folder (what a corpusforge build is) read through `datasets`; its Arrow files are what the
    plan fingerprints. Chat messages give their user turns: a KD dataset's prompts."""
    import datasets

    prompt, answer = shipped_en()[7], "An answer the model wrote, which is nobody's eval item at all, in many words."
    rows = [{"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}]
    datasets.Dataset.from_list(rows).save_to_disk(tmp_path / "kd")
    params = DecontaminateParams(
        eval_sets=[{"hf": {"path": str(tmp_path / "kd"), "split": "train"}, "fields": ["messages"]}]
    )
    assert [p.rsplit("/", 1)[-1] for p in params.input_files()] == ["data-00000-of-00001.arrow"]
    out, stats = run(params, [f"Q: {prompt}", f"A: {answer}"])
    assert [d.text for d in out] == [f"A: {answer}"] and stats["count_in_kd"] == 1
    with pytest.raises(ValueError, match=r"fields: no column 'question' in dataset"):
        DecontaminateParams(
            eval_sets=[{"hf": {"path": str(tmp_path / "kd"), "split": "train"}, "fields": ["question"]}]
        )


def test_a_build_drops_with_its_reason_and_refuses_a_changed_eval_set(real, tmp_path):
    docs = real["Debian items"][1]["stdlib docstrings"][:40]
    prompts = shipped_en()
    planted = [f"{docs[i]}\n\n{prompts[50 + i].upper()}" for i in range(3)]
    write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in planted + docs[3:]])
    write_jsonl(tmp_path / "evals.jsonl", [{"question": p, "answer": "-"} for p in prompts[50:53]])
    step = {
        "decontaminate": {"eval_sets": [{"file": str(tmp_path / "evals.jsonl"), "fields": ["question", "answer"]}]}
    }
    recipe = make_recipe(tmp_path, str(tmp_path / "in.jsonl"), steps=[step])
    result = cf.run(cf.Recipe.from_dict(recipe))
    row = {s["step"]: s for s in result.manifest["steps"]}["decontaminate"]
    assert row["in"] == 40 and row["out"] == 37
    assert row["dropped"] == {"contaminated": 3} and row["counts"] == {"contaminated": 3, "in_evals": 3}
    entry = [e for e in result.manifest["inputs"] if e.get("read_by") == "step"]
    assert [(e["source"], e["path"]) for e in entry] == [("steps[0].decontaminate", str(tmp_path / "evals.jsonl"))]
    logs = "".join(p.read_text() for p in (tmp_path / "out").rglob("task_*.log"))
    assert "decontaminate: dropped src/in.jsonl/1: {'set': 'evals', 'ngram':" in logs
    write_jsonl(tmp_path / "evals.jsonl", [{"question": p, "answer": "-"} for p in prompts[50:54]])
    with pytest.raises(cf.OutputError, match=r"evals.jsonl changed"):
        cf.run(cf.Recipe.from_dict(recipe))
    flagged = make_recipe(
        tmp_path, str(tmp_path / "in.jsonl"), steps=[{"decontaminate": {**step["decontaminate"], "action": "flag"}}]
    )
    flagged["output"]["path"] = str(tmp_path / "flagged")
    rows = cf.run(cf.Recipe.from_dict(flagged)).load()
    marks = [json.loads(m)["contaminated"]["set"] for m in rows["metadata"] if m and "contaminated" in m]
    assert len(rows) == 40 and marks == ["evals"] * 3


@pytest.fixture
def fake_hub(monkeypatch):
    from tests.support.fake_hub import FakeHub

    hub = FakeHub()
    hub.datasets["org/evals"] = "c" * 40
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    yield hub
    hub.close()


def test_a_hub_eval_set_is_pinned_to_its_commit_at_plan_time(fake_hub, tmp_path):
    from corpusforge.pinning import pin_step_revisions
    from corpusforge.runner.plan import compile_plan

    raw = recipe_with(
        tmp_path, [{"shipped": "en"}, {"hf": {"path": "org/evals", "revision": "main"}, "fields": ["q"]}]
    )
    plan = compile_plan(cf.Recipe.from_dict(raw))
    pinned = plan.record["recipe"]["steps"][0]["decontaminate"]["eval_sets"][1]["hf"]
    assert pinned["revision"] == "c" * 40
    asked = lambda: [c["path"] for c in fake_hub.calls if c["path"].startswith("/api/datasets/")]  # noqa: E731
    assert asked() == ["/api/datasets/org/evals/revision/main"]  # (huggingface_hub also asks for /api/agent-harnesses)
    params = plan.recipe.steps[0].params
    assert pin_step_revisions("decontaminate", params) is params  # a sha is used as it is, without asking
    assert len(asked()) == 1
    raw["steps"][0]["decontaminate"]["eval_sets"][1]["hf"]["path"] = "org/missing"
    with pytest.raises(cf.SourceError, match=r"step 'decontaminate': eval_sets\[1\]: no Hub dataset 'org/missing'"):
        compile_plan(cf.Recipe.from_dict(raw))


def test_a_kd_recipe_decontaminates_its_prompts_before_asking(tmp_path):
    """The steps of a KD recipe run on its prompts before generation: with `decontaminate` there, a prompt of the
    scorecard's set is never sent to the model, and the funnel says so."""
    from corpusforge.data import SHIPPED_PROMPT_FIELD, shipped_prompts
    from tests.support.fake_openai import FakeChatServer

    shipped = [json.loads(line)[SHIPPED_PROMPT_FIELD] for line in shipped_prompts("en").read_text().splitlines()]
    leaked = [p for p in shipped if len(p.split()) >= 15][:2]
    prompts = ["Tell me about the weather in Bangkok today", "How do I boil an egg so the yolk stays soft?", *leaked]
    write_jsonl(tmp_path / "prompts.jsonl", [{"text": p} for p in prompts])
    with FakeChatServer(lambda messages: (f"An answer to: {messages[-1]['content']}", "stop")) as server:
        recipe = {
            "name": "kd-decont",
            "sources": [{"name": "prompts", "glob": str(tmp_path / "prompts.jsonl")}],
            "steps": [{"decontaminate": {"eval_sets": [{"shipped": "en"}]}}],
            "generate": {
                "model": "served-model",
                "backend": {"type": "openai", "base_url": server.url},
                "sampling": {"temperature": 0.0, "top_p": 1.0, "max_tokens": 32, "n": 1, "seed": 0},
                "tasks": ["recovery"],
                "checks": {"language": False},
                "retry_backoff": 0.0,
            },
            "output": {"path": str(tmp_path / "out")},
        }
        result = cf.run(cf.Recipe.from_dict(recipe))
        asked = {r["body"]["messages"][-1]["content"] for r in server.requests}
    assert asked == set(prompts[:2])
    steps = {s["step"]: s for s in result.manifest["steps"]}
    assert steps["decontaminate"]["dropped"] == {"contaminated": 2}
