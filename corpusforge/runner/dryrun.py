"""The dry run (`corpusforge run --dry-run`), for every executor: the stages, their tasks and logs, and on Slurm the
job scripts that would be submitted, without running anything or writing into the output folder."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from corpusforge.recipe.executor_config import SlurmExecutor
from corpusforge.recipe.models import Recipe
from corpusforge.runner.executors import completed_tasks
from corpusforge.runner.executors.slurm import (
    array_script,
    finalize_command,
    finalize_script,
    job_prefix,
    slurm_chain,
    slurm_logs_dir,
)
from corpusforge.runner.plan import compile_plan


@dataclass
class PlannedStage:
    name: str
    tasks: int
    pending: int  # tasks not completed by an earlier run
    logs: str
    script: str | None = None  # Slurm: the job script that would be submitted


@dataclass
class DryRun:
    out: Path
    executor: str
    workers: str
    stages: list[PlannedStage]
    slurm_logs: Path | None = None
    scripts_dir: Path | None = None  # Slurm: where the job scripts were written (a temporary folder)
    remote: str | None = None  # a URL output: finalize uploads there (``out`` is the staging folder)


def plan_build(recipe: Recipe, output: str | Path | None = None, scripts_dir: str | Path | None = None) -> DryRun:
    """The build `run` would do: stages, tasks, executor, logs, and on Slurm the job scripts (written to
    ``scripts_dir``, default a new temporary folder). Writes nothing into the output folder."""
    plan = compile_plan(recipe, output)
    recipe, out, stages = plan.recipe, plan.out, plan.stages
    config = recipe.executor
    planned = [
        PlannedStage(s.name, s.tasks, len(set(range(s.tasks)) - completed_tasks(s.logs)), str(s.logs)) for s in stages
    ]
    workers = str(config.workers or "all")
    if not isinstance(config, SlurmExecutor):
        return DryRun(out, config.type, workers, planned, remote=plan.remote)

    scripts = Path(scripts_dir) if scripts_dir else Path(tempfile.mkdtemp(prefix="corpusforge-dry-run-"))
    scripts.mkdir(parents=True, exist_ok=True)
    real_logs, scratch_logs = slurm_logs_dir(config, out), scripts / "slurm-logs"
    prefix = job_prefix(recipe)
    # datatrove creates the Slurm log folder when it renders a script: render against a scratch folder
    chain = slurm_chain(config, stages, scratch_logs, prefix)
    for stage, executor in zip(planned, chain):
        path = scripts / f"{stage.name}.slurm"
        path.write_text(array_script(executor).replace(str(scratch_logs), str(real_logs)))
        stage.script = str(path)
    final = finalize_script(chain[-1], finalize_command(out, config), scratch_logs, prefix)
    (scripts / "finalize.slurm").write_text(final.replace(str(scratch_logs), str(real_logs)))
    planned.append(PlannedStage("finalize", 1, 1, str(real_logs), str(scripts / "finalize.slurm")))
    shutil.rmtree(scratch_logs, ignore_errors=True)
    return DryRun(out, config.type, workers, planned, real_logs, scripts, remote=plan.remote)
