"""Executors without a cluster: recipe models, `--dry-run`, and the Slurm job chain as submitted to a fake `sbatch`
(a script on PATH that records each submission and answers with a job id)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

import corpusforge as cf
from corpusforge.cli import main
from corpusforge.runner import Submitted, build_status, finalize_build, plan_build
from corpusforge.runner.executors import ExecutorError
from tests.support import make_recipe

SAMPLE = "builtin:multilingual-sample.jsonl"


def dedup_recipe(tmp_path: Path, executor: dict, out: str = "out") -> dict:
    recipe = make_recipe(
        tmp_path,
        SAMPLE,
        steps=[{"normalize": {}}, {"dedup": {"num_buckets": 2}}, {"length": {"min_chars": 4}}],
        source={"id_field": "id"},
        executor=executor,
    )
    recipe["output"]["path"] = str(tmp_path / out)
    return recipe


SLURM = {
    "type": "slurm",
    "tasks": 3,
    "workers": 2,
    "partition": "cpu",
    "time": "00:30:00",
    "cpus_per_task": 2,
    "mem_per_cpu_gb": 3,
    "sbatch_args": {"account": "proj42"},
}


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    """`sbatch` records its arguments and script in FAKE_SLURM_DIR/job-N.json; `squeue` lists FAKE_SLURM_DIR/active."""
    bin_dir, record = tmp_path / "bin", tmp_path / "slurm-calls"
    bin_dir.mkdir()
    record.mkdir()
    (bin_dir / "sbatch").write_text(
        textwrap.dedent(
            f"""\
            #!{sys.executable}
            import json, os, pathlib, sys
            record = pathlib.Path(os.environ["FAKE_SLURM_DIR"])
            job = 100 + len(list(record.glob("job-*.json")))
            script = pathlib.Path(sys.argv[-1]).read_text()
            (record / f"job-{{job}}.json").write_text(json.dumps({{"args": sys.argv[1:-1], "script": script}}))
            print(f"Submitted batch job {{job}}")
            """
        )
    )
    (bin_dir / "squeue").write_text('#!/bin/sh\ncat "$FAKE_SLURM_DIR/active" 2>/dev/null\nexit 0\n')
    for tool in ("sbatch", "squeue"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(record))
    return record


def submissions(record: Path) -> list[dict]:
    return [json.loads((record / f"job-{n}.json").read_text()) for n in range(100, 100 + len(list(record.iterdir())))]


def directives(script: str) -> dict[str, str]:
    lines = [line.removeprefix("#SBATCH --") for line in script.splitlines() if line.startswith("#SBATCH --")]
    return dict(line.split("=", 1) if "=" in line else (line, "") for line in lines)


def test_executor_models_validate_and_name_the_key(tmp_path):
    recipe = cf.Recipe.from_dict(dedup_recipe(tmp_path, {**SLURM}))
    assert recipe.executor.type == "slurm" and recipe.executor.partition == "cpu"
    ray = cf.Recipe.from_dict(dedup_recipe(tmp_path, {"type": "ray", "tasks": 2, "address": "auto"}))
    assert ray.executor.type == "ray" and ray.executor.address == "auto"
    assert cf.Recipe.from_dict(dedup_recipe(tmp_path, {"tasks": 2})).executor.type == "local"
    with pytest.raises(cf.RecipeError, match=r"executor\.partition: required key is missing"):
        cf.Recipe.from_dict(dedup_recipe(tmp_path, {"type": "slurm", "tasks": 2}))
    with pytest.raises(cf.RecipeError, match=r"executor: set `venv` or `env_command`, not both"):
        cf.Recipe.from_dict(dedup_recipe(tmp_path, {**SLURM, "venv": "/opt/env", "env_command": "module load x"}))
    with pytest.raises(cf.RecipeError, match=r"executor\.type: unknown executor 'slurmm' — did you mean 'slurm'\?"):
        cf.Recipe.from_dict(dedup_recipe(tmp_path, {**SLURM, "type": "slurmm"}))
    # a key of another executor type says which one, rather than "unknown key"
    with pytest.raises(
        cf.RecipeError, match=r"executor\.partition: 'partition' is a key of executor type slurm, not ray: set `type"
    ):
        cf.Recipe.from_dict(dedup_recipe(tmp_path, {"type": "ray", "partition": "cpu"}))
    with pytest.raises(
        cf.RecipeError, match=r"executor\.partitoin: unknown key 'partitoin' — did you mean 'partition'"
    ):
        cf.Recipe.from_dict(dedup_recipe(tmp_path, {**SLURM, "partitoin": "cpu"}))


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    recipe_file = tmp_path / "recipe.json"
    recipe_file.write_text(json.dumps(dedup_recipe(tmp_path, {"tasks": 3, "workers": 2})))
    assert main(["run", str(recipe_file), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert not (tmp_path / "out").exists()
    for line in ("dedup-signatures: 3 task(s)", "dedup-buckets: 2 task(s)", "dedup-clusters: 1 task(s)"):
        assert line in printed
    assert "build: 3 task(s)" in printed and "executor: local, workers: 2" in printed
    assert f"logs: {tmp_path / 'out' / '.corpusforge' / 'logs'}" in printed

    slurm = plan_build(
        cf.Recipe.from_dict(dedup_recipe(tmp_path, {**SLURM, "env_command": "module load py"})),
        scripts_dir=tmp_path / "scripts",
    )
    assert not (tmp_path / "out").exists() and slurm.slurm_logs == tmp_path / "out" / ".corpusforge" / "slurm"
    assert [s.name for s in slurm.stages][-1] == "finalize"
    for stage in slurm.stages:
        script = Path(stage.script).read_text()
        assert "module load py\n" in script and f"{tmp_path}/out/.corpusforge/slurm" in script
        assert str(slurm.scripts_dir) not in script  # rendered against a scratch folder, shown with the real one
    venv = plan_build(cf.Recipe.from_dict(dedup_recipe(tmp_path, {**SLURM, "venv": "/opt/env"})), tmp_path / "s2")
    assert "source /opt/env/bin/activate\n" in Path(venv.stages[0].script).read_text()


def test_slurm_submits_a_dependency_chain_and_a_finalize_job(tmp_path, fake_slurm):
    recipe = cf.Recipe.from_dict(dedup_recipe(tmp_path, SLURM))
    # first the dry run: it must show exactly the scripts that get submitted
    planned = plan_build(recipe, scripts_dir=tmp_path / "scripts")
    result = cf.run(recipe)
    assert isinstance(result, Submitted)
    out = tmp_path / "out"
    stages = ["dedup-signatures", "dedup-buckets", "dedup-clusters", "build", "finalize"]
    assert [(job.stage, job.job_id) for job in result.jobs] == list(zip(stages, ["100", "101", "102", "103", "104"]))
    calls = submissions(fake_slurm)
    assert len(calls) == 5  # no extra stats-merging job per stage: finalize merges the stats
    arrays = ["0-2%2", "0-1%2", "0-0%2", "0-2%2", None]
    for i, (call, array, stage) in enumerate(zip(calls, arrays, planned.stages)):
        sbatch = directives(call["script"])
        assert sbatch["partition"] == "cpu" and sbatch["time"] == "00:30:00" and sbatch["account"] == "proj42"
        assert sbatch.get("array") == array
        assert "requeue" in sbatch and "qos" not in sbatch
        assert f"source {sys.prefix}/bin/activate\n" in call["script"]  # default: the submitting venv
        # each job waits for the one submitted before it, and only when that one succeeded
        dependency = [a for a in call["args"] if a.startswith("--dependency=")]
        assert dependency == ([f"--dependency=afterok:{99 + i}"] if i else [])
        assert call["script"] == Path(stage.script).read_text()
    assert (
        directives(calls[0]["script"])["cpus-per-task"] == "2"
        and directives(calls[0]["script"])["mem-per-cpu"] == "3G"
    )
    assert f"launch_pickled_pipeline {out}/.corpusforge/logs-dedup-signatures/executor.pik" in calls[0]["script"]
    assert (out / ".corpusforge" / "logs-dedup-signatures" / "executor.pik").exists()
    assert calls[-1]["script"].rstrip().endswith(f"python -m corpusforge.cli finalize {out}")

    status = build_status(out)
    assert [(s.name, s.completed, s.tasks) for s in status.stages] == [
        ("dedup-signatures", 0, 3),
        ("dedup-buckets", 0, 2),
        ("dedup-clusters", 0, 1),
        ("build", 0, 3),
    ]
    assert not status.complete and not status.finalized and status.active_jobs == []
    (fake_slurm / "active").write_text("101\n555\n")
    assert build_status(out).active_jobs == ["101"]
    with pytest.raises(ExecutorError, match=r"Slurm jobs 101 of this build are still queued or running.*scancel 101"):
        cf.run(recipe)
    with pytest.raises(cf.OutputError, match=r"cannot finalize, stages are incomplete \(dedup-signatures: tasks"):
        finalize_build(out)


def test_slurm_without_sbatch_says_where_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    with pytest.raises(ExecutorError, match=r"`sbatch` is not on PATH.*--dry-run"):
        cf.run(cf.Recipe.from_dict(dedup_recipe(tmp_path, SLURM)))


def test_status_of_a_finished_local_build(tmp_path, capsys):
    recipe = cf.Recipe.from_dict(
        make_recipe(tmp_path, SAMPLE, steps=[{"length": {"min_chars": 4}}], executor={"tasks": 2, "workers": 1})
    )
    cf.run(recipe, report=False)
    assert main(["status", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "build: 2/2 tasks done" in printed and "finalized" in printed
    assert build_status(tmp_path / "out").finalized
    assert main(["status", str(tmp_path / "nothing")]) == 2
    assert "is not a corpusforge build folder" in capsys.readouterr().err
