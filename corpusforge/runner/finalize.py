"""The step that finishes a build once every stage is complete: budget, `state.json`, `dataset_info.json`,
`manifest.json`, report. It runs at the end of a local or Ray run, in the last Slurm job, or from
`corpusforge finalize OUT`; finalizing twice gives the same corpus, and it needs neither the recipe file nor the
plugins its steps came from — only the plan.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa

from corpusforge.corpus.layout import DATASET_INFO, MANIFEST, REPORT_DIR, REPORT_HTML, STATE, WORK_DIR, shard_name
from corpusforge.corpus.ledger import Ledger
from corpusforge.errors import OutputError
from corpusforge.runner.output import BuildLock, remove_superseded
from corpusforge.runner.plan import read_plan
from corpusforge.runner.status import build_status

log = logging.getLogger("corpusforge.runner")


def write_report_quietly(out: Path) -> set[str]:
    """The HTML report is a convenience: a plotting failure must not fail a finished build. Returns the files it
    wrote (relative to ``out``)."""
    from corpusforge.report import write_report

    try:
        write_report(out)
        return {rel for rel in Ledger(out).paths() if rel == REPORT_HTML or rel.startswith(f"{REPORT_DIR}/")}
    except Exception as err:  # noqa: BLE001
        log.warning(
            "the build is complete, but its report failed (%s: %s); retry with `corpusforge report %s`",
            type(err).__name__,
            err,
            out,
        )
        return set()


def finalize_build(
    out: str | Path,
    report: bool = True,
    started_at: float | None = None,
    schema: pa.Schema | None = None,
    locked: bool = False,
) -> dict:
    """Apply the budget, write state.json, dataset_info.json, manifest.json (and report.html); return the manifest.
    A build for a URL output (``out`` is then its staging folder) is uploaded there.

    ``schema`` (the rows' Arrow schema) defaults to the one the shards carry. Raises OutputError, naming the
    pending tasks, while a stage is incomplete. Takes the folder's lock unless the caller holds it (``locked``)."""
    out = Path(out)
    if not locked:
        with BuildLock(out, what="finalize"):
            return finalize_build(out, report, started_at, schema, locked=True)
    from corpusforge.recipe.models import BudgetConfig
    from corpusforge.shards import finalize
    from corpusforge.shards.budget import apply_budget

    status = build_status(out)
    if not status.complete:
        pending = "; ".join(f"{s.name}: tasks {s.pending}" for s in status.stages if s.pending)
        raise OutputError(
            f"{out}: cannot finalize, stages are incomplete ({pending}); "
            "see `corpusforge status` and rerun `corpusforge run` to resume"
        )
    plan = read_plan(out)
    tasks = plan["tasks"]
    shards = [out / shard_name(rank, tasks, plan["build_id"]) for rank in range(tasks)]
    if schema is None:
        with pa.memory_map(str(shards[0])) as source:
            schema = pa.ipc.open_stream(source).schema.remove_metadata()
    budget = apply_budget(out, shards, BudgetConfig.model_validate(plan["budget"])) if plan["budget"] else None
    manifest = finalize(
        out,
        shards,
        plan["recipe"],
        [(out / s["logs"], s["tasks"], s["labels"]) for s in plan["stages"]],
        plan["inputs"],
        schema=schema,
        started_at=started_at if started_at is not None else plan.get("started_at"),
        budget=budget,
        fingerprint=plan["recipe_fingerprint"],
    )
    # partial shards (final and intermediate) of killed tasks: every task has completed since, none is being written
    Ledger(out).remove(lambda rel: rel.startswith(f"{WORK_DIR}/") and rel.endswith(".partial"))
    written = {p.name for p in shards} | {DATASET_INFO, MANIFEST, STATE}
    if report:
        written |= write_report_quietly(out)
    remove_superseded(out, written)  # the previous build's shards and report, now that nothing points at them
    if plan.get("remote"):
        from corpusforge.runner.remote import upload

        upload(out, plan)
    return manifest
