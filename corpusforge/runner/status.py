"""Where a build stands, read from its output folder alone: completed and pending tasks per stage (datatrove's
per-task completion markers, in the log folders the plan records), whether it is finalized, its Slurm jobs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from corpusforge.corpus.layout import MANIFEST
from corpusforge.runner.executors import active_slurm_jobs, completed_tasks
from corpusforge.runner.plan import read_plan


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
    manifest = out / MANIFEST
    finalized = False
    if manifest.exists() and all(stage.done for stage in stages):
        try:
            # the plan's own fingerprint: its recipe is stored redacted (no credentials), which hashes differently
            finalized = json.loads(manifest.read_text())["recipe_fingerprint"] == plan["recipe_fingerprint"]
        except (ValueError, KeyError):
            finalized = False
    jobs = plan.get("jobs") or []
    active = active_slurm_jobs([job["job_id"] for job in jobs if job.get("job_id")]) if jobs else []
    return BuildStatus(out, plan["recipe"]["name"], plan["executor"], stages, finalized, jobs, active)
