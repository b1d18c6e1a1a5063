"""End to end: round trip through the shards, manifest counts, plugins, resume after a kill, every recipe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import polars as pl
import pytest

import corpusforge as cf
from corpusforge.corpus.ledger import Ledger
from corpusforge.runner.plan import compile_plan
from tests.support import REPO, assert_run_left_nothing, make_recipe, write_jsonl


def mixed_rows(real_texts, n=60):
    rows = []
    for lang in ("zh_Hant", "zh_Hans", "th", "en", "ja"):
        texts = real_texts[lang]
        rows += [
            {"id": f"{lang}-{i}", "text": "\n".join(texts[i * 3 : i * 3 + 3])} for i in range(min(n, len(texts) // 3))
        ]
    return rows


def test_round_trip_shards_manifest(tmp_path, real_texts):
    rows = mixed_rows(real_texts)
    for part in range(3):
        write_jsonl(tmp_path / "in" / f"part{part}.jsonl", rows[part::3])
    recipe = make_recipe(
        tmp_path,
        str(tmp_path / "in" / "*.jsonl"),
        steps=[{"language": {"label_only": True}}],
        source={"id_field": "id"},
        executor={"tasks": 3, "workers": 2},
    )
    result = cf.run(cf.Recipe.from_dict(recipe))
    ds = result.load()
    assert len(ds) == len(rows) == result.manifest["rows"]
    assert sorted(ds["id"]) == sorted(r["id"] for r in rows)
    assert len(set(ds["id"])) == len(ds)
    by_id = {r["id"]: r["text"] for r in rows}
    assert all(ds_row["text"] == by_id[ds_row["id"]] for ds_row in ds)
    assert ds.column_names == ["id", "text", "source", "language", "language_score", "n_tokens", "metadata"]
    assert sum(s["rows"] for s in result.manifest["shards"]) == len(ds)
    assert result.manifest["languages"]["output"]["zh_Hant"] == sum(1 for r in ds if r["language"] == "zh_Hant")
    steps = {s["step"]: s for s in result.manifest["steps"]}
    assert steps["read:src"]["out"] == steps["language"]["in"] == steps["write"]["out"] == len(rows)
    assert {"datatrove", "datasets", "pyarrow", "fasttext-predict"} <= set(result.manifest["versions"])
    assert len(result.manifest["inputs"]) == 3 and all(len(i["head_sha256"]) == 64 for i in result.manifest["inputs"])
    # the same rows through polars (shards are Arrow streams, as datasets writes them)
    assert result.scan().select(pl.len()).collect().item() == len(ds)


def test_quickstart_keeps_traditional_drops_simplified(tmp_path):
    recipe = cf.Recipe.from_yaml(REPO / "recipes" / "quickstart.yaml", [f"output.path={tmp_path / 'qs'}"])
    ds = cf.run(recipe).load()
    ids = ds["id"]
    assert sum(i.startswith("traditionalchinese/") for i in ids) >= 400
    assert not any(i.startswith(("japanese/", "english/")) for i in ids)
    assert set(ds["language"]) == {"zh_Hant", "zh", "th"}
    # from the Simplified conversations only lines written alike in both scripts (`zh`): valid Traditional as written
    import opencc

    s2t = opencc.OpenCC("s2t.json")
    simplified = [(t, lang) for i, t, lang in zip(ids, ds["text"], ds["language"]) if i.startswith("chinese/")]
    assert len(simplified) < 20 and all(lang == "zh" and s2t.convert(t) == t for t, lang in simplified)
    assert all(
        t.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<|eot_id|>") for t in ds["text"]
    )


def test_custom_filters_from_python_and_plugins(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"text": "plain"}, {"text": "has ```code```"}, {"text": "short"}])

    @cf.filter
    def no_code_blocks(doc) -> bool | tuple[bool, str]:
        return "```" not in doc.text or (False, "code_block")

    plugin = tmp_path / "my_filters.py"
    plugin.write_text(
        textwrap.dedent("""
        import corpusforge as cf

        @cf.filter(name="not_word")
        def reject_word(doc, word="short"):
            return doc.text != word or (False, "rejected_word")
    """)
    )
    recipe = make_recipe(
        tmp_path,
        str(tmp_path / "in.jsonl"),
        plugins=[str(plugin)],
        steps=[{"no_code_blocks": {}}, {"not_word": {"word": "short"}}],
    )
    result = cf.run(cf.Recipe.from_dict(recipe))
    assert result.load()["text"] == ["plain"]
    steps = {s["step"]: s for s in result.manifest["steps"]}
    assert steps["no_code_blocks"]["dropped"] == {"code_block": 1}
    assert steps["not_word"]["dropped"] == {"rejected_word": 1}
    with pytest.raises(cf.RecipeError, match=r"steps\[1\]\.not_word: unknown parameter 'wrod'"):
        cf.Recipe.from_dict(make_recipe(tmp_path, "x", steps=[{"no_code_blocks": {}}, {"not_word": {"wrod": 1}}]))


def test_module_function_steps(tmp_path, monkeypatch):
    (tmp_path / "cf_plugin_mod.py").write_text(
        "def keep_long(doc, n=3):\n    return len(doc.text) > n or (False, 'short')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    write_jsonl(tmp_path / "in.jsonl", [{"text": "ab"}, {"text": "abcdef"}])
    recipe = make_recipe(tmp_path, str(tmp_path / "in.jsonl"), steps=[{"cf_plugin_mod:keep_long": {"n": 3}}])
    assert cf.run(cf.Recipe.from_dict(recipe)).load()["text"] == ["abcdef"]


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_loads_and_compiles(path, tmp_path):
    recipe = cf.Recipe.from_yaml(path)
    if recipe.generate is not None and recipe.generate.model.startswith("/"):  # a model folder this machine lacks
        (tmp_path / "model").mkdir()
        (tmp_path / "model" / "config.json").write_text("{}")
        recipe = cf.Recipe.from_yaml(path, [f"generate.model={tmp_path / 'model'}"])
    stages = compile_plan(recipe, tmp_path / "out").stages
    assert stages[-1].name == "build" and stages[-1].tasks == recipe.executor.tasks
    labels = [label for stage in stages for label in stage.labels if label is not None]
    assert labels[: len(recipe.sources)] == [f"read:{s.name}" for s in recipe.sources]
    ending = ["generate", "checks", "write"] if recipe.generate else ["write"]
    assert labels[len(recipe.sources) :] == [call.name for call in recipe.steps] + ending
    assert all(len(stage.pipeline) == len(stage.labels) for stage in stages)


def _cli(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "corpusforge.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def test_cli_validate_schema_run_inspect(tmp_path):
    ok = _cli("validate", str(REPO / "recipes" / "quickstart.yaml"))
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsources: [{glob: nothing-here/*.jsonl}]\noutput: {path: o}\n")
    res = _cli("validate", str(bad))
    assert res.returncode == 2 and "sources[0].glob: no file matches 'nothing-here/*.jsonl'" in res.stderr
    schema = json.loads(_cli("schema").stdout)
    assert "language" in json.dumps(schema["properties"]["steps"])
    out = tmp_path / "qs"
    run = _cli(
        "run",
        str(REPO / "recipes" / "quickstart.yaml"),
        "--output",
        str(out),
        "--set",
        "executor.tasks=1",
        "--set",
        "steps[1].language.keep=[th]",
    )
    assert run.returncode == 0, run.stderr
    assert "read:sample" in run.stdout and "th" in run.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recipe"]["steps"][1] == {
        "language": {**manifest["recipe"]["steps"][1]["language"], "keep": ["th"]}
    }
    assert set(manifest["languages"]["output"]) == {"th"}
    shown = _cli("inspect", str(out), "--rows", "2")
    assert shown.returncode == 0 and "<|begin_of_text|>" in shown.stdout


SLOW_PLUGIN = """
import time
import corpusforge as cf

@cf.filter
def slow(doc, seconds=0.0):
    time.sleep(seconds)
    return True
"""


def test_kill_and_rerun_equals_uninterrupted_run(tmp_path, real_texts):
    rows = mixed_rows(real_texts, n=40)
    for part in range(4):
        write_jsonl(tmp_path / "in" / f"part{part}.jsonl", rows[part::4])
    (tmp_path / "slow.py").write_text(SLOW_PLUGIN)
    recipe = make_recipe(
        tmp_path,
        str(tmp_path / "in" / "*.jsonl"),
        plugins=[str(tmp_path / "slow.py")],
        steps=[{"language": {"label_only": True}}, {"slow": {"seconds": 0.02}}, {"tag": {"template": "llama3"}}],
        source={"id_field": "id"},
        executor={"tasks": 4, "workers": 1},
    )
    recipe_file = tmp_path / "recipe.json"
    recipe_file.write_text(json.dumps(recipe))
    loader = "import corpusforge as cf, json, sys; cf.run(cf.Recipe.from_dict(json.load(open(sys.argv[1]))), output=sys.argv[2])"
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", loader, str(recipe_file), str(killed)], start_new_session=True)
    completions = killed / ".corpusforge" / "logs" / "completions"
    deadline = time.time() + 120
    while time.time() < deadline and not (completions.is_dir() and len(list(completions.iterdir())) >= 1):
        time.sleep(0.05)
    time.sleep(0.5)  # well inside the second task
    os.killpg(proc.pid, signal.SIGKILL)
    assert_run_left_nothing(proc)
    done = len(list(completions.iterdir()))
    assert 1 <= done < 4, "the kill should land mid-run"
    assert not (killed / "manifest.json").exists()
    assert Ledger(killed).unrecorded() == []  # the ledger names every file the killed run left, partial ones too
    # whatever shard exists after the kill is complete: partial writes live under .corpusforge/tmp
    for shard in killed.glob("data-*.arrow"):
        assert shard.stat().st_size > 0
    resumed = cf.run(cf.Recipe.from_dict(recipe), output=killed)
    reference = cf.run(cf.Recipe.from_dict(recipe), output=tmp_path / "reference")
    a, b = resumed.load().to_list(), reference.load().to_list()
    assert len(a) == len(rows) and a == b
    assert resumed.manifest["rows"] == reference.manifest["rows"] == len(rows)
    assert [s["step"] for s in resumed.manifest["steps"]] == [s["step"] for s in reference.manifest["steps"]]
    assert resumed.manifest["steps"] == reference.manifest["steps"]


def test_progress_counts_the_tasks_of_every_stage(tmp_path):
    """A dedup build runs four stages: the progress counts all their tasks (2 + 2 buckets + 1 + 2 = 7), and its last
    report, after the stages, says all are done."""
    from tests.support import dedup_recipe

    recipe = dedup_recipe(tmp_path, {"tasks": 2, "workers": 1}, "out")
    seen = []
    cf.run(recipe, progress=seen.append)
    assert seen and {p.tasks for p in seen} == {7}
    assert seen[-1].tasks_done == 7 and seen[-1].docs > 0
    assert [p.tasks_done for p in seen] == sorted(p.tasks_done for p in seen)


def test_an_unguarded_run_in_a_script_with_workers_is_refused_not_left_hanging(tmp_path):
    """Worker processes start by importing the user's script: a cf.run() at its top level, outside
    `if __name__ == '__main__':`, ran the build again in every worker and the run waited forever."""
    write_jsonl(tmp_path / "in.jsonl", [{"text": f"document number {i}"} for i in range(8)])
    recipe = make_recipe(tmp_path, str(tmp_path / "in.jsonl"), executor={"tasks": 2, "workers": 2})
    call = f"cf.run(cf.Recipe.from_dict({recipe!r}), overwrite=True)"
    scripts = {
        "unguarded.py": f"import corpusforge as cf\n\nresult = {call}\n",
        "guarded.py": f"import corpusforge as cf\n\nif __name__ == '__main__':\n    print({call}.manifest['rows'])\n",
    }
    for name, text in scripts.items():
        (tmp_path / name).write_text(text)
    unguarded = subprocess.run(
        [sys.executable, "unguarded.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert unguarded.returncode == 1 and "line 3 of your script outside `if __name__ ==" in unguarded.stderr
    guarded = subprocess.run([sys.executable, "guarded.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert guarded.returncode == 0 and guarded.stdout.strip() == "8", guarded.stderr[-2000:]
