"""The Slurm executor: every stage of a build queued at once as a job array (datatrove's
``SlurmPipelineExecutor``) that waits for the previous stage's array (``--dependency=afterok:<id>``), then a last
job that finalizes; the job scripts; and the guard that refuses a rerun while a build's jobs are still queued."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from datatrove.executor.slurm import SlurmPipelineExecutor, launch_slurm_job

from corpusforge.corpus.layout import WORK_DIR
from corpusforge.corpus.ledger import Ledger
from corpusforge.recipe.executor_config import SlurmExecutor
from corpusforge.recipe.models import Recipe
from corpusforge.runner.executors.base import ExecutorError, TaskLogs, completed_tasks, logs_folder, quiet_console
from corpusforge.runner.output import previous_plan
from corpusforge.runner.plan import write_plan


@dataclass
class SubmittedJob:
    stage: str
    job_id: str | None  # None: nothing left to run in this stage
    tasks: int  # tasks submitted


class _SlurmStage(TaskLogs, SlurmPipelineExecutor):
    """datatrove's Slurm executor minus the extra job per stage that merges stats: finalize merges them."""

    def launch_merge_stats(self):
        pass


def slurm_stage(
    config: SlurmExecutor,
    pipeline: list,
    logging_dir: Path,
    tasks: int | None = None,
    *,
    name: str = "build",
    depends: SlurmPipelineExecutor | None = None,
    slurm_logs: Path | None = None,
    ledger: Ledger | None = None,
) -> _SlurmStage:
    """One stage as a job array named ``name``, after ``depends`` (the previous stage's executor)."""
    return _SlurmStage(
        pipeline=pipeline,
        tasks=tasks or config.tasks,
        time=config.time,
        partition=config.partition,
        cpus_per_task=config.cpus_per_task,
        mem_per_cpu_gb=config.mem_per_cpu_gb,
        workers=config.workers or -1,
        job_name=name,
        qos=config.qos,
        env_command=slurm_env_command(config),
        sbatch_args=dict(config.sbatch_args),
        max_array_size=config.max_array_size,
        depends=depends,
        logging_dir=logs_folder(logging_dir, ledger),
        skip_completed=True,
        slurm_logs_folder=str(slurm_logs or Path(logging_dir) / "slurm"),
        requeue=config.requeue,
    )


def slurm_env_command(config: SlurmExecutor) -> str:
    """The shell line that sets up Python in each job: the recipe's, else this process's venv, else nothing."""
    if config.env_command:
        return config.env_command
    if config.venv:
        return f"source {shlex.quote(str(Path(config.venv) / 'bin' / 'activate'))}"
    if sys.prefix != sys.base_prefix:
        return f"source {shlex.quote(str(Path(sys.prefix) / 'bin' / 'activate'))}"
    return ""


def slurm_logs_dir(config: SlurmExecutor, out: Path) -> Path:
    return Path(config.logs).absolute() if config.logs else out / WORK_DIR / "slurm"


def job_prefix(recipe: Recipe) -> str:
    return recipe.executor.job_name or f"cf-{recipe.name}"


def slurm_chain(
    config: SlurmExecutor, stages: list, slurm_logs: Path, prefix: str, ledger: Ledger | None = None
) -> list[_SlurmStage]:
    """One Slurm executor per stage, each depending on the one before."""
    chain, previous = [], None
    for stage in stages:
        previous = slurm_stage(
            config,
            stage.pipeline,
            stage.logs,
            tasks=stage.tasks,
            name=f"{prefix}-{stage.name}",
            depends=previous,
            slurm_logs=slurm_logs / stage.name,
            ledger=ledger,
        )
        chain.append(previous)
    return chain


# ------------------------------------------------------------------------------------------------ job scripts
def array_script(executor) -> str:
    """The sbatch script datatrove's `launch_job` writes for ``executor``'s incomplete tasks (for --dry-run)."""
    incomplete = len(executor.get_incomplete_ranks())
    max_array = min(max(incomplete, 1), executor.max_array_size)
    run_line = (
        f"srun  -l -n {executor.nodes_per_task} launch_pickled_pipeline "
        f"{executor.logging_dir.resolve_paths('executor.pik')}"
    )
    return executor.get_launch_file_contents(executor.get_sbatch_args(max_array), run_line)


def finalize_script(last, command: str, slurm_logs: Path, prefix: str) -> str:
    """A one-task job (same partition, account, environment as the stages) that runs ``command``."""
    args = last.get_sbatch_args(1)
    args.pop("array", None)
    log_file = str(slurm_logs / "finalize_%j.out")
    args.update({"job-name": f"{prefix}-finalize", "cpus-per-task": 1, "output": log_file, "error": log_file})
    return last.get_launch_file_contents(args, command)


def finalize_command(out: Path, config: SlurmExecutor) -> str:
    # with an environment set up in the job, `python` is that environment's; else the one submitting
    python = "python" if slurm_env_command(config) else shlex.quote(sys.executable)
    return f"{python} -m corpusforge.cli finalize {shlex.quote(str(out))}"


# ------------------------------------------------------------------------------------------------ queueing
def _require_sbatch() -> None:
    if shutil.which("sbatch") is None:
        raise ExecutorError(
            "executor.type 'slurm': `sbatch` is not on PATH; run `corpusforge run` on a Slurm login node, "
            "or look at the job scripts first with `corpusforge run RECIPE --dry-run`"
        )


def submit(plan, verbose: bool = False) -> list[SubmittedJob] | None:
    """Queue the stages' incomplete tasks and a finalize job on Slurm; None when every task already completed."""
    stages, out = plan.stages, plan.out
    if all(set(range(stage.tasks)) <= completed_tasks(stage.logs) for stage in stages):
        return None
    config = plan.recipe.executor
    with quiet_console(verbose):  # datatrove's "launching job" lines; the CLI prints the job ids
        jobs = _submit_chain(config, stages, out, slurm_logs_dir(config, out), job_prefix(plan.recipe), verbose)
    plan.record["jobs"] = [asdict(job) for job in jobs]
    write_plan(out, plan.record)
    return jobs


def _submit_chain(
    config: SlurmExecutor, stages: list, out: Path, slurm_logs: Path, prefix: str, verbose: bool = False
) -> list[SubmittedJob]:
    """Queue every stage with its incomplete tasks, then the finalize job; returns at once."""
    _require_sbatch()
    ledger = Ledger(out)
    if slurm_logs.is_relative_to(out.absolute()):  # written by Slurm itself, not through the ledger: the folder is
        ledger.record_folder(slurm_logs)  # recorded whole, before any job can write into it
    chain = slurm_chain(config, stages, slurm_logs, prefix, ledger)
    pending = [len(ex.get_incomplete_ranks()) for ex in chain]
    for executor in chain:
        executor.verbose = verbose  # pickled into each job with the executor
    chain[-1].launch_job()  # datatrove launches the dependencies first, each with --dependency=afterok:<previous>
    jobs = [
        SubmittedJob(stage.name, str(ex.job_id) if ex.job_id not in (None, -1) else None, n)
        for stage, ex, n in zip(stages, chain, pending)
    ]
    last_id = next((job.job_id for job in reversed(jobs) if job.job_id), None)
    script = finalize_script(chain[-1], finalize_command(out, config), slurm_logs, prefix)
    ledger.write(slurm_logs / "finalize.slurm", script)
    args = [f"--dependency=afterok:{last_id}"] if last_id else []
    jobs.append(SubmittedJob("finalize", str(launch_slurm_job(script, chain[-1].job_id_retriever, *args)), 1))
    return jobs


def active_slurm_jobs(job_ids: list[str]) -> list[str]:
    """Those of ``job_ids`` still pending or running (empty when `squeue` is unavailable)."""
    if not job_ids or shutil.which("squeue") is None:
        return []
    try:
        listed = subprocess.run(
            ["squeue", "--noheader", "--format=%F"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.split()
    except (subprocess.SubprocessError, OSError):
        return []
    return [job for job in job_ids if job in set(listed)]


def guard_active_jobs(out: Path) -> None:
    """Raise while Slurm jobs of an earlier `corpusforge run` of this folder are queued or running."""
    jobs = (previous_plan(out) or {}).get("jobs") or []
    active = active_slurm_jobs([job["job_id"] for job in jobs if job.get("job_id")])
    if active:
        raise ExecutorError(
            f"{out}: Slurm jobs {', '.join(active)} of this build are still queued or running; follow them with "
            f"`corpusforge status {out}`, or cancel them (`scancel {' '.join(active)}`) before running it again"
        )
