"""Recipe `executor:` → datatrove's Local, Slurm or Ray executor. Scale-out plugs in here, not in the steps.

A build is a list of stages (`plan.compile_stages`); each stage is one datatrove executor run over its tasks, and a
task that completed (datatrove's `completions/NNNNN` marker) is never run again — that is what resumes a build.

- local, ray: the stages run from this process, one after the other. A stage starts once every task of the
  previous one completed; a stage with a failed task stops the build and names the tasks to rerun. (datatrove's
  `depends=` would do the same on these executors, but waits for a failed dependency forever, polling every two
  minutes.)
- slurm: every stage is submitted at once as a job array that waits for the previous stage's array
  (`depends=` → `--dependency=afterok:<id>`), plus a last job that finalizes; `corpusforge run` returns as soon as
  they are queued.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib.metadata
import inspect
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datatrove.executor.base import PipelineExecutor
from datatrove.executor.local import LocalPipelineExecutor
from datatrove.executor.slurm import SlurmPipelineExecutor, launch_slurm_job

from corpusforge.corpus.layout import WORK_DIR
from corpusforge.corpus.ledger import Ledger
from corpusforge.errors import BuildFailed, CorpusforgeError
from corpusforge.recipe.executor_config import LocalExecutor, RayExecutor, SlurmExecutor
from corpusforge.runner import workers

ExecutorConfig = LocalExecutor | SlurmExecutor | RayExecutor

# What of datatrove's executors this module relies on beyond their documented use: a task runs through
# `_run_for_rank(rank, local_rank, node_rank=…)` (datatrove >= 0.7), its logger comes from `add_task_logger` in the
# executor's module. Checked here, so an unsupported datatrove fails at import, saying which versions work.
if "node_rank" not in inspect.signature(PipelineExecutor._run_for_rank).parameters:  # pragma: no cover
    raise ImportError(
        f"corpusforge needs datatrove>=0.7 (installed: {importlib.metadata.version('datatrove')}): "
        "pip install -U 'datatrove>=0.7'"
    )


class ExecutorError(CorpusforgeError):
    """The executor cannot start: a missing engine (sbatch, ray), or jobs of this build still queued."""


@dataclass
class SubmittedJob:
    stage: str
    job_id: str | None  # None: nothing left to run in this stage
    tasks: int  # tasks submitted


def completed_tasks(logging_dir: Path) -> set[int]:
    folder = Path(logging_dir) / "completions"
    return {int(p.name) for p in folder.iterdir() if p.name.isdigit()} if folder.is_dir() else set()


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
    logs = ledger.data_folder(logging_dir) if ledger is not None else str(logging_dir)
    if isinstance(config, LocalExecutor):
        if config.workers > 1:
            _preload_forkserver()
        return _LocalStage(
            pipeline=pipeline,
            tasks=tasks,
            workers=min(config.workers, tasks),
            logging_dir=logs,
            skip_completed=True,
        )
    if isinstance(config, RayExecutor):
        return _ray_stage()(
            pipeline=pipeline,
            tasks=tasks,
            workers=min(config.workers or tasks, tasks),
            logging_dir=logs,
            skip_completed=True,
            cpus_per_task=config.cpus_per_task,
            mem_per_cpu_gb=config.mem_per_task_gb / config.cpus_per_task,
            time=config.time_limit_s,
        )
    if isinstance(config, SlurmExecutor):
        return _SlurmStage(
            pipeline=pipeline,
            tasks=tasks,
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
            logging_dir=logs,
            skip_completed=True,
            slurm_logs_folder=str(slurm_logs or Path(logging_dir) / "slurm"),
            requeue=config.requeue,
        )
    raise TypeError(f"unsupported executor {config!r}")


def _preload_forkserver() -> None:
    """datatrove starts worker processes from a fork server; with corpusforge and datatrove imported there once,
    each worker of each stage starts in milliseconds instead of importing them again (about a second each)."""
    import multiprocess

    # workers: each worker ends with the run (it must be imported where they are forked); datasets: the shard writer
    # imports it for the schema's features metadata
    preload = [workers.__name__, "corpusforge.runner.run", "datasets"]
    multiprocess.get_context("forkserver").set_forkserver_preload(preload)


# ------------------------------------------------------------------------------------------------ logging
# datatrove gives every task a log file (OUT/.corpusforge/logs/logs/task_NNNNN.log) and a copy on stderr at INFO.
# The file is where a failed task says why, so it is always written; the console copy (one block per task, which
# buries the progress bar) only with -v (`run(verbose=True)`, carried to every task as the executor's `verbose`).
# Our executors (`_TaskLogs`) swap datatrove's task-logger functions in for the length of each task, in whatever
# process runs it, and restore them after.
_TASK_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"


def _task_logger(logging_dir, rank: int, local_rank: int = 0, node_rank: int = -1, *, verbose: bool = False):
    """datatrove's per-task logging (same file, same format), with the console copy only when verbose."""
    from datatrove.utils.logging import logger

    logger.remove()
    logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
    fmt = (f"[NODE {node_rank}] " if node_rank != -1 else "") + _TASK_FORMAT
    if verbose:
        logger.add(sys.stderr, level="INFO" if local_rank == 0 else "ERROR", format=fmt)
    # catch=False: a log that cannot be written (a full disk) fails the task with that error, instead of loguru
    # printing a traceback per line on the console
    logger.add(logfile, colorize=False, level="DEBUG", format=fmt, catch=False)
    logger.info(f"Launching pipeline for {rank=}")
    return logfile


def _default_logger(verbose: bool = False) -> None:
    """Between tasks and in the driver: datatrove's console output only from WARNING, unless verbose."""
    from datatrove.utils import logging as dt_logging

    dt_logging.logger.remove()
    dt_logging.logger.add(sys.stderr, level="DEBUG" if verbose else "WARNING")


@contextlib.contextmanager
def _task_logging(verbose: bool):
    """While a task runs: our task logger and default console in place of datatrove's (restored afterwards, so a
    datatrove pipeline of the user's own in this process keeps datatrove's behaviour)."""
    from datatrove.utils import logging as dt_logging

    modules = [
        sys.modules[name] for name in ("datatrove.executor.base", "datatrove.executor.ray") if name in sys.modules
    ]
    saved = [(module, module.add_task_logger) for module in modules if hasattr(module, "add_task_logger")]
    saved_default = dt_logging.setup_default_logger
    for module, _ in saved:
        module.add_task_logger = functools.partial(_task_logger, verbose=verbose)
    dt_logging.setup_default_logger = functools.partial(_default_logger, verbose)
    try:
        yield
    finally:
        for module, original in saved:
            module.add_task_logger = original
        dt_logging.setup_default_logger = saved_default


class _TaskLogs:
    """Mixed into our executors: every datatrove executor runs a task through ``_run_for_rank``, in this process
    (one local worker), a worker process, a Slurm job or a Ray actor alike. ``verbose`` travels with the pickled
    executor to wherever the task runs."""

    verbose = False

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        with _task_logging(self.verbose):
            try:
                return super()._run_for_rank(rank, local_rank, node_rank=node_rank)
            except SystemExit as err:
                # sys.exit() in a step: datatrove lets it through, which ends a one-worker run with that exit status
                # ("done", nothing built) and kills a pool worker without an answer (the run waits forever)
                raise RuntimeError(
                    f"a step called sys.exit({err.code!r}) in task {rank}; a step fails a task by raising"
                ) from None


@contextlib.contextmanager
def quiet_console(verbose: bool = False):
    """In the driver, for the life of the stages: datatrove's own console lines only with -v; its default console
    logger again afterwards."""
    from datatrove.utils import logging as dt_logging

    _default_logger(verbose)
    try:
        yield
    finally:
        dt_logging.setup_default_logger()


class _LocalStage(_TaskLogs, LocalPipelineExecutor):
    pass


class _SlurmStage(_TaskLogs, SlurmPipelineExecutor):
    """datatrove's Slurm executor minus the extra job per stage that merges stats: finalize merges them."""

    def launch_merge_stats(self):
        pass


def _ray_stage():
    """datatrove's Ray executor as our class, so that a Ray worker that unpickles it imports this module (and its
    logging set-up) first. Made on first use (Ray is optional), also when a worker looks it up by name."""
    if "_RayStage" not in globals():
        from datatrove.executor.ray import RayPipelineExecutor

        globals()["_RayStage"] = type(
            "_RayStage", (_TaskLogs, RayPipelineExecutor), {"__module__": __name__, "__qualname__": "_RayStage"}
        )
    return globals()["_RayStage"]


def __getattr__(name: str):
    if name == "_RayStage":
        return _ray_stage()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def slurm_env_command(config: SlurmExecutor) -> str:
    """The shell line that sets up Python in each job: the recipe's, else this process's venv, else nothing."""
    if config.env_command:
        return config.env_command
    if config.venv:
        return f"source {shlex.quote(str(Path(config.venv) / 'bin' / 'activate'))}"
    if sys.prefix != sys.base_prefix:
        return f"source {shlex.quote(str(Path(sys.prefix) / 'bin' / 'activate'))}"
    return ""


def run_stage(plan, stage, verbose: bool = False) -> None:
    """Run one stage's incomplete tasks; raise BuildFailed naming each failed task, its log and its last error."""
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
        from corpusforge.kd.step import raise_if_failed_requests

        raise_if_failed_requests(plan.out / WORK_DIR, missing)
    # the first failed task whose log says why: a failing task stops the pool, so the others' logs end mid-task
    logs = {rank: Path(stage.logs) / "logs" / f"task_{rank:05d}.log" for rank in missing}
    shown = next((rank for rank in missing if _has_error(logs[rank])), missing[0])
    first = logs[shown]
    tail = last_error(first)
    if error is not None and str(error) not in tail:  # what the log could not say (an exit, a full disk)
        tail += f"\n  {type(error).__name__}: {error}"
    raise BuildFailed(
        f"stage {stage.name}: {len(missing)} task(s) failed ({', '.join(map(str, missing[:10]))}"
        f"{', …' if len(missing) > 10 else ''}). Task {shown}'s log: {first}\n{tail}\n"
        "Fix the cause and rerun the same command: completed tasks are kept"
    ) from error


def _has_error(log_file: Path) -> bool:
    try:
        return any("| ERROR" in line for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines())
    except OSError:
        return False


def last_error(log_file: Path, lines: int = 12) -> str:
    """The end of a task log, from its last ERROR line (the traceback) where there is one."""
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return f"(no log at {log_file})"
    errors = [i for i, line in enumerate(text) if "| ERROR" in line or "| CRITICAL" in line]
    tail = text[errors[-1] :] if errors else text
    tail = tail[-lines:] if len(tail) > lines else tail
    return "\n".join("  " + line for line in tail) or "(the log is empty)"


# ------------------------------------------------------------------------------------------------ local and ray
def start_engine(config: ExecutorConfig, verbose: bool = False) -> Callable[[], None]:
    """Connect to the executor's engine where it has one (Ray); returns what disconnects."""
    if isinstance(config, RayExecutor) and _connect_ray(config, verbose):
        import ray

        return ray.shutdown
    return lambda: None


def _connect_ray(config: RayExecutor, verbose: bool) -> bool:
    """Connect to (or start) the Ray cluster unless this process already did; True when we started it."""
    try:
        import ray
    except ImportError:
        raise ExecutorError("executor.type 'ray' needs Ray: pip install 'corpusforge[ray]'") from None
    if ray.is_initialized():
        return False
    ray.init(
        address=config.address or os.environ.get("RAY_ADDRESS"),
        include_dashboard=False,
        log_to_driver=verbose,
        configure_logging=verbose,
    )
    return True


# ------------------------------------------------------------------------------------------------ slurm
def _require_sbatch() -> None:
    if shutil.which("sbatch") is None:
        raise ExecutorError(
            "executor.type 'slurm': `sbatch` is not on PATH; run `corpusforge run` on a Slurm login node, "
            "or look at the job scripts first with `corpusforge run RECIPE --dry-run`"
        )


def slurm_chain(
    config: SlurmExecutor, stages: list, slurm_logs: Path, prefix: str, ledger: Ledger | None = None
) -> list:
    """One Slurm executor per stage, each depending on the one before."""
    chain, previous = [], None
    for stage in stages:
        previous = build_executor(
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


def submit_slurm(
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
