"""Kill -9 a multi-stage build (dedup: four stages, then finalize) at random points, rerun it each time: the final
shards are byte-identical to an uninterrupted build — no row lost, none duplicated — and no kill ever leaves a
readable partial shard behind. A killed run leaves no process behind either, also when only the run's own process is
killed (the OOM killer, a closed terminal)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from corpusforge.corpus.ledger import Ledger
from tests.support import assert_run_left_nothing, kill_run, make_recipe, run_processes, shard_hashes, write_jsonl

KILLS = 4
SEED = 20261121


def completions(out: Path) -> int:
    return sum(1 for _ in (out / ".corpusforge").glob("logs*/completions/*")) if out.exists() else 0


def partials(out: Path) -> list[Path]:
    """Shards being written (temp files, renamed into place when their task's input is exhausted)."""
    return list(out.glob("**/*.partial"))


def assert_no_readable_partial(out: Path) -> None:
    """Every file named as a shard (final or intermediate) is whole: both of its IPC framings read to the end."""
    for shard in [*out.glob("data-*.arrow"), *out.glob(".corpusforge/dedup/shards/data-*.arrow")]:
        with pa.memory_map(str(shard)) as source:
            rows = pa.ipc.open_stream(source).read_all().num_rows
        with pa.memory_map(str(shard)) as source:
            assert pa.ipc.open_file(source).read_all().num_rows == rows, shard
    for name in ("manifest.json", "state.json", "dataset_info.json", ".corpusforge/plan.json"):
        if (out / name).exists():
            json.loads((out / name).read_text())  # written atomically: never half a file


def start(recipe_file: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "corpusforge.cli", "run", str(recipe_file), "--output", str(out), "--no-report"],
        start_new_session=True,  # its own process group: the kill takes the worker processes too
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow  # 12–17 s: in test-slow (CI); tests/runner/test_run.py kills and resumes a build in the default suite
def test_kill_9_at_random_points_then_rerun_equals_uninterrupted(tmp_path):
    recipe = make_recipe(
        tmp_path,
        "builtin:multilingual-sample.jsonl",
        steps=[{"normalize": {}}, {"dedup": {"num_buckets": 2}}, {"length": {"min_chars": 4}}],
        source={"id_field": "id"},
        executor={"tasks": 3, "workers": 2},
    )
    recipe_file = tmp_path / "recipe.json"
    recipe_file.write_text(json.dumps(recipe))
    total_tasks = 3 + 2 + 1 + 3  # signatures, buckets, clusters, build

    clean = tmp_path / "clean"
    proc = start(recipe_file, clean)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    expected = shard_hashes(clean)

    rng = random.Random(SEED)
    targets = sorted(rng.sample(range(total_tasks), KILLS))  # completed tasks (all stages) before each kill
    killed = tmp_path / "killed"
    kills = []  # (trigger, completed tasks when killed, a shard was being written) per kill that landed
    runs = 0
    while True:
        runs += 1
        assert runs <= KILLS + 2, "the build did not finish after the kills"
        proc = start(recipe_file, killed)
        if len(kills) == KILLS:
            assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
            break
        stale = set(partials(killed))  # left by earlier kills
        # once `target` tasks completed, either while a writer has a shard half written or up to 0.2 s later
        target = targets[len(kills)]
        while proc.poll() is None and completions(killed) < target:
            time.sleep(0.005)
        trigger = ("mid-shard", "after-tasks")[len(kills) % 2]
        if trigger == "mid-shard":
            while proc.poll() is None and not set(partials(killed)) - stale:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.02))
        else:
            time.sleep(rng.uniform(0, 0.2))
        if proc.poll() is not None:  # it finished first: that run counts as the rerun that completes the build
            assert proc.returncode == 0, proc.stderr.read().decode()
            break
        writing = bool(set(partials(killed)) - stale)
        os.killpg(proc.pid, signal.SIGKILL)
        assert_run_left_nothing(proc)
        kills.append((trigger, completions(killed), writing))
        assert_no_readable_partial(killed)
        assert Ledger(killed).unrecorded() == []  # every file a killed writer left was recorded before it existed

    assert len(kills) >= 3, f"only {len(kills)} kills landed before the build finished: {kills}"
    assert any(writing for _, _, writing in kills), f"no kill landed while a shard was being written: {kills}"
    assert any(0 < done < total_tasks for _, done, _ in kills), f"no kill landed between stages' tasks: {kills}"
    assert shard_hashes(killed) == expected
    rows = pa.concat_tables(
        pa.ipc.open_stream(pa.memory_map(str(killed / name))).read_all() for name in sorted(expected)
    )
    ids = rows["id"].to_pylist()
    assert len(ids) == len(set(ids)) == json.loads((clean / "manifest.json").read_text())["rows"]
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["rows"] == len(ids) and [s["file"] for s in manifest["shards"]] == sorted(expected)
    assert not partials(killed)  # finalize cleared the killed tasks' leftovers


SLOW_PLUGIN = """
import time

import corpusforge as cf


@cf.filter
def slow(doc, sleep=0.5):
    time.sleep(sleep)
    return True
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_kill_9_of_the_run_alone_ends_its_workers(tmp_path):
    """Only the run's own process is killed, not its process group: its pool workers, its Manager and the fork
    server end by themselves within seconds (they used to sleep on, holding their memory, for good)."""
    write_jsonl(tmp_path / "in.jsonl", [{"id": f"row-{i}", "text": f"row number {i}"} for i in range(80)])
    (tmp_path / "slow.py").write_text(SLOW_PLUGIN)
    recipe = make_recipe(
        tmp_path,
        str(tmp_path / "in.jsonl"),
        plugins=[str(tmp_path / "slow.py")],
        steps=[{"slow": {"sleep": 0.5}}],
        executor={"tasks": 4, "workers": 2},
    )  # 20 rows of 0.5 s a task: each task still runs well after the kill
    recipe_file = tmp_path / "recipe.json"
    recipe_file.write_text(json.dumps(recipe))
    out = tmp_path / "out"
    proc = start(recipe_file, out)
    try:
        task_logs = out / ".corpusforge" / "logs" / "logs"
        deadline = time.monotonic() + 120
        while proc.poll() is None and len(list(task_logs.glob("task_*.log"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # both workers inside a task
        assert proc.poll() is None, proc.stderr.read().decode()
        forked = run_processes(proc)
        assert len(forked) >= 4, forked  # the run, its Manager, the fork server, two workers (and resource tracker)
        os.kill(proc.pid, signal.SIGKILL)
        assert_run_left_nothing(proc)
    finally:
        kill_run(proc)
