"""A real local Ray cluster builds a multi-stage recipe (dedup: four chained stages); the shards are byte-identical
to the local executor's."""

from __future__ import annotations

import pytest

import corpusforge as cf
from tests.support import dedup_recipe, shard_hashes

ray = pytest.importorskip("ray", reason="the ray extra: pip install 'corpusforge[ray]'")


@pytest.mark.slow  # 10–25 s: kept out of the default suite (about 6 minutes); CI runs it in test-slow
def test_ray_cluster_builds_the_same_corpus_as_local(tmp_path):
    local = cf.run(dedup_recipe(tmp_path, {"tasks": 2, "workers": 1}, "local"), report=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = cf.run(
            dedup_recipe(tmp_path, {"type": "ray", "tasks": 2, "mem_per_task_gb": 0.5}, "ray"), report=False
        )
        # datatrove's Ray executor ran the stages (it records its settings in each stage's log folder)
        executor_json = (tmp_path / "ray" / ".corpusforge" / "logs-dedup-signatures" / "executor.json").read_text()
        assert '"ray_remote_kwargs"' in executor_json and '"start_method"' not in executor_json
        assert ray.is_initialized()  # a cluster the caller started is left running
    finally:
        ray.shutdown()
    assert shard_hashes(on_ray.path) == shard_hashes(local.path) != {}
    assert on_ray.manifest["rows"] == local.manifest["rows"] > 1000
    assert [s["step"] for s in on_ray.manifest["steps"]] == [s["step"] for s in local.manifest["steps"]]
    dedup = {s["step"]: s for s in on_ray.manifest["steps"]}["dedup"]
    assert dedup["dropped"]["duplicate"] > 0  # the chained dedup stages ran on Ray too
