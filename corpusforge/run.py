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
from corpusforge.executors import build_executor, completed_tasks
from corpusforge.recipe.models import Recipe
from corpusforge.shards import ArrowShardWriter, finalize, recipe_fingerprint
from corpusforge.shards.budget import apply_budget
from corpusforge.shards.writer import WORK_DIR
from corpusforge.sources.preflight import fingerprint_inputs, input_bytes, make_readers, preflight, source_name
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
class Stage:
    """One executor run. ``labels`` names each pipeline step in the manifest's funnel (None: internal step)."""

    name: str
    pipeline: list[PipelineStep]
    tasks: int
    logs: Path
    labels: list[str | None]


def compile_stages(recipe: Recipe, out: Path, progress_dir: Path | None = None) -> list[Stage]:
    """The recipe as stages. Without a dedup step: one stage (readers, steps, writer). With one, four stages:
    steps before dedup + signatures → LSH buckets → clusters → dedup filter + steps after it + writer."""
    tasks = recipe.executor.tasks
    work = out / WORK_DIR
    readers = make_readers(recipe, str(progress_dir) if progress_dir else None)
    read_labels = [f"read:{source_name(s, i)}" for i, s in enumerate(recipe.sources)]
    calls = list(recipe.steps)
    cut = next((i for i, call in enumerate(calls) if call.name == "dedup"), None)
    writer = ArrowShardWriter(str(out), batch_rows=recipe.output.batch_rows)
    if cut is None:
        steps = [get_step(call.name).create(call.params) for call in calls]
        labels = read_labels + [call.name for call in calls] + ["write"]
        return [Stage("build", [*readers, *steps, writer], tasks, work / "logs", labels)]

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
            [ShardReader(intermediate, tasks), parts["filter"], *after, writer],
            tasks,
            work / "logs",
            [None, "dedup"] + [call.name for call in calls[cut + 1 :]] + ["write"],
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
        marker.write_text(
            json.dumps({"fingerprint": fingerprint, "recipe": recipe_dict}, indent=2, ensure_ascii=False)
        )


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


def _write_report(out: Path) -> None:
    """The HTML report is a convenience: a plotting failure must not fail a finished build."""
    from corpusforge.report import write_report

    try:
        write_report(out)
    except Exception as err:  # noqa: BLE001
        log.warning(
            "the build is complete, but its report failed (%s: %s); retry with `corpusforge report %s`",
            type(err).__name__,
            err,
            out,
        )


def run(
    recipe: Recipe,
    output: str | Path | None = None,
    overwrite: bool = False,
    progress: Callable[[Progress], None] | None = None,
    report: bool = True,
) -> Result:
    """Build the recipe's corpus. Reruns resume: tasks completed earlier are skipped.

    ``report`` also writes OUT/report.html (plots; about a second, mostly importing matplotlib)."""
    if output is not None:
        recipe = recipe.model_copy(update={"output": recipe.output.model_copy(update={"path": str(output)})})
    out = Path(recipe.output.path)
    preflight(recipe)  # raises before anything is written
    recipe_dict = recipe.to_dict()
    _prepare_output(out, recipe_dict, overwrite)
    logs, progress_dir = out / WORK_DIR / "logs", out / WORK_DIR / "progress"
    shutil.rmtree(progress_dir, ignore_errors=True)
    stages = compile_stages(recipe, out, progress_dir)
    started = time.time()
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
    try:
        for stage in stages:
            build_executor(recipe.executor, stage.pipeline, stage.logs, tasks=stage.tasks).run()
            missing = sorted(set(range(stage.tasks)) - completed_tasks(stage.logs))
            if missing:
                raise RuntimeError(
                    f"stage {stage.name}: tasks {missing} did not complete; see {stage.logs}/logs/ and rerun to resume"
                )
    finally:
        stop.set()
        if watcher is not None:
            watcher.join()
    budget = apply_budget(out, recipe.executor.tasks, recipe.budget) if recipe.budget else None
    manifest = finalize(
        out,
        recipe.executor.tasks,
        recipe_dict,
        [(stage.logs, stage.tasks, stage.labels) for stage in stages],
        fingerprint_inputs(recipe),
        started_at=started,
        budget=budget,
    )
    if report:
        _write_report(out)
    return Result(out, manifest)
