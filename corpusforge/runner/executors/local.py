"""The local executor: datatrove's ``LocalPipelineExecutor``, its tasks in this process or in a pool of worker
processes started from a fork server."""

from __future__ import annotations

from pathlib import Path

import multiprocess
from datatrove.executor.local import LocalPipelineExecutor

from corpusforge.corpus.ledger import Ledger
from corpusforge.recipe.executor_config import LocalExecutor
from corpusforge.runner import workers
from corpusforge.runner.executors.base import TaskLogs, logs_folder


class _LocalStage(TaskLogs, LocalPipelineExecutor):
    pass


def local_stage(
    config: LocalExecutor, pipeline: list, logging_dir: Path, tasks: int, ledger: Ledger | None = None
) -> _LocalStage:
    if config.workers > 1:
        _preload_forkserver()
    return _LocalStage(
        pipeline=pipeline,
        tasks=tasks,
        workers=min(config.workers, tasks),
        logging_dir=logs_folder(logging_dir, ledger),
        skip_completed=True,
    )


def _preload_forkserver() -> None:
    """datatrove starts worker processes from a fork server; with corpusforge and datatrove imported there once,
    each worker of each stage starts in milliseconds instead of importing them again (about a second each)."""
    # workers: each worker ends with the run (it must be imported where they are forked); datasets: the shard writer
    # imports it for the schema's features metadata
    preload = [workers.__name__, "corpusforge.runner.run", "datasets"]
    multiprocess.get_context("forkserver").set_forkserver_preload(preload)
