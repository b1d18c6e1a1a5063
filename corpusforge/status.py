"""Where a build stands, read from its output folder alone, and the step that finishes it.

`run` records the build's plan in ``OUT/.corpusforge/plan.json`` (stages, their tasks and log folders, the
resolved recipe, input fingerprints, Slurm job ids) before any task runs. From it and datatrove's per-task
completion markers, `build_status` says which tasks of which stage are done, and `finalize_build` — budget,
`state.json`, `dataset_info.json`, `manifest.json`, report — runs once every stage is complete: at the end of a
local or Ray run, in the last Slurm job, or from `corpusforge finalize OUT`. Finalizing twice gives the same
corpus; it needs neither the recipe file nor the plugins its steps came from.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa

from corpusforge.errors import OutputError
from corpusforge.executors import (
    ExecutorError,
    SubmittedJob,
    active_slurm_jobs,
    array_script,
    completed_tasks,
    finalize_command,
    finalize_script,
    slurm_chain,
    submit_slurm,
)
from corpusforge.recipe.models import LocalExecutor, Recipe, SlurmExecutor
from corpusforge.shards.finalize import recipe_fingerprint
from corpusforge.shards.writer import WORK_DIR, shard_name

PLAN = "plan.json"
log = logging.getLogger("corpusforge.status")


def plan_path(out: Path) -> Path:
    return Path(out) / WORK_DIR / PLAN


def write_plan(out: Path, plan: dict) -> None:
    path = plan_path(out)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(plan, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)  # a kill never leaves a half-written plan


def new_plan(recipe: Recipe, out: Path, stages: list, started_at: float) -> dict:
    """What `build_status` and `finalize_build` need to know about a build, without the recipe's Python."""
    from corpusforge.sources.preflight import fingerprint_inputs

    return {
        "recipe": recipe.to_dict(),
        "executor": recipe.executor.type,
        "tasks": recipe.executor.tasks,
        # log folders relative to OUT: the build folder may be moved, or mounted elsewhere on another machine
        "stages": [
            {"name": s.name, "tasks": s.tasks, "logs": os.path.relpath(s.logs, out), "labels": s.labels}
            for s in stages
        ],
        "budget": recipe.budget.model_dump(mode="json") if recipe.budget else None,
        "inputs": fingerprint_inputs(recipe),
        "started_at": started_at,
        "jobs": [],
    }


def read_plan(out: Path) -> dict:
    path = plan_path(out)
    if not path.exists():
        raise OutputError(
            f"{out} is not a corpusforge build folder ({path} is missing); start it with `corpusforge run`"
        )
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class StageStatus:
    name: str
    tasks: int
    completed: int
    pending: list[int]
    logs: str

    @property
    def done(self) -> bool:
        return not self.pending


@dataclass
class BuildStatus:
    out: Path
    recipe: str
    executor: str
    stages: list[StageStatus]
    finalized: bool
    jobs: list[dict] = field(default_factory=list)  # Slurm: {stage, job_id, tasks} as submitted
    active_jobs: list[str] = field(default_factory=list)  # of those, still queued or running

    @property
    def complete(self) -> bool:
        return all(stage.done for stage in self.stages)


def build_status(out: str | Path) -> BuildStatus:
    """Completed and pending tasks per stage; whether the corpus is finalized. Reads only; writes nothing."""
    out = Path(out)
    plan = read_plan(out)
    stages = []
    for stage in plan["stages"]:
        logs = out / stage["logs"]
        done = completed_tasks(logs)
        pending = [rank for rank in range(stage["tasks"]) if rank not in done]
        stages.append(StageStatus(stage["name"], stage["tasks"], stage["tasks"] - len(pending), pending, str(logs)))
    manifest = out / "manifest.json"
    finalized = False
    if manifest.exists() and all(stage.done for stage in stages):
        try:
            finalized = json.loads(manifest.read_text())["recipe_fingerprint"] == recipe_fingerprint(plan["recipe"])
        except (ValueError, KeyError):
            finalized = False
    jobs = plan.get("jobs") or []
    active = active_slurm_jobs([job["job_id"] for job in jobs if job.get("job_id")]) if jobs else []
    return BuildStatus(out, plan["recipe"]["name"], plan["executor"], stages, finalized, jobs, active)


def write_report_quietly(out: Path) -> None:
    """The HTML report is a convenience: a plotting failure must not fail a finished build."""
    from corpusforge.report import write_report

    try:
        write_report(out)
    except Exception as err:  # noqa: BLE001
        log.warning(
            "the build is complete, but its report failed (%s: %s); retry with `corpusforge report %s`",
            type(err).__name__,
            err,
            out,
        )


def finalize_build(
    out: str | Path, report: bool = True, started_at: float | None = None, schema: pa.Schema | None = None
) -> dict:
    """Apply the budget, write state.json, dataset_info.json, manifest.json (and report.html); return the manifest.

    ``schema`` (the rows' Arrow schema) defaults to the one the shards carry. Raises OutputError, naming the
    pending tasks, while a stage is incomplete."""
    from corpusforge.recipe.models import BudgetConfig
    from corpusforge.shards import finalize
    from corpusforge.shards.budget import apply_budget

    out = Path(out)
    status = build_status(out)
    if not status.complete:
        pending = "; ".join(f"{s.name}: tasks {s.pending}" for s in status.stages if s.pending)
        raise OutputError(
            f"{out}: cannot finalize, stages are incomplete ({pending}); "
            "see `corpusforge status` and rerun `corpusforge run` to resume"
        )
    plan = read_plan(out)
    tasks = plan["tasks"]
    if schema is None:
        with pa.memory_map(str(out / shard_name(0, tasks))) as source:
            schema = pa.ipc.open_stream(source).schema.remove_metadata()
    budget = apply_budget(out, tasks, BudgetConfig.model_validate(plan["budget"])) if plan["budget"] else None
    manifest = finalize(
        out,
        tasks,
        plan["recipe"],
        [(out / s["logs"], s["tasks"], s["labels"]) for s in plan["stages"]],
        plan["inputs"],
        schema=schema,
        started_at=started_at if started_at is not None else plan.get("started_at"),
        budget=budget,
    )
    # partial shards (final and intermediate) of killed tasks: every task has completed since, none is being written
    for partial in (out / WORK_DIR).glob("**/*.partial"):
        partial.unlink(missing_ok=True)
    if report:
        write_report_quietly(out)
    return manifest


# ------------------------------------------------------------------------------------------------ slurm
def slurm_logs_dir(config: SlurmExecutor, out: Path) -> Path:
    return Path(config.logs).absolute() if config.logs else out / WORK_DIR / "slurm"


def job_prefix(recipe: Recipe) -> str:
    return recipe.executor.job_name or f"cf-{recipe.name}"


def guard_active_jobs(out: Path) -> None:
    """Raise while Slurm jobs of an earlier `corpusforge run` of this folder are queued or running."""
    path = plan_path(out)
    if not path.exists():
        return
    try:
        jobs = json.loads(path.read_text(encoding="utf-8")).get("jobs") or []
    except ValueError:
        return
    active = active_slurm_jobs([job["job_id"] for job in jobs if job.get("job_id")])
    if active:
        raise ExecutorError(
            f"{out}: Slurm jobs {', '.join(active)} of this build are still queued or running; follow them with "
            f"`corpusforge status {out}`, or cancel them (`scancel {' '.join(active)}`) before running it again"
        )


def submit(recipe: Recipe, out: Path, stages: list, plan: dict) -> list[SubmittedJob] | None:
    """Queue the stages' incomplete tasks and a finalize job on Slurm; None when every task already completed."""
    if all(set(range(stage.tasks)) <= completed_tasks(stage.logs) for stage in stages):
        return None
    if not os.environ.get("CORPUSFORGE_VERBOSE"):
        from loguru import logger

        logger.disable("datatrove")  # its "launching job" lines; the CLI prints the job ids
    config = recipe.executor
    jobs = submit_slurm(config, stages, out, slurm_logs_dir(config, out), job_prefix(recipe))
    plan["jobs"] = [asdict(job) for job in jobs]
    write_plan(out, plan)
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


def plan_build(recipe: Recipe, output: str | Path | None = None, scripts_dir: str | Path | None = None) -> DryRun:
    """The build `run` would do: stages, tasks, executor, logs, and on Slurm the job scripts (written to
    ``scripts_dir``, default a new temporary folder). Writes nothing into the output folder."""
    from corpusforge.run import compile_stages
    from corpusforge.sources.preflight import preflight

    if output is not None:
        recipe = recipe.model_copy(update={"output": recipe.output.model_copy(update={"path": str(output)})})
    config = recipe.executor
    out = Path(recipe.output.path)
    if not isinstance(config, LocalExecutor):
        out = out.absolute()
    preflight(recipe)
    stages = compile_stages(recipe, out)
    planned = [
        PlannedStage(s.name, s.tasks, len(set(range(s.tasks)) - completed_tasks(s.logs)), str(s.logs)) for s in stages
    ]
    workers = str(config.workers or "all")
    if not isinstance(config, SlurmExecutor):
        return DryRun(out, config.type, workers, planned)

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
    return DryRun(out, config.type, workers, planned, real_logs, scripts)
