"""Dedup on real text: injected exact and near-duplicates found across sources, no distinct document merged."""

from __future__ import annotations

import random

import pytest

import corpusforge as cf
from conftest import make_recipe, write_jsonl
from corpusforge.steps.dedup import ScriptAwareUnits


def shingles(text: str) -> set:
    from datatrove.utils.text import TextNormConfig, ngrams, simplify_text

    units = ScriptAwareUnits().word_tokenize(simplify_text(text, TextNormConfig(norm_unicode_diacritics=False)))
    return set(ngrams(units, 5))


def base_documents(real_texts) -> list[dict]:
    """Real documents that are truly distinct: exact Jaccard of their 5-gram shingles below 0.3 with every other.

    (The English chatterbot corpus repeats some answers, e.g. the same hash-table code; those real near-duplicates
    are left out so that the test set holds only the duplicates we inject.)"""
    docs, kept = [], []
    for lang in ("zh_Hant", "zh_Hans", "ja", "en"):
        lines = real_texts[lang]
        for i in range(0, len(lines) - 30, 30):
            text = "\n".join(lines[i : i + 30])
            s = shingles(text)
            if len(text) >= 200 and all(len(s & k) / len(s | k) < 0.3 for k in kept):
                kept.append(s)
                docs.append({"id": f"{lang}-{i}", "text": text})
    return docs


def edit(text: str, rng: random.Random, n: int = 3) -> str:
    """Replace ``n`` characters: a near-duplicate of a 200-2,000 character document."""
    chars = list(text)
    for _ in range(n):
        pos = rng.randrange(len(chars))
        chars[pos] = "某" if ord(chars[pos]) > 0x2E80 else "x"
    return "".join(chars)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, real_texts):
    rng = random.Random(0)
    base = base_documents(real_texts)
    picks = rng.sample(base, 60)
    exact = [
        {"id": f"copy-{d['id']}", "text": "  " + d["text"].upper().replace("\n", " \n ") + "。"} for d in picks[:30]
    ]
    near = [{"id": f"near-{d['id']}", "text": edit(d["text"], rng)} for d in picks[30:]]
    folder = tmp_path_factory.mktemp("dedup")
    write_jsonl(folder / "web" / "base.jsonl", base)
    write_jsonl(folder / "mirror" / "copies.jsonl", exact + near)
    return folder, base, exact, near


def build(tmp_path, folder, tasks=1, workers=1, **dedup):
    recipe = make_recipe(
        tmp_path,
        str(folder / "web" / "*.jsonl"),
        source={"name": "web", "id_field": "id"},
        steps=[{"normalize": {}}, {"dedup": dedup}, {"length": {"min_chars": 1}}],
        executor={"tasks": tasks, "workers": min(tasks, 2)},
    )
    recipe["sources"].append({"name": "mirror", "glob": str(folder / "mirror" / "*.jsonl"), "id_field": "id"})
    return cf.run(cf.Recipe.from_dict(recipe))


def test_finds_injected_duplicates_across_sources_without_false_merges(tmp_path, corpus):
    folder, base, exact, near = corpus
    assert len(base) >= 150 and min(len(d["text"]) for d in base) >= 200
    result = build(tmp_path, folder)
    kept = set(result.load()["id"])
    assert {d["id"] for d in base} <= kept, "a distinct real document was merged away"
    injected = [d["id"] for d in exact + near]
    recall = sum(i not in kept for i in injected) / len(injected)
    assert recall >= 0.95
    row = next(s for s in result.manifest["steps"] if s["step"] == "dedup")
    assert row["dropped"] == {"duplicate": row["in"] - row["out"]} and row["in"] - row["out"] >= 57
    assert [s["step"] for s in result.manifest["steps"]] == [
        "read:web",
        "read:mirror",
        "normalize",
        "dedup",
        "length",
        "write",
    ]


def test_exact_only_and_near_only(tmp_path, corpus):
    folder, base, exact, near = corpus
    exact_only = set(build(tmp_path / "e", folder, near=False).load()["id"])
    assert not any(d["id"] in exact_only for d in exact)  # case, spacing and punctuation differences: still exact
    assert all(d["id"] in exact_only for d in near)  # edited text is not an exact duplicate
    near_only = set(build(tmp_path / "n", folder, exact=False).load()["id"])
    assert sum(d["id"] not in near_only for d in exact + near) >= 57  # MinHash also catches the exact copies


def test_deterministic_with_several_tasks_and_workers(tmp_path, corpus):
    folder, base, exact, near = corpus
    a = build(tmp_path / "a", folder, tasks=3)
    b = build(tmp_path / "b", folder, tasks=3, workers=2)
    assert a.load().to_list() == b.load().to_list()
    # with several tasks a copy may be its cluster's first document; the clusters, hence the count, are the same
    assert len(a.load()) == len(build(tmp_path / "c", folder).load())


def test_units_are_characters_for_cjk_and_thai_words_otherwise():
    units = ScriptAwareUnits()
    assert units.word_tokenize("台灣 夜市") == ["台", "灣", "夜", "市"]
    assert units.word_tokenize("ภาษาไทย") == list("ภาษาไทย")
    assert units.word_tokenize("plain english words") == ["plain", "english", "words"]


def test_one_dedup_step_only(tmp_path):
    with pytest.raises(cf.RecipeError, match=r"steps\[1\]: only one `dedup` step"):
        cf.Recipe.from_dict(make_recipe(tmp_path, "x", steps=[{"dedup": {}}, {"dedup": {}}]))
