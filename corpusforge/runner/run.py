"""Run a build: compile the plan, take the output folder, execute the stages on the recipe's executor, finalize.

result = corpusforge.run(corpusforge.Recipe.from_yaml("recipes/quickstart.yaml"))
ds = result.load()
"""

from __future__ import annotations

import ast
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from corpusforge.corpus.ledger import Ledger
from corpusforge.errors import OutputError, RecipeError
from corpusforge.recipe.executor_config import LocalExecutor, SlurmExecutor
from corpusforge.recipe.models import Recipe
from corpusforge.runner.executors import (
    SubmittedJob,
    completed_tasks,
    guard_active_jobs,
    quiet_console,
    run_stage,
    start_engine,
    submit,
)
from corpusforge.runner.finalize import finalize_build
from corpusforge.runner.inputs import input_bytes
from corpusforge.runner.output import BuildLock, check_output, previous_plan, remove_build
from corpusforge.runner.plan import BuildPlan, compile_plan, resume_problems, write_plan
from corpusforge.runner.remote import check_remote, upload_id
from corpusforge.shards.writer import CP_SCHEMA, kd_schema

log = logging.getLogger("corpusforge.runner")


@dataclass
class Progress:
    docs: int
    bytes: int
    total_bytes: int | None
    tasks_done: int
    tasks: int
    requests: int = 0  # KD: requests sent to the model, answers replayed from the cache, tokens generated
    replayed: int = 0
    tokens: int = 0


@dataclass
class Result:
    """A finished build: the output folder (or fsspec URL) and its manifest; ``staging`` is the folder a URL's
    build ran in (None for a local output)."""

    path: Path | str
    manifest: dict
    staging: Path | None = None

    def load(self):
        """The corpus as a memory-mapped ``datasets.Dataset`` (a URL's: from the staging folder, the same files)."""
        import datasets

        return datasets.load_from_disk(str(self.staging or self.path))

    def push_to_hub(
        self,
        repo_id: str,
        private: bool = False,
        revision: str | None = None,
        license: str = "unknown",
        token: str | None = None,
        commit_message: str | None = None,
        create_pr: bool = False,
    ) -> str:
        """Upload as Parquet with a dataset card, in one commit (or a pull request); returns its URL."""
        from corpusforge.publish import publish

        return publish(
            self.staging or self.path,
            repo_id,
            private=private,
            revision=revision,
            license=license,
            token=token,
            commit_message=commit_message,
            create_pr=create_pr,
        )

    def scan(self):
        """The corpus as a polars LazyFrame."""
        from corpusforge.shards import scan

        return scan(self.staging or self.path)


@dataclass
class Submitted:
    """A build queued on Slurm: its output folder and jobs. `corpusforge status OUT` follows it; the last job
    finalizes it (or rerun `corpusforge run`, or `corpusforge finalize OUT`, once every stage is done)."""

    path: Path
    jobs: list[SubmittedJob]


def _claim(plan: BuildPlan, overwrite: bool) -> None:
    """Under the lock: resume the build in the folder if it is this one; else replace it (``overwrite``) or refuse.

    Never touches a file corpusforge did not write (``check_output`` refuses such a folder first)."""
    out = plan.out
    previous = check_output(out)
    problems = resume_problems(previous, plan.record) if previous is not None else []
    if problems and not overwrite:
        raise OutputError(
            f"output folder {out} holds another build: {'; '.join(problems)}. Resuming it would mix old "
            "and new rows, so nothing was changed: rerun with --overwrite to rebuild it (removes only what "
            "corpusforge wrote there), or choose another --output"
        )
    if previous is None or problems:
        if problems:
            log.info("rebuilding %s: %s", out, "; ".join(problems))
        remove_build(out)  # the previous build's work files; its corpus stays readable until this one's replaces it
    else:
        plan.record["jobs"] = previous.get("jobs") or []
    write_plan(out, plan.record)


def _unguarded_main_call() -> int | None:
    """The line of the running script's top-level code that is calling run() outside an ``if __name__ ==
    '__main__':`` block (None: called from elsewhere, or guarded)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not Path(path).is_file():
        return None  # an interactive session, a notebook: no script for the workers to import
    if (getattr(getattr(main, "__spec__", None), "name", None) or "").startswith("corpusforge"):
        return None  # `python -m corpusforge.cli`: corpusforge's own entry point, not a user's script
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == "<module>" and frame.f_globals is vars(main)):
        frame = frame.f_back
    if frame is None:
        return None
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (SyntaxError, ValueError, OSError):
        return None
    for node in tree.body:
        if node.lineno <= frame.f_lineno <= (node.end_lineno or node.lineno):
            guarded = isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
            return None if guarded else frame.f_lineno
    return None


def _continues_upload(staging: Path, record: dict, replaces: str | None) -> bool:
    """Whether this run goes on with a replacement an earlier run of the same build was started to do with
    --overwrite (and was stopped before its upload finished)."""
    earlier = previous_plan(staging)
    return earlier is not None and earlier.get("replaces") == replaces and not resume_problems(earlier, record)


def _watch(plan: BuildPlan, callback, stop: threading.Event) -> None:
    # tasks of every stage (a dedup build has four): the count moves through the whole build, not its last stage
    tasks = sum(stage.tasks for stage in plan.stages)
    total = input_bytes(plan.record["inputs"])
    while True:
        stopped = stop.wait(0.5)
        sums = dict.fromkeys(("docs", "bytes", "requests", "replayed", "tokens"), 0)
        for f in plan.progress_dir.glob("*.json"):
            try:
                data = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            for key in sums:
                sums[key] += data.get(key, 0)
        kd = {k: sums[k] for k in ("requests", "replayed", "tokens")}
        done = sum(len(completed_tasks(stage.logs)) for stage in plan.stages)
        callback(Progress(sums["docs"], sums["bytes"], total, done, tasks, **kd))
        if stopped:  # one last report after the stages: the bar ends on what was done
            return


def run(
    recipe: Recipe,
    output: str | Path | None = None,
    overwrite: bool = False,
    progress: Callable[[Progress], None] | None = None,
    report: bool = True,
    verbose: bool = False,
) -> Result | Submitted:
    """Build the recipe's corpus. Rerunning the same build resumes it: tasks completed earlier are skipped.

    A folder that holds another build (other recipe, changed inputs or plugins) is refused, naming what changed,
    unless ``overwrite``; a folder with files corpusforge did not write is always refused. A second run on the
    same folder while one is running is refused at once (``BuildLockedError``, naming the running one).
    On Slurm, queues every stage and a finalize job and returns a `Submitted` at once.
    ``report`` also writes OUT/report.html (about 0.2 s, most of it one polars pass over the shards); ``verbose`` copies
    datatrove's per-task logs to the console (they are always written to the task log files)."""
    line = _unguarded_main_call()
    if line is not None and isinstance(recipe.executor, LocalExecutor) and recipe.executor.workers > 1:
        raise RecipeError(
            [
                (
                    ("executor", "workers"),
                    f"corpusforge.run() is called at line {line} of your script outside `if __name__ == "
                    "'__main__':`; worker processes start by importing the script, so each would run the build "
                    "again. Put the call under that guard (or use workers: 1)",
                )
            ]
        )
    plan = compile_plan(recipe, output, progress=True)  # raises on bad input before anything is written
    out = plan.out
    if plan.remote is not None:  # refuse a foreign prefix, or another build there, before doing any work
        previous = check_remote(plan.remote)
        problems = resume_problems(previous, plan.record) if previous is not None else []
        # what this build may replace there: the upload refuses anything another build put there meanwhile
        replaces = upload_id(previous) if problems else None
        if problems and not overwrite and not _continues_upload(out, plan.record, replaces):
            raise OutputError(
                f"output {plan.remote} holds another build: {'; '.join(problems)}. Nothing was changed: rerun with "
                "--overwrite to replace it (removes only what corpusforge uploaded there), or choose another --output"
            )
        plan.record["replaces"] = replaces
    check_output(out)  # refuse a foreign folder before creating anything in it
    guard_active_jobs(out)  # never two runs of one build: queued Slurm tasks would write the same shards
    with BuildLock(out):
        # a URL's default staging folder is corpusforge's cache, not the user's output: another build in it (for a
        # URL emptied since, a memory:// store of an ended process) is replaced; the URL's own rules were checked above
        _claim(plan, overwrite or (plan.remote is not None and plan.recipe.output.staging is None))
        counts = plan.progress_dir.relative_to(out).as_posix() + "/"
        Ledger(out).remove(lambda rel: rel.startswith(counts))  # an earlier run's progress counts
        stages = plan.stages
        if isinstance(plan.recipe.executor, SlurmExecutor):
            jobs = submit(plan, verbose)
            if jobs is not None:
                return Submitted(out, jobs)
            stages = []  # every task completed in earlier jobs: finalize here
        stop = threading.Event()
        watcher = None
        if progress is not None:
            watcher = threading.Thread(target=_watch, args=(plan, progress, stop), daemon=True)
            watcher.start()
        started = time.time()
        stop_engine = start_engine(plan.recipe.executor, verbose) if stages else (lambda: None)
        try:
            with quiet_console(verbose):
                for stage in stages:
                    run_stage(plan, stage, verbose)
        finally:
            stop_engine()
            stop.set()
            if watcher is not None:
                watcher.join()
        log.info("stages done in %.1f s; finalizing %s", time.time() - started, out)
        manifest = finalize_build(
            out,
            report=report,
            started_at=plan.record["started_at"],
            schema=kd_schema(plan.recipe.generate) if plan.recipe.generate is not None else CP_SCHEMA,
            locked=True,
        )
    if plan.remote is not None:
        return Result(plan.remote, manifest, staging=out)
    return Result(out, manifest)
