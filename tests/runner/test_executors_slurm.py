"""A real Slurm cluster (CI: `.ci/slurm-up.sh` starts a single-node one) builds a multi-stage recipe: the stages
run as dependent job arrays, the last job finalizes, and the shards equal the local executor's byte for byte.
Skipped where `sbatch` is missing or no Slurm node answers."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

import corpusforge as cf
from corpusforge.runner import Submitted, build_status
from tests.support import dedup_recipe, shard_hashes

pytestmark = pytest.mark.slurm


def usable_partition() -> str | None:
    """The default partition when a node of it is up, else None."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return None
    try:
        lines = subprocess.run(
            ["sinfo", "--noheader", "--format=%P %T"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.split("\n")
    except (subprocess.SubprocessError, OSError):
        return None
    for line in lines:
        if line.strip() and line.split()[1].rstrip("*") in ("idle", "mixed", "allocated", "completing"):
            return line.split()[0].rstrip("*")
    return None


def test_slurm_cluster_builds_the_same_corpus_as_local(tmp_path):
    partition = usable_partition()
    if partition is None:
        pytest.skip("no Slurm cluster here (`sbatch` missing or no node up); CI starts one with .ci/slurm-up.sh")

    slurm = {"type": "slurm", "partition": partition, "tasks": 2, "time": "00:10:00", "mem_per_cpu_gb": 1}
    submitted = cf.run(dedup_recipe(tmp_path, slurm, "slurm"))
    assert isinstance(submitted, Submitted) and all(job.job_id for job in submitted.jobs)
    local = cf.run(
        dedup_recipe(tmp_path, {"tasks": 2, "workers": 1}, "local"), report=False
    )  # meanwhile, the reference

    deadline = time.monotonic() + 300
    while not (status := build_status(submitted.path)).finalized:
        failed = list((submitted.path / ".corpusforge" / "slurm").glob("finalize_*.out"))
        assert time.monotonic() < deadline, f"not finalized after 5 min: {status}; finalize log: {failed}"
        time.sleep(1)
    assert [(s.name, s.completed) for s in status.stages] == [
        ("dedup-signatures", 2),
        ("dedup-buckets", 2),
        ("dedup-clusters", 1),
        ("build", 2),
    ]
    assert shard_hashes(submitted.path) == shard_hashes(local.path) != {}
    assert cf.Result(submitted.path, {}).load().num_rows == local.manifest["rows"]
    # the finalize job ran on the cluster, not here
    assert list((submitted.path / ".corpusforge" / "slurm").glob("finalize_*.out"))


def test_file_plugin_runs_in_slurm_jobs(tmp_path):
    """A `plugins:` file reaches the job arrays by path: the jobs import it themselves (issue: Trust, 2)."""
    partition = usable_partition()
    if partition is None:
        pytest.skip("no Slurm cluster here (`sbatch` missing or no node up); CI starts one with .ci/slurm-up.sh")
    from tests.runner.test_build_trust import _rows, plugin_recipe

    slurm = {"type": "slurm", "partition": partition, "tasks": 2, "time": "00:10:00", "mem_per_cpu_gb": 1}
    raw = plugin_recipe(tmp_path, 40, steps=[{"no_short": {"min_chars": 20}}, {"no_digits": {}}], executor=slurm)
    submitted = cf.run(cf.Recipe.from_dict(raw))
    deadline = time.monotonic() + 300
    while not build_status(submitted.path).finalized:
        assert time.monotonic() < deadline, f"not finalized after 5 min: {build_status(submitted.path)}"
        time.sleep(1)
    manifest = cf.Result(submitted.path, {}).load()
    long_rows = [r for r in _rows(40) if len(r["text"]) >= 20]
    assert sorted(manifest["text"]) == sorted(r["text"] for r in long_rows if not any(c.isdigit() for c in r["text"]))
