"""What every engine shares: the datatrove hook our executors rely on (checked at import), the executor error,
completion markers, and task logs (the logger datatrove gives each task, swapped for ours, and reading a failed
task's log)."""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import inspect
import sys
from pathlib import Path

from datatrove.executor.base import PipelineExecutor
from datatrove.utils import logging as dt_logging

from corpusforge.corpus.ledger import Ledger
from corpusforge.errors import CorpusforgeError
from corpusforge.recipe.executor_config import LocalExecutor, RayExecutor, SlurmExecutor

ExecutorConfig = LocalExecutor | SlurmExecutor | RayExecutor

# What of datatrove's executors this package relies on beyond their documented use: a task runs through
# `_run_for_rank(rank, local_rank, node_rank=…)` (datatrove >= 0.7), its logger comes from `add_task_logger` in the
# executor's module. Checked here, so an unsupported datatrove fails at import, saying which versions work.
if "node_rank" not in inspect.signature(PipelineExecutor._run_for_rank).parameters:  # pragma: no cover
    raise ImportError(
        f"corpusforge needs datatrove>=0.7 (installed: {importlib.metadata.version('datatrove')}): "
        "pip install -U 'datatrove>=0.7'"
    )


class ExecutorError(CorpusforgeError):
    """The executor cannot start: a missing engine (sbatch, ray), or jobs of this build still queued."""


def completed_tasks(logging_dir: Path) -> set[int]:
    folder = Path(logging_dir) / "completions"
    return {int(p.name) for p in folder.iterdir() if p.name.isdigit()} if folder.is_dir() else set()


def logs_folder(logging_dir: Path, ledger: Ledger | None):
    """A stage's datatrove logging folder; through ``ledger``, every file datatrove writes there (task logs, stats,
    completion markers) is recorded as the build's own."""
    return ledger.data_folder(logging_dir) if ledger is not None else str(logging_dir)


# ------------------------------------------------------------------------------------------------ logging
# datatrove gives every task a log file (OUT/.corpusforge/logs/logs/task_NNNNN.log) and a copy on stderr at INFO.
# The file is where a failed task says why, so it is always written; the console copy (one block per task, which
# buries the progress bar) only with -v (`run(verbose=True)`, carried to every task as the executor's `verbose`).
# Our executors (`TaskLogs`) swap datatrove's task-logger functions in for the length of each task, in whatever
# process runs it, and restore them after.
_TASK_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"


def _task_logger(logging_dir, rank: int, local_rank: int = 0, node_rank: int = -1, *, verbose: bool = False):
    """datatrove's per-task logging (same file, same format), with the console copy only when verbose."""
    logger = dt_logging.logger
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
    dt_logging.logger.remove()
    dt_logging.logger.add(sys.stderr, level="DEBUG" if verbose else "WARNING")


@contextlib.contextmanager
def _task_logging(verbose: bool):
    """While a task runs: our task logger and default console in place of datatrove's (restored afterwards, so a
    datatrove pipeline of the user's own in this process keeps datatrove's behaviour)."""
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


class TaskLogs:
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
    _default_logger(verbose)
    try:
        yield
    finally:
        dt_logging.setup_default_logger()


def has_error(log_file: Path) -> bool:
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
