"""Recipe `executor:` → datatrove's Local, Slurm or Ray executor. Scale-out plugs in here, not in the steps.

A build is a list of stages (`plan.compile_stages`); each stage is one datatrove executor run over its tasks, and a
task that completed (datatrove's `completions/NNNNN` marker) is never run again — that is what resumes a build.

- local, ray: the stages run from this process, one after the other (``run_stage``). A stage starts once every task
  of the previous one completed; a stage with a failed task stops the build and names the tasks to rerun.
  (datatrove's `depends=` would do the same on these executors, but waits for a failed dependency forever, polling
  every two minutes.)
- slurm: every stage is submitted at once as a job array that waits for the previous stage's array
  (`depends=` → `--dependency=afterok:<id>`), plus a last job that finalizes (``submit``); `corpusforge run`
  returns as soon as they are queued.

One module per engine (``local``, ``slurm``, ``ray``); what they share (task logs, completion markers, the
executor error) is in ``base``.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

from datatrove.executor.base import PipelineExecutor

from corpusforge.corpus.layout import WORK_DIR
from corpusforge.corpus.ledger import Ledger
from corpusforge.errors import BuildFailed, CorpusforgeError
from corpusforge.kd.step import raise_if_failed_requests
from corpusforge.recipe.executor_config import LocalExecutor, RayExecutor, SlurmExecutor
from corpusforge.runner.executors.base import (
    ExecutorConfig,
    ExecutorError,
    completed_tasks,
    has_error,
    last_error,
    quiet_console,
)
from corpusforge.runner.executors.local import local_stage
from corpusforge.runner.executors.ray import ray_stage, start_ray
from corpusforge.runner.executors.slurm import (
    SubmittedJob,
    active_slurm_jobs,
    guard_active_jobs,
    slurm_stage,
    submit,
)

__all__ = [
    "ExecutorConfig",
    "ExecutorError",
    "SubmittedJob",
    "active_slurm_jobs",
    "build_executor",
    "completed_tasks",
    "guard_active_jobs",
    "last_error",
    "quiet_console",
    "run_stage",
    "start_engine",
    "submit",
]


def build_executor(
    config: ExecutorConfig,
    pipeline: list,
    logging_dir: Path,
    tasks: int | None = None,
    *,
    name: str = "build",
    depends: PipelineExecutor | None = None,
    slurm_logs: Path | None = None,
    ledger: Ledger | None = None,
) -> PipelineExecutor:
    """An executor that skips tasks already completed in ``logging_dir`` (that is what makes reruns resume).

    ``tasks`` overrides the recipe's task count for stages with their own (dedup buckets, clusters); ``name``
    names the stage's Slurm job; ``depends`` is the previous stage's Slurm executor; ``ledger`` records every file
    datatrove writes in ``logging_dir`` (task logs, stats, completion markers) as the build's own."""
    tasks = tasks or config.tasks
    if isinstance(config, LocalExecutor):
        return local_stage(config, pipeline, logging_dir, tasks, ledger)
    if isinstance(config, RayExecutor):
        return ray_stage(config, pipeline, logging_dir, tasks, ledger)
    if isinstance(config, SlurmExecutor):
        return slurm_stage(
            config, pipeline, logging_dir, tasks, name=name, depends=depends, slurm_logs=slurm_logs, ledger=ledger
        )
    raise TypeError(f"unsupported executor {config!r}")


def start_engine(config: ExecutorConfig, verbose: bool = False) -> Callable[[], None]:
    """Connect to the executor's engine where it has one (Ray); returns what disconnects."""
    if isinstance(config, RayExecutor):
        return start_ray(config, verbose)
    return lambda: None


def run_stage(plan, stage, verbose: bool = False) -> None:
    """Run one stage's incomplete tasks (local, ray); raise BuildFailed naming each failed task, its log and its
    last error."""
    error = None
    try:
        executor = build_executor(
            plan.recipe.executor, stage.pipeline, stage.logs, tasks=stage.tasks, ledger=Ledger(plan.out)
        )
        executor.verbose = verbose
        executor.run()
    except (CorpusforgeError, KeyboardInterrupt):
        raise
    except Exception as err:  # a task's exception, re-raised by the local executor's pool: its log has the rest
        error = err
    missing = sorted(set(range(stage.tasks)) - completed_tasks(stage.logs))
    if not missing:
        if error is not None:
            raise error
        return
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        raise error  # the environment's, not the build's: one line, naming the file (cli.common)
    if plan.recipe.generate is not None:
        raise_if_failed_requests(plan.out / WORK_DIR, missing)
    # the first failed task whose log says why: a failing task stops the pool, so the others' logs end mid-task
    logs = {rank: Path(stage.logs) / "logs" / f"task_{rank:05d}.log" for rank in missing}
    shown = next((rank for rank in missing if has_error(logs[rank])), missing[0])
    first = logs[shown]
    tail = last_error(first)
    if error is not None and str(error) not in tail:  # what the log could not say (an exit, a full disk)
        tail += f"\n  {type(error).__name__}: {error}"
    raise BuildFailed(
        f"stage {stage.name}: {len(missing)} task(s) failed ({', '.join(map(str, missing[:10]))}"
        f"{', …' if len(missing) > 10 else ''}). Task {shown}'s log: {first}\n{tail}\n"
        "Fix the cause and rerun the same command: completed tasks are kept"
    ) from error
