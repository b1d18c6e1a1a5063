"""Regional vocabulary of Chinese (`zh_region`) on real text: Taiwan translations score Taiwan, mainland text
converted to Traditional characters scores mainland, and `normalize: {opencc: s2twp}` converts the vocabulary."""

from __future__ import annotations

from collections import Counter

import pytest

import corpusforge as cf
from corpusforge.lang.region import region_evidence, region_label
from corpusforge.steps.region import RegionParams, ZhRegion
from tests.support import corpus_texts, make_recipe, package_messages, write_jsonl


def documents(lines: list[str], n: int = 10) -> list[str]:
    """Consecutive messages of one catalog, ``n`` to a document."""
    return ["\n".join(lines[i : i + n]) for i in range(0, len(lines) - n, n)]


def catalog(package: str, locale: str) -> list[str]:
    return [value for _, value in package_messages(package, locale)]


@pytest.fixture(scope="module")
def opencc():
    import opencc

    return {name: opencc.OpenCC(f"{name}.json") for name in ("s2t", "s2twp")}


def labels(docs: list[str]) -> Counter:
    return Counter(region_label({k: len(v) for k, v in region_evidence(d).items()}, 2.0) for d in docs)


def test_taiwan_translations_score_taiwan():
    docs = documents(catalog("django", "zh_Hant")) + documents(catalog("sphinx", "zh_TW"))
    found = labels(docs)
    assert len(docs) >= 150
    assert found["TW"] >= 0.6 * len(docs) and found["CN"] <= 0.06 * len(docs), found


def test_mainland_text_in_traditional_characters_scores_mainland(opencc):
    # the Simplified catalogs converted character by character (s2t): Traditional script, mainland words
    docs = [
        opencc["s2t"].convert(d)
        for d in documents(catalog("django", "zh_Hans")) + documents(catalog("sphinx", "zh_CN"))
    ]
    found = labels(docs)
    assert found["CN"] >= 0.75 * len(docs) and found["TW"] <= 0.03 * len(docs), found
    # and the sample's Traditional chatterbot text is such a conversion: where it has regional words, they are mainland
    sample = labels(documents(corpus_texts("traditionalchinese")))
    assert sample["CN"] >= 5 * sample["TW"] and sample["CN"] >= 15, sample
    evidence = region_evidence("\n".join(corpus_texts("traditionalchinese")[:40]))
    assert any("數據" in p for p in evidence["CN"]) and any("智能" in p for p in evidence["CN"])


def test_s2twp_converts_the_vocabulary_not_only_the_characters(opencc):
    docs = documents(catalog("django", "zh_Hans")) + documents(catalog("sphinx", "zh_CN"))
    characters = labels([opencc["s2t"].convert(d) for d in docs])
    vocabulary = labels([opencc["s2twp"].convert(d) for d in docs])
    assert vocabulary["CN"] <= 0.1 * len(docs) < characters["CN"] and vocabulary["TW"] >= 0.5 * len(docs), (
        characters,
        vocabulary,
    )


def test_a_taiwan_recipe_drops_mainland_usage_and_says_why(tmp_path, opencc):
    taiwan = documents(catalog("sphinx", "zh_TW"))[:30]
    mainland = [opencc["s2t"].convert(d) for d in documents(catalog("sphinx", "zh_CN"))[:30]]
    rows = [{"id": f"tw{i}", "text": t} for i, t in enumerate(taiwan)]
    rows += [{"id": f"cn{i}", "text": t} for i, t in enumerate(mainland)] + [{"id": "en", "text": "no Chinese here"}]
    write_jsonl(tmp_path / "in.jsonl", rows)
    raw = make_recipe(
        tmp_path,
        str(tmp_path / "in.jsonl"),
        source={"id_field": "id"},
        steps=[{"zh_region": {"keep": ["TW", "mixed", "none"]}}],
    )
    result = cf.run(cf.Recipe.from_dict(raw))
    ds = result.load()
    kept = set(ds["id"])
    assert "en" in kept  # no Han character: not this step's business
    assert sum(i.startswith("tw") for i in kept) >= 28 and sum(i.startswith("cn") for i in kept) <= 6
    step = next(s for s in result.manifest["steps"] if s["step"] == "zh_region")
    assert set(step["dropped"]) == {"region_cn"}
    import json

    meta = json.loads(next(m for i, m in zip(ds["id"], ds["metadata"]) if i == "tw0"))
    assert meta["zh_region"] == "TW" and meta["zh_region_evidence"]["TW"] > 0
    assert meta["zh_region_evidence"]["examples"]["TW"]


def test_margin_decides_mixed():
    assert region_label({"TW": 4, "HK": 0, "CN": 2}, 2.0) == "TW"
    assert region_label({"TW": 3, "HK": 0, "CN": 2}, 2.0) == "mixed"
    assert region_label({"TW": 0, "HK": 0, "CN": 0}, 2.0) == "none"
    assert region_label({"TW": 1, "HK": 0, "CN": 1}, 1.0) == "mixed"
    with pytest.raises(ValueError):
        RegionParams(keep=["tw"])
    assert ZhRegion(RegionParams()).filter(type("D", (), {"text": "plain", "metadata": {}})()) is True
