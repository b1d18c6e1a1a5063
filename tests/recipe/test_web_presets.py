"""The web presets run end to end on the bundled web sample, and each kind of planted junk meets the step that is
for it: mojibake repaired, gambling / adult / casino-host pages dropped by `content`, identifiers replaced by `pii`,
copies removed by `dedup` and counted back by `rehydrate`, the page with a scorecard prompt in it dropped by
`decontaminate`."""

from __future__ import annotations

import json

import pytest

import corpusforge as cf
from corpusforge.data import builtin_data_dir
from tests.support import REPO


def planted(kind: str) -> dict[str, str]:
    rows = (json.loads(line) for line in (builtin_data_dir() / "web-sample.jsonl").read_text().splitlines())
    return {r["id"]: r["text"] for r in rows if r["id"].startswith(f"planted/{kind}/")}


@pytest.fixture(scope="module")
def zh_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("web") / "zh"
    return cf.run(cf.Recipe.from_yaml(REPO / "recipes" / "web-zh-tw.yaml", [f"output.path={out}"]))


def test_each_kind_of_junk_meets_its_step(zh_build):
    steps = {s["step"]: s for s in zh_build.manifest["steps"]}
    assert steps["normalize"]["counts"]["fixed_encoding"] == len(planted("mojibake"))
    assert steps["content"]["dropped"] == {"content_gambling": 2, "content_adult": 1, "content_url_gambling": 1}
    assert steps["pii"]["counts"] == {"docs_with_pii": 2, "email": 2, "phone": 2, "tw_id": 2}
    assert steps["dedup"]["dropped"] == {"duplicate": 2}  # the three copies of one page
    assert steps["decontaminate"]["dropped"] == {"contaminated": len(planted("contaminated"))}
    rows = {r["id"]: r["text"] for r in zh_build.load()}
    kept = {i.split("#")[0] for i in rows}
    assert not kept & {*planted("gambling"), *planted("adult"), *planted("url"), *planted("contaminated")}
    # repaired, not dropped: the mojibake pages read as Chinese again
    assert {i for i in planted("mojibake") if i in kept} and all("æ" not in t for t in rows.values())
    # placeholders in place of the identifiers
    chinese = [i for i, text in planted("pii").items() if "身分證" in text]
    assert chinese and all("<PHONE>" in rows[i] and "<ID>" in rows[i] and "<EMAIL>" in rows[i] for i in chinese)
    # rehydrate: the page that had two copies is written 3× (its cluster of 3), as FineWeb-2's table says
    assert sum(1 for i in rows if i.split("#")[0] == "planted/duplicate/0") == 3


def test_the_thai_preset_runs_on_the_same_sample(tmp_path):
    result = cf.run(cf.Recipe.from_yaml(REPO / "recipes" / "web-th.yaml", [f"output.path={tmp_path / 'th'}"]))
    steps = {s["step"]: s for s in result.manifest["steps"]}
    assert steps["content"]["dropped"] == {"content_gambling": 1}
    assert steps["pii"]["counts"]["th_id"] == 1 and result.manifest["languages"]["output"] == {
        "th": result.manifest["rows"]
    }
