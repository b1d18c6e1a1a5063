"""Slurm: queue a build's stages as dependent job arrays plus a finalize job; refuse a rerun while they are queued;
and the dry run (`corpusforge run --dry-run`) that shows the stages and job scripts without running anything."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from corpusforge.corpus.layout import WORK_DIR
from corpusforge.recipe.executor_config import SlurmExecutor
from corpusforge.recipe.models import Recipe
from corpusforge.runner.executors import (
    ExecutorError,
    SubmittedJob,
    active_slurm_jobs,
    array_script,
    completed_tasks,
    finalize_command,
    finalize_script,
    quiet_console,
    slurm_chain,
    submit_slurm,
)
from corpusforge.runner.output import previous_plan
from corpusforge.runner.plan import compile_plan, write_plan


def slurm_logs_dir(config: SlurmExecutor, out: Path) -> Path:
    return Path(config.logs).absolute() if config.logs else out / WORK_DIR / "slurm"


def job_prefix(recipe: Recipe) -> str:
    return recipe.executor.job_name or f"cf-{recipe.name}"


def guard_active_jobs(out: Path) -> None:
    """Raise while Slurm jobs of an earlier `corpusforge run` of this folder are queued or running."""
    jobs = (previous_plan(out) or {}).get("jobs") or []
    active = active_slurm_jobs([job["job_id"] for job in jobs if job.get("job_id")])
    if active:
        raise ExecutorError(
            f"{out}: Slurm jobs {', '.join(active)} of this build are still queued or running; follow them with "
            f"`corpusforge status {out}`, or cancel them (`scancel {' '.join(active)}`) before running it again"
        )


def submit(plan, verbose: bool = False) -> list[SubmittedJob] | None:
    """Queue the stages' incomplete tasks and a finalize job on Slurm; None when every task already completed."""
    stages, out = plan.stages, plan.out
    if all(set(range(stage.tasks)) <= completed_tasks(stage.logs) for stage in stages):
        return None
    config = plan.recipe.executor
    with quiet_console(verbose):  # datatrove's "launching job" lines; the CLI prints the job ids
        jobs = submit_slurm(config, stages, out, slurm_logs_dir(config, out), job_prefix(plan.recipe), verbose)
    plan.record["jobs"] = [asdict(job) for job in jobs]
    write_plan(out, plan.record)
    return jobs


# ------------------------------------------------------------------------------------------------ dry run
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
