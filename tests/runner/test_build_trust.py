"""A build never deletes what it did not write, never hangs on a plugin, never serves stale rows, and one run at a
time owns its output folder. Each test reproduces a failure users met (issue "Trust")."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import yaml
from datatrove.pipeline.filters.base_filter import BaseFilter

import corpusforge as cf
from tests.support import REPO, assert_run_left_nothing, kill_run, make_recipe, write_jsonl


def _cli(*args, cwd=None, timeout=180):
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{REPO / 'tests'}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return subprocess.run(
        [sys.executable, "-m", "corpusforge.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def _write_recipe(tmp_path, recipe: dict, name="r.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True))
    return path


PLUGIN = textwrap.dedent("""
    import time

    from datatrove.pipeline.filters.base_filter import BaseFilter

    import corpusforge as cf

    @cf.filter
    def no_short(doc, min_chars=6, sleep=0.0):
        time.sleep(sleep)
        return len(doc.text) >= min_chars or (False, "short")

    @cf.filter
    def explode(doc):
        raise ValueError("boom on purpose in " + doc.id)

    @cf.filter(name="no_digits")
    class NoDigits(BaseFilter):
        name = "no digits"

        def __init__(self, reason="digit"):
            super().__init__()
            self.reason = reason

        def filter(self, doc):
            return not any(ch.isdigit() for ch in doc.text) or (False, self.reason)
""")


def _rows(n, prefix="row"):
    return [
        {"id": f"{prefix}-{i}", "text": f"{prefix} text number {'x' * (i % 9)} {'7' if i % 5 == 0 else ''}"}
        for i in range(n)
    ]


def plugin_recipe(tmp_path, n_rows: int, steps: list, executor: dict | None = None) -> dict:
    """``n_rows`` of input and PLUGIN as ``my_filters.py`` in ``tmp_path``; a recipe using it by a relative path, as a
    user writes it (run it with cwd=tmp_path), or an absolute one for in-process runs (``cf.run``)."""
    write_jsonl(tmp_path / "in.jsonl", _rows(n_rows))
    (tmp_path / "my_filters.py").write_text(PLUGIN)
    return make_recipe(
        tmp_path,
        str(tmp_path / "in.jsonl"),
        plugins=[str(tmp_path / "my_filters.py")],
        steps=steps,
        executor=executor or {"tasks": 1, "workers": 1},
    )


# ------------------------------------------------------------------------------------------------ 1. data loss
def test_overwrite_never_removes_files_it_did_not_write(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", _rows(10))
    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.tex").write_text("four years of work")
    recipe = cf.Recipe.from_dict(make_recipe(tmp_path, str(tmp_path / "in.jsonl")))
    for overwrite in (False, True):
        with pytest.raises(cf.OutputError, match=r"did not write \(thesis.tex\).*never removes") as err:
            cf.run(recipe, output=work, overwrite=overwrite)
        assert "pass --overwrite" not in str(err.value)
    assert sorted(p.name for p in work.iterdir()) == ["thesis.tex"]  # nothing created, nothing removed
    assert (work / "thesis.tex").read_text() == "four years of work"

    # a user's file dropped into a finished build: that build is not replaced either
    out = tmp_path / "out"
    cf.run(recipe)
    (out / "notes.md").write_text("mine")
    other = cf.Recipe.from_dict(
        make_recipe(tmp_path, str(tmp_path / "in.jsonl"), steps=[{"length": {"min_chars": 3}}])
    )
    with pytest.raises(cf.OutputError, match="notes.md"):
        cf.run(other, overwrite=True)
    assert (out / "notes.md").read_text() == "mine" and (out / "manifest.json").exists()


def test_overwrite_replaces_a_previous_build_entirely(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", _rows(30))
    first = cf.run(cf.Recipe.from_dict(make_recipe(tmp_path, str(tmp_path / "in.jsonl"), executor={"tasks": 3})))
    assert len(list(first.path.glob("data-*.arrow"))) == 3
    second = cf.run(
        cf.Recipe.from_dict(make_recipe(tmp_path, str(tmp_path / "in.jsonl"), executor={"tasks": 1})),
        overwrite=True,
    )
    build_id = json.loads((second.path / ".corpusforge" / "plan.json").read_text())["build_id"]
    assert sorted(p.name for p in second.path.glob("data-*.arrow")) == [f"data-00000-of-00001-{build_id}.arrow"]
    assert second.manifest["rows"] == 30


def test_cli_refusal_is_exit_2_and_names_the_files(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", _rows(5))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    proc = _cli("run", str(_write_recipe(tmp_path, make_recipe(tmp_path, str(tmp_path / "in.jsonl")))), "--overwrite")
    assert proc.returncode == 2, proc.stderr
    assert "keep.txt" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "out" / "keep.txt").read_text() == "x"


# ------------------------------------------------------------------------------------------------ 2. plugins in workers
def test_file_plugin_on_two_local_workers_finishes_and_counts_drops(tmp_path):
    recipe = plugin_recipe(
        tmp_path,
        40,
        steps=[{"no_short": {"min_chars": 20}}, {"no_digits": {"reason": "has_digit"}}],
        executor={"tasks": 4, "workers": 2},
    )
    recipe["plugins"], recipe["sources"][0]["glob"] = ["my_filters.py"], "in.jsonl"  # relative, as users write them
    proc = _cli("run", str(_write_recipe(tmp_path, recipe)), cwd=tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    steps = {s["step"]: s for s in manifest["steps"]}
    expected_short = sum(len(r["text"]) < 20 for r in _rows(40))
    assert steps["no_short"]["dropped"] == {"short": expected_short} and expected_short > 0
    long_rows = [r for r in _rows(40) if len(r["text"]) >= 20]
    expected_digits = sum(any(c.isdigit() for c in r["text"]) for r in long_rows)
    assert steps["no_digits"]["dropped"] == {"has_digit": expected_digits} and expected_digits > 0
    assert manifest["rows"] == len(long_rows) - expected_digits


def test_file_plugin_on_a_ray_cluster(tmp_path):
    ray = pytest.importorskip("ray", reason="the ray extra: pip install 'corpusforge[ray]'")
    recipe = plugin_recipe(
        tmp_path,
        40,
        steps=[{"no_short": {"min_chars": 20}}],
        executor={"type": "ray", "tasks": 2, "mem_per_task_gb": 0.5},
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = cf.run(cf.Recipe.from_dict(recipe), report=False)
    finally:
        ray.shutdown()
    steps = {s["step"]: s for s in result.manifest["steps"]}
    assert steps["no_short"]["dropped"] == {"short": sum(len(r["text"]) < 20 for r in _rows(40))}


# ------------------------------------------------------------------------------------------------ 3. stale rows
def test_changed_input_is_refused_then_rebuilt_never_served_stale(tmp_path):
    path = tmp_path / "in.jsonl"
    write_jsonl(path, _rows(300, "old"))
    recipe = cf.Recipe.from_dict(make_recipe(tmp_path, str(path), executor={"tasks": 2}))
    assert cf.run(recipe).manifest["rows"] == 300
    write_jsonl(path, _rows(100, "new"))
    with pytest.raises(cf.OutputError, match=r"in.jsonl changed \(size, content"):
        cf.run(recipe)
    result = cf.run(recipe, overwrite=True)
    texts = result.load()["text"]
    assert len(texts) == 100 and all(t.startswith("new text") for t in texts)
    assert result.manifest["inputs"][0]["bytes"] == path.stat().st_size


def test_changed_plugin_is_refused(tmp_path):
    raw = plugin_recipe(tmp_path, 10, steps=[{"no_short": {}}])
    cf.run(cf.Recipe.from_dict(raw))
    (tmp_path / "my_filters.py").write_text(PLUGIN.replace('(False, "short")', '(False, "too_short")'))
    with pytest.raises(cf.OutputError, match="plugin .*my_filters.py changed"):
        cf.run(cf.Recipe.from_dict(raw))


class _ListParams(cf.config.StrictModel):
    listed: str

    def input_files(self) -> list[str]:
        return [self.listed]


class _DropListed(BaseFilter):
    name = "drop listed"

    def __init__(self, params: _ListParams):
        super().__init__()
        self.listed = params.listed

    def filter(self, doc) -> bool | tuple[bool, str]:
        return doc.text not in open(self.listed, encoding="utf-8").read().splitlines() or (False, "listed")


def test_a_file_a_step_reads_is_checked_and_fingerprinted_like_a_source(tmp_path, monkeypatch):
    """An eval set or a term list decides rows as much as the documents do: a step names it (``input_files()``), and
    the plan checks it exists and refuses a resume once it changed."""
    from corpusforge.steps import registry

    monkeypatch.setitem(registry._REGISTRY, "drop_listed", registry.StepSpec("drop_listed", _DropListed, _ListParams))
    write_jsonl(tmp_path / "in.jsonl", _rows(20))
    listed = tmp_path / "listed.txt"
    raw = make_recipe(tmp_path, str(tmp_path / "in.jsonl"), steps=[{"drop_listed": {"listed": str(tmp_path / "no")}}])
    with pytest.raises(cf.RecipeError, match=r"steps\[0\]\.drop_listed.*'.*no' is not a readable file"):
        cf.run(cf.Recipe.from_dict(raw))
    listed.write_text(_rows(20)[5]["text"] + "\n")
    raw["steps"] = [{"drop_listed": {"listed": str(listed)}}]
    result = cf.run(cf.Recipe.from_dict(raw))
    assert result.manifest["rows"] == 19
    entry = [e for e in result.manifest["inputs"] if e.get("read_by") == "step"]
    assert [(e["source"], e["path"]) for e in entry] == [("steps[0].drop_listed", str(listed))]
    listed.write_text(_rows(20)[6]["text"] + "\n")
    with pytest.raises(cf.OutputError, match=r"listed.txt changed"):
        cf.run(cf.Recipe.from_dict(raw))


def test_a_build_by_other_corpusforge_code_is_not_resumed(tmp_path):
    """Rerunning a finished build after corpusforge itself changed resumed it: the rows of the old code were served
    (seen when the language step changed). The plan now records the code; other code is refused like another recipe."""
    import json

    from corpusforge.runner.plan import code_fingerprint, plan_path

    path = tmp_path / "in.jsonl"
    write_jsonl(path, _rows(20, "t"))
    recipe = cf.Recipe.from_dict(make_recipe(tmp_path, str(path)))
    out = cf.run(recipe).path
    plan = json.loads(plan_path(out).read_text())
    assert plan["corpusforge"] == code_fingerprint() and len(plan["corpusforge"]["code_sha256"]) == 16
    assert cf.run(recipe).manifest["rows"] == 20  # the same code: resumed, nothing to do
    plan["corpusforge"] = {"version": "0.0.9", "code_sha256": "0" * 16}
    plan_path(out).write_text(json.dumps(plan))
    with pytest.raises(cf.OutputError, match=r"built by another corpusforge \(0.0.9, code 0{16}; this is"):
        cf.run(recipe)
    assert cf.run(recipe, overwrite=True).manifest["rows"] == 20
    assert json.loads(plan_path(out).read_text())["corpusforge"] == code_fingerprint()


def test_a_step_that_drops_every_row_shows_zero_out(tmp_path):
    """The funnel read `length │ 400 │ 400 │ too_short 400` when a step dropped every row: datatrove counts
    `forwarded` only from the first document a step passes on."""
    write_jsonl(tmp_path / "in.jsonl", _rows(12))
    recipe = make_recipe(
        tmp_path, str(tmp_path / "in.jsonl"), steps=[{"normalize": {}}, {"length": {"min_chars": 999}}]
    )
    steps = {s["step"]: s for s in cf.run(cf.Recipe.from_dict(recipe), report=False).manifest["steps"]}
    assert (steps["length"]["in"], steps["length"]["out"], steps["length"]["dropped"]) == (12, 0, {"too_short": 12})
    assert (steps["normalize"]["in"], steps["normalize"]["out"]) == (12, 12)
    assert steps["write"]["in"] == 0


def test_the_code_fingerprint_covers_the_code_that_makes_rows_and_only_that(tmp_path):
    from corpusforge.runner.plan import output_code_digest

    files = {
        "cli/app.py": "HELP = 'old help text'",
        "report/report.html.jinja": "<p>old</p>",
        "steps/language.py": "THRESHOLD = 0.5",
        "templates/llama3.jinja": "{{ messages }}",
        "data/content/zh.txt": "term",
        "data/content/README.md": "where the terms come from",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    before = output_code_digest(tmp_path)
    (tmp_path / "cli/app.py").write_text("HELP = 'new help text'")  # a resume stays allowed
    (tmp_path / "report/report.html.jinja").write_text("<p>new</p>")
    (tmp_path / "data/content/README.md").write_text("provenance, rewritten")
    assert output_code_digest(tmp_path) == before
    # a step, a chat template, a term list a step reads: the rows may change
    for name in ("steps/language.py", "templates/llama3.jinja", "data/content/zh.txt"):
        (tmp_path / name).write_text(files[name] + " ")
        assert output_code_digest(tmp_path) != before
        before = output_code_digest(tmp_path)


# ------------------------------------------------------------------------------------------------ 4. two runs at once
def test_second_concurrent_run_is_refused_and_the_first_finishes(tmp_path):
    recipe = plugin_recipe(
        tmp_path, 30, steps=[{"no_short": {"min_chars": 1, "sleep": 0.15}}]
    )  # ~4.5 s: the second run starts meanwhile
    path = _write_recipe(tmp_path, recipe)
    env = dict(os.environ)
    first = subprocess.Popen(
        [sys.executable, "-m", "corpusforge.cli", "run", str(path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the processes of its session are its own: `kill_run` ends them all
    )
    try:
        lock = tmp_path / "out" / ".corpusforge" / "lock"
        deadline = time.time() + 60
        while not (lock.exists() and lock.read_text()) and time.time() < deadline:
            time.sleep(0.1)
        started = time.time()
        second = _cli("run", str(path), cwd=tmp_path, timeout=60)
        assert time.time() - started < 30  # refused at once, not after waiting
        assert second.returncode == 2, second.stderr
        assert f"pid {first.pid}" in second.stderr and "started" in second.stderr
        assert "Traceback" not in second.stderr
        _, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
    finally:
        kill_run(first)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["rows"] == 30


def test_lock_of_a_killed_run_is_taken_over(tmp_path):
    recipe = plugin_recipe(tmp_path, 30, steps=[{"no_short": {"min_chars": 1, "sleep": 0.2}}])
    path = _write_recipe(tmp_path, recipe)
    first = subprocess.Popen(
        [sys.executable, "-m", "corpusforge.cli", "run", str(path)], cwd=tmp_path, start_new_session=True
    )
    lock = tmp_path / "out" / ".corpusforge" / "lock"
    deadline = time.time() + 60
    while not (lock.exists() and lock.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)  # the run's process alone, as the OOM killer does
    assert_run_left_nothing(first)  # datatrove's Manager (started for one worker too) used to sleep on for good
    assert json.loads(lock.read_text())["pid"] == first.pid  # the dead run's record is still there
    proc = _cli("run", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["rows"] == 30


# ------------------------------------------------------------------------------------------------ 7. plugin import errors
def test_module_function_step_shows_the_import_error(tmp_path, monkeypatch):
    (tmp_path / "cf_broken_plugin.py").write_text("import not_installed_dep_xyz\n\ndef f(doc):\n    return True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        cf.RecipeError, match=r"steps\[0\]: step 'cf_broken_plugin:f': cannot import.*not_installed_dep_xyz"
    ):
        cf.Recipe.from_dict(make_recipe(tmp_path, "x", steps=[{"cf_broken_plugin:f": {}}]))
    with pytest.raises(cf.RecipeError, match="has no attribute 'g'"):
        (tmp_path / "cf_ok_plugin.py").write_text("def f(doc):\n    return True\n")
        cf.Recipe.from_dict(make_recipe(tmp_path, "x", steps=[{"cf_ok_plugin:g": {}}]))
    with pytest.raises(cf.RecipeError, match="unknown step 'no_such_module_xyz:f'"):
        cf.Recipe.from_dict(make_recipe(tmp_path, "x", steps=[{"no_such_module_xyz:f": {}}]))


def test_plugin_file_that_fails_to_import_names_the_file_and_error(tmp_path):
    (tmp_path / "bad.py").write_text("import not_installed_dep_xyz\n")
    with pytest.raises(cf.RecipeError, match=r"plugins.*bad.py' failed to import: ModuleNotFoundError"):
        cf.Recipe.from_dict(make_recipe(tmp_path, "x", plugins=[str(tmp_path / "bad.py")]))


# ------------------------------------------------------------------------------------------------ 8. failures and logs
def test_task_failure_exits_1_with_task_log_and_error(tmp_path):
    recipe = plugin_recipe(tmp_path, 6, steps=[{"explode": {}}], executor={"tasks": 2, "workers": 2})
    proc = _cli("run", str(_write_recipe(tmp_path, recipe)), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "build failed" in proc.stderr and "2 task(s) failed" in proc.stderr
    named = re.search(r"Task (\d)'s log: \S*(task_0000\d\.log)", proc.stderr)  # a failed task whose log says why
    assert named and named.group(2) == f"task_0000{named.group(1)}.log" and "boom on purpose" in proc.stderr
    assert "Launching pipeline" not in proc.stderr  # no per-task console blocks without -v
    log = tmp_path / "out" / ".corpusforge" / "logs" / "logs" / named.group(2)
    assert "boom on purpose" in log.read_text()  # the log the message points at is written without -v


def test_task_logs_are_written_without_verbose(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", _rows(6))
    proc = _cli("run", str(_write_recipe(tmp_path, make_recipe(tmp_path, str(tmp_path / "in.jsonl")))))
    assert proc.returncode == 0, proc.stderr
    assert "Launching pipeline" not in proc.stderr
    log = (tmp_path / "out" / ".corpusforge" / "logs" / "logs" / "task_00000.log").read_text()
    assert "Launching pipeline for rank=0" in log and "Processing done for rank=0" in log
