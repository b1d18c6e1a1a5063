"""Dedup on real text: injected exact and near-duplicates found across sources, no distinct document merged."""

from __future__ import annotations

import random

import pytest

import corpusforge as cf
from corpusforge.steps.dedup import shingles as char_shingles
from tests.support import make_recipe, stdlib_paragraphs, write_jsonl


def shingles(text: str) -> set:
    from datatrove.utils.text import TextNormConfig, simplify_text

    return set(char_shingles(simplify_text(text, TextNormConfig(norm_unicode_diacritics=False)), 5, 7))


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
    # the survivors follow the recipe's order, not the task split: the same documents are kept
    assert sorted(a.load()["id"]) == sorted(build(tmp_path / "c", folder).load()["id"])


def short_documents(real_texts) -> list[dict]:
    """Real documents of 300–450 characters, truly distinct (shingle Jaccard < 0.3 with every other): English
    paragraphs of the standard library's docstrings (word-spaced), chatterbot lines joined (Chinese, Japanese, Thai)."""
    docs = [{"id": f"en-{i}", "text": t} for i, t in enumerate(stdlib_paragraphs(300, 450))]
    for lang in ("zh_Hant", "zh_Hans", "ja", "th"):
        text, n = "", 0
        for line in real_texts[lang]:
            text = f"{text}\n{line}" if text else line
            if len(text) >= 300:
                if len(text) <= 450:
                    docs.append({"id": f"{lang}-{n}", "text": text})
                    n += 1
                text = ""
    kept, out = [], []
    for doc in docs:
        s = shingles(doc["text"])
        if all(len(s & k) / len(s | k) < 0.3 for k in kept):
            kept.append(s)
            out.append(doc)
    return out


@pytest.fixture(scope="module")
def short_corpus(tmp_path_factory, real_texts):
    """Originals in four files of source `web`; 100 copies in two files of source `mirror` (half exact up to spacing
    and case, half with 3 characters edited), so that in most tasks a copy is read before its original."""
    rng = random.Random(1)
    base = short_documents(real_texts)
    picks = rng.sample(base, 100)
    copies = [{"id": f"copy-{d['id']}", "text": "  " + d["text"].upper().replace(" ", "  ")} for d in picks[:50]] + [
        {"id": f"near-{d['id']}", "text": edit(d["text"], rng)} for d in picks[50:]
    ]
    rng.shuffle(copies)
    folder = tmp_path_factory.mktemp("short")
    for i in range(4):
        write_jsonl(folder / "web" / f"part-{i}.jsonl", base[i::4])
    for i in range(2):
        write_jsonl(folder / "mirror" / f"part-{i}.jsonl", copies[i::2])
    return folder, base, {d["id"].split("-", 1)[1]: d["id"] for d in copies}


def build_sources(tmp_path, folder, order, tasks, workers):
    recipe = make_recipe(
        tmp_path, "unused", steps=[{"normalize": {}}, {"dedup": {}}], executor={"tasks": tasks, "workers": workers}
    )
    recipe["sources"] = [{"name": name, "glob": str(folder / name / "*.jsonl"), "id_field": "id"} for name in order]
    return set(cf.run(cf.Recipe.from_dict(recipe)).load()["id"])


@pytest.mark.parametrize("tasks,workers", [(1, 1), (3, 2), (4, 2)])
def test_short_near_copies_found_and_the_first_sources_copy_survives(tmp_path, short_corpus, tasks, workers):
    folder, base, copy_of = short_corpus
    assert len(base) >= 250 and min(len(d["text"]) for d in base) >= 300
    assert sum(d["id"].startswith("en-") for d in base) >= 80  # word-spaced documents: the hard case for shingles
    kept = build_sources(tmp_path, folder, ["web", "mirror"], tasks, workers)
    assert {d["id"] for d in base} <= kept, "an original (first source) was dropped or a distinct document merged"
    found = sum(copy not in kept for copy in copy_of.values())
    assert found / len(copy_of) >= 0.95, f"pair recall {found}/{len(copy_of)}"


def test_the_survivor_follows_the_recipe_source_order(tmp_path, short_corpus):
    folder, base, copy_of = short_corpus
    kept = build_sources(tmp_path, folder, ["mirror", "web"], 3, 2)
    # now the mirror is first: in every pair found, its copy survives and the original goes
    found = [original for original, copy in copy_of.items() if original not in kept]
    assert len(found) >= 95 and all(copy_of[original] in kept for original in found)
    assert set(copy_of.values()) <= kept


def test_shingles_are_character_ngrams_without_spaces_only_for_unspaced_scripts():
    assert char_shingles("台灣 夜市好", 3, 7) == ["台灣夜", "灣夜市", "夜市好"]
    assert char_shingles("ภาษาไทย", 5, 7) == ["ภาษาไ", "าษาไท", "ษาไทย"]
    assert char_shingles("plain words", 5, 7) == ["plain w", "lain wo", "ain wor", "in word", "n words"]
    assert char_shingles("short", 5, 7) == ["short"]


def test_one_dedup_step_only(tmp_path):
    with pytest.raises(cf.RecipeError, match=r"steps\[1\]: only one `dedup` step"):
        cf.Recipe.from_dict(make_recipe(tmp_path, "x", steps=[{"dedup": {}}, {"dedup": {}}]))


# -- cluster sizes and FineWeb-2's rehydration --------------------------------------------------------------------


def fineweb2_bisect(size: int) -> int:
    """FineWeb-2's own re-hydration block (github.com/huggingface/fineweb-2, README), as published."""
    import bisect

    weights = {1: 1, 2: 2, 3: 3, 5: 5, 100: 8, 1000: 1}
    limits = sorted(weights)
    return weights[limits[bisect.bisect_right(limits, size) - 1]]


def test_the_fineweb2_table_is_fineweb2s_rule():
    from corpusforge.steps.dedup import DedupParams, times_written

    table = DedupParams(rehydrate="fineweb2").rehydration()
    assert [times_written(table, n) for n in range(1, 3001)] == [fineweb2_bisect(n) for n in range(1, 3001)]
    assert times_written(table, 3) == 3  # a cluster of three copies is written three times


def test_a_custom_table_and_its_errors(tmp_path):
    from corpusforge.steps.dedup import DedupParams, times_written

    table = DedupParams.model_validate({"rehydrate": {2: 2, "3-9": 4, "50+": 6}}).rehydration()  # YAML: `2: 2`
    assert [times_written(table, n) for n in (1, 2, 3, 9, 10, 49, 50, 10**6)] == [1, 2, 4, 4, 1, 1, 6, 6]
    for bad, message in [
        ({"2-": 2}, r"steps\[0\]\.dedup\.rehydrate.*'2-' is not a cluster size range"),
        ({"2-9": 2, "5-20": 3}, r"the ranges starting at 2 and 5 overlap"),
        ({"3": 0}, r"'3': the number of times must be an integer ≥ 1, got 0"),
        ({"9-3": 2}, r"'9-3' is an empty range"),
    ]:
        with pytest.raises(cf.RecipeError, match=message):
            cf.Recipe.from_dict(make_recipe(tmp_path, "x", steps=[{"dedup": {"rehydrate": bad}}]))
    with pytest.raises(cf.RecipeError, match=r"steps\[0\]\.dedup\.rehydrate: .*'fineweb' — did you mean 'fineweb2'"):
        cf.Recipe.from_dict(make_recipe(tmp_path, "x", steps=[{"dedup": {"rehydrate": "fineweb"}}]))


@pytest.fixture(scope="module")
def clusters(tmp_path_factory, real_texts):
    """Real documents, all distinct, in three files; one has 2 exact copies (a cluster of 3), one 1 (of 2) and one 5
    (of 6), in a fourth file read last (each cluster spans tasks; the originals, read first, survive)."""
    base = base_documents(real_texts)[:90]
    three, two, six = base[0], base[40], base[80]
    copies = [
        {"id": f"{d['id']}-copy{k}", "text": d["text"]} for d, n in ((three, 2), (two, 1), (six, 5)) for k in range(n)
    ]
    random.Random(2).shuffle(copies)
    folder = tmp_path_factory.mktemp("clusters")
    for i in range(3):
        write_jsonl(folder / f"part-{i}.jsonl", base[i * 30 : i * 30 + 30])
    write_jsonl(folder / "part-3.jsonl", copies)
    return folder, base, {"three": three["id"], "two": two["id"], "six": six["id"]}


def build_clusters(tmp_path, folder, rehydrate=None, tasks=3, workers=1):
    dedup = {"num_buckets": 4} | ({"rehydrate": rehydrate} if rehydrate else {})
    recipe = make_recipe(
        tmp_path,
        str(folder / "*.jsonl"),
        steps=[{"normalize": {}}, {"dedup": dedup}, {"length": {"min_chars": 1}}],
        source={"id_field": "id"},
        executor={"tasks": tasks, "workers": workers},
    )
    return cf.run(cf.Recipe.from_dict(recipe), report=False)


def rows_of(result) -> dict[str, dict]:
    import json

    return {r["id"]: {**r, "metadata": json.loads(r["metadata"] or "{}")} for r in result.load().to_list()}


def test_a_cluster_of_three_is_written_three_times_with_fineweb2_and_once_without(tmp_path, clusters):
    folder, base, survivor = clusters
    plain = rows_of(build_clusters(tmp_path / "plain", folder))
    assert set(plain) == {d["id"] for d in base}  # every copy found, one document kept per cluster
    sizes = {key: plain[doc_id]["metadata"]["dup_count"] for key, doc_id in survivor.items()}
    assert sizes == {"three": 3, "two": 2, "six": 6}
    assert sum(r["metadata"]["dup_count"] == 1 for r in plain.values()) == len(base) - 3

    result = build_clusters(tmp_path / "fw2", folder, rehydrate="fineweb2")
    rows = rows_of(result)
    three = survivor["three"]
    assert [i for i in rows if i.split("#")[0] == three] == [three, f"{three}#2", f"{three}#3"]
    assert {rows[i]["text"] for i in (three, f"{three}#2", f"{three}#3")} == {plain[three]["text"]}
    assert f"{survivor['two']}#2" in rows and f"{survivor['two']}#3" not in rows
    assert f"{survivor['six']}#5" in rows and f"{survivor['six']}#6" not in rows  # 5–99 copies → 5 times
    assert len(rows) == len(plain) + 2 + 1 + 4 and all(rows[i]["metadata"] == plain[i]["metadata"] for i in plain)
    steps = {s["step"]: s for s in result.manifest["steps"]}
    assert steps["rehydrate"] == {
        "step": "rehydrate",
        "in": len(plain),
        "out": len(rows),
        "dropped": {},
        "rehydrate": {"documents": 3, "copies": 7},
    }
    assert [s["step"] for s in result.manifest["steps"]][-3:] == ["length", "rehydrate", "write"]
    assert steps["write"]["out"] == result.manifest["rows"] == len(rows)
    assert "rehydrate" not in {s["step"] for s in build_clusters(tmp_path / "again", folder).manifest["steps"]}


def test_rehydrated_builds_are_byte_identical_whatever_the_workers(tmp_path, clusters):
    from tests.support import shard_hashes

    folder, _, _ = clusters
    one = build_clusters(tmp_path / "one", folder, rehydrate={"2+": 2}, workers=1)
    three = build_clusters(tmp_path / "three", folder, rehydrate={"2+": 2}, workers=3)
    assert shard_hashes(one.path) == shard_hashes(three.path) and len(shard_hashes(one.path)) == 3
    assert one.manifest["rows"] == three.manifest["rows"] == len(rows_of(one))
