"""Compile a Recipe into a datatrove pipeline, run it with the recipe's executor, finalize the shards.

result = corpusforge.run(corpusforge.Recipe.from_yaml("recipes/quickstart.yaml"))
ds = result.load()
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datatrove.pipeline.base import PipelineStep

from corpusforge.errors import OutputError
from corpusforge.executors import SubmittedJob, build_executor, completed_tasks, start_engine
from corpusforge.recipe.models import LocalExecutor, Recipe, SlurmExecutor
from corpusforge.shards import ArrowShardWriter, recipe_fingerprint
from corpusforge.shards.writer import CP_SCHEMA, KD_SCHEMA, WORK_DIR
from corpusforge.sources.preflight import input_bytes, make_readers, preflight, source_name
from corpusforge.status import finalize_build, guard_active_jobs, new_plan, submit, write_plan
from corpusforge.steps.registry import get_step

log = logging.getLogger("corpusforge.run")


@dataclass
class Progress:
    docs: int
    bytes: int
    total_bytes: int | None
    tasks_done: int
    tasks: int


@dataclass
class Result:
    """A finished build: the output folder and its manifest."""

    path: Path
    manifest: dict

    def load(self):
        """The corpus as a memory-mapped ``datasets.Dataset``."""
        import datasets

        return datasets.load_from_disk(str(self.path))

    def push_to_hub(
        self,
        repo_id: str,
        private: bool = False,
        revision: str | None = None,
        license: str = "unknown",
        token: str | None = None,
    ) -> str:
        """Upload as Parquet with a dataset card, in one commit; returns the commit URL."""
        from corpusforge.publish import publish

        return publish(self.path, repo_id, private=private, revision=revision, license=license, token=token)

    def scan(self):
        """The corpus as a polars LazyFrame."""
        from corpusforge.shards import scan

        return scan(self.path)


@dataclass
class Submitted:
    """A build queued on Slurm: its output folder and jobs. `corpusforge status OUT` follows it; the last job
    finalizes it (or rerun `corpusforge run`, or `corpusforge finalize OUT`, once every stage is done)."""

    path: Path
    jobs: list[SubmittedJob]


@dataclass
class Stage:
    """One executor run. ``labels`` names each pipeline step in the manifest's funnel (None: internal step)."""

    name: str
    pipeline: list[PipelineStep]
    tasks: int
    logs: Path
    labels: list[str | None]


def _output_steps(recipe: Recipe, out: Path) -> tuple[list[PipelineStep], list[str]]:
    """The end of the build stage: the shard writer; for a KD recipe, generation and output checks before it."""
    if recipe.generate is None:
        return [ArrowShardWriter(str(out), batch_rows=recipe.output.batch_rows)], ["write"]
    from corpusforge.kd import KDChecks, KDGenerate
    from corpusforge.shards.writer import KDShardWriter

    steps = [
        KDGenerate(recipe.generate, str(out / WORK_DIR)),
        KDChecks(recipe.generate),
        KDShardWriter(str(out), batch_rows=recipe.output.batch_rows),
    ]
    return steps, ["generate", "checks", "write"]


def compile_stages(recipe: Recipe, out: Path, progress_dir: Path | None = None) -> list[Stage]:
    """The recipe as stages. Without a dedup step: one stage (readers, steps, writer). With one, four stages:
    steps before dedup + signatures → LSH buckets → clusters → dedup filter + steps after it + writer."""
    tasks = recipe.executor.tasks
    work = out / WORK_DIR
    readers = make_readers(recipe, str(progress_dir) if progress_dir else None)
    read_labels = [f"read:{source_name(s, i)}" for i, s in enumerate(recipe.sources)]
    calls = list(recipe.steps)
    cut = next((i for i, call in enumerate(calls) if call.name == "dedup"), None)
    writer, write_labels = _output_steps(recipe, out)
    if cut is None:
        steps = [get_step(call.name).create(call.params) for call in calls]
        labels = read_labels + [call.name for call in calls] + write_labels
        return [Stage("build", [*readers, *steps, *writer], tasks, work / "logs", labels)]

    from corpusforge.shards.reader import ShardReader
    from corpusforge.steps.dedup import DedupParams, dedup_stages

    before = [get_step(call.name).create(call.params) for call in calls[:cut]]
    after = [get_step(call.name).create(call.params) for call in calls[cut + 1 :]]
    params = DedupParams.model_validate(calls[cut].params)
    parts = dedup_stages(params, str(work / "dedup"), tasks)
    intermediate = str(work / "dedup" / "shards")
    stages = [
        Stage(
            "dedup-signatures",
            [
                *readers,
                *before,
                ArrowShardWriter(intermediate, batch_rows=recipe.output.batch_rows),
                *parts["signature_steps"],
            ],
            tasks,
            work / "logs-dedup-signatures",
            read_labels + [call.name for call in calls[:cut]] + [None] * (1 + len(parts["signature_steps"])),
        )
    ]
    if parts["buckets"] is not None:
        stages.append(
            Stage("dedup-buckets", [parts["buckets"]], params.num_buckets, work / "logs-dedup-buckets", [None])
        )
    stages.append(Stage("dedup-clusters", [parts["cluster"]], 1, work / "logs-dedup-clusters", [None]))
    stages.append(
        Stage(
            "build",
            [ShardReader(intermediate, tasks), parts["filter"], *after, *writer],
            tasks,
            work / "logs",
            [None, "dedup"] + [call.name for call in calls[cut + 1 :]] + write_labels,
        )
    )
    return stages


def _prepare_output(out: Path, recipe_dict: dict, overwrite: bool) -> None:
    marker = out / WORK_DIR / "recipe.json"
    fingerprint = recipe_fingerprint(recipe_dict)
    if out.exists() and any(out.iterdir()):
        previous = json.loads(marker.read_text())["fingerprint"] if marker.exists() else None
        if previous != fingerprint:
            if not overwrite:
                what = "a different recipe" if previous else "files that corpusforge did not write"
                raise OutputError(
                    f"output folder {out} holds {what}; choose another --output, or pass --overwrite to replace it"
                )
            shutil.rmtree(out)
    (out / WORK_DIR).mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        tmp = marker.with_name(f".{marker.name}.tmp")  # a kill while writing must not leave a half marker
        tmp.write_text(json.dumps({"fingerprint": fingerprint, "recipe": recipe_dict}, indent=2, ensure_ascii=False))
        os.replace(tmp, marker)


def _watch(progress_dir: Path, logs: Path, tasks: int, total: int | None, callback, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        docs = nbytes = 0
        for f in progress_dir.glob("*.json"):
            try:
                data = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            docs += data.get("docs", 0)
            nbytes += data.get("bytes", 0)
        callback(Progress(docs, nbytes, total, len(completed_tasks(logs)), tasks))


def run(
    recipe: Recipe,
    output: str | Path | None = None,
    overwrite: bool = False,
    progress: Callable[[Progress], None] | None = None,
    report: bool = True,
) -> Result | Submitted:
    """Build the recipe's corpus. Reruns resume: tasks completed earlier are skipped.

    On Slurm, queues every stage and a finalize job and returns a `Submitted` at once.
    ``report`` also writes OUT/report.html (plots; about a second, mostly importing matplotlib)."""
    if output is not None:
        recipe = recipe.model_copy(update={"output": recipe.output.model_copy(update={"path": str(output)})})
    out = Path(recipe.output.path)
    if not isinstance(recipe.executor, LocalExecutor):
        out = out.absolute()  # tasks run from another working directory, maybe on another machine
    preflight(recipe)  # raises before anything is written
    guard_active_jobs(out)  # never two runs of one build: queued Slurm tasks would write the same shards
    recipe_dict = recipe.to_dict()
    _prepare_output(out, recipe_dict, overwrite)
    logs, progress_dir = out / WORK_DIR / "logs", out / WORK_DIR / "progress"
    shutil.rmtree(progress_dir, ignore_errors=True)
    stages = compile_stages(recipe, out, progress_dir)
    started = time.time()
    plan = new_plan(recipe, out, stages, started)
    write_plan(out, plan)
    if isinstance(recipe.executor, SlurmExecutor):
        jobs = submit(recipe, out, stages, plan)
        if jobs is not None:
            return Submitted(out, jobs)
        stages = []  # every task completed in earlier jobs: finalize here
    stop = threading.Event()
    watcher = None
    if progress is not None:
        watcher = threading.Thread(
            target=_watch,
            args=(progress_dir, logs, recipe.executor.tasks, input_bytes(recipe), progress, stop),
            daemon=True,
        )
        watcher.start()
    if not os.environ.get("CORPUSFORGE_VERBOSE"):
        from loguru import logger

        logger.disable("datatrove")
    stop_engine = start_engine(recipe.executor) if stages else (lambda: None)
    try:
        for stage in stages:
            build_executor(recipe.executor, stage.pipeline, stage.logs, tasks=stage.tasks).run()
            missing = sorted(set(range(stage.tasks)) - completed_tasks(stage.logs))
            if missing:
                if recipe.generate is not None:
                    from corpusforge.kd.step import raise_if_failed_requests

                    raise_if_failed_requests(out / WORK_DIR, missing)
                raise RuntimeError(
                    f"stage {stage.name}: tasks {missing} did not complete; see {stage.logs}/logs/ and rerun to resume"
                )
    finally:
        stop_engine()
        stop.set()
        if watcher is not None:
            watcher.join()
    manifest = finalize_build(
        out,
        report=report,
        started_at=started,
        schema=KD_SCHEMA if recipe.generate is not None else CP_SCHEMA,
    )
    return Result(out, manifest)
