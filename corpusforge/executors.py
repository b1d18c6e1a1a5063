"""Recipe `executor:` → a datatrove executor. Scale-out engines (Slurm, Ray) plug in here, not in the steps."""

from __future__ import annotations

from pathlib import Path

from datatrove.executor.base import PipelineExecutor
from datatrove.executor.local import LocalPipelineExecutor

from corpusforge.recipe.models import LocalExecutor


def build_executor(
    config: LocalExecutor, pipeline: list, logging_dir: Path, tasks: int | None = None
) -> PipelineExecutor:
    """An executor that skips tasks already completed in ``logging_dir`` (that is what makes reruns resume).

    ``tasks`` overrides the recipe's task count for stages with their own (dedup buckets, clusters)."""
    tasks = tasks or config.tasks
    if isinstance(config, LocalExecutor):
        return LocalPipelineExecutor(
            pipeline=pipeline,
            tasks=tasks,
            workers=min(config.workers, tasks),
            logging_dir=str(logging_dir),
            skip_completed=True,
        )
    raise TypeError(f"unsupported executor {config!r}")


def completed_tasks(logging_dir: Path) -> set[int]:
    folder = logging_dir / "completions"
    return {int(p.name) for p in folder.iterdir() if p.name.isdigit()} if folder.is_dir() else set()
