"""The Ray executor: datatrove's ``RayPipelineExecutor`` on a running Ray cluster (or one started here). Ray is
optional (``pip install 'corpusforge[ray]'``): it is imported on first use, never when this module is."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from corpusforge.corpus.ledger import Ledger
from corpusforge.recipe.executor_config import RayExecutor
from corpusforge.runner.executors.base import ExecutorError, TaskLogs, logs_folder


def ray_stage(config: RayExecutor, pipeline: list, logging_dir: Path, tasks: int, ledger: Ledger | None = None):
    return _ray_stage()(
        pipeline=pipeline,
        tasks=tasks,
        workers=min(config.workers or tasks, tasks),
        logging_dir=logs_folder(logging_dir, ledger),
        skip_completed=True,
        cpus_per_task=config.cpus_per_task,
        mem_per_cpu_gb=config.mem_per_task_gb / config.cpus_per_task,
        time=config.time_limit_s,
    )


def _ray_stage():
    """datatrove's Ray executor as our class, so that a Ray worker that unpickles it imports this module (and its
    logging set-up) first. Made on first use (Ray is optional), also when a worker looks it up by name."""
    if "_RayStage" not in globals():
        from datatrove.executor.ray import RayPipelineExecutor  # only a Ray build needs it (Ray: an optional extra)

        globals()["_RayStage"] = type(
            "_RayStage", (TaskLogs, RayPipelineExecutor), {"__module__": __name__, "__qualname__": "_RayStage"}
        )
    return globals()["_RayStage"]


def __getattr__(name: str):
    # a Ray worker unpickling a stage looks up `<this module>._RayStage` before anything here made it
    if name == "_RayStage":
        return _ray_stage()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def start_ray(config: RayExecutor, verbose: bool = False) -> Callable[[], None]:
    """Connect to (or start) the Ray cluster; returns what disconnects (nothing when this process was connected
    already)."""
    try:
        import ray  # optional extra, heavy: imported only for a Ray build
    except ImportError:
        raise ExecutorError("executor.type 'ray' needs Ray: pip install 'corpusforge[ray]'") from None
    if ray.is_initialized():
        return lambda: None
    ray.init(
        address=config.address or os.environ.get("RAY_ADDRESS"),
        include_dashboard=False,
        log_to_driver=verbose,
        configure_logging=verbose,
    )
    return ray.shutdown
