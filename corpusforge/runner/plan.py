"""A recipe compiled once into a build plan: resolved inputs and their fingerprints, stages and tasks, the recipe
fingerprint. ``OUT/.corpusforge/plan.json`` records it before any task runs; status, finalize, resume and
``--overwrite`` read that record and never resolve the recipe again.

Stages: without a dedup step, one (readers, steps, writer). With one, four: steps before dedup + signatures → LSH
buckets → clusters → dedup filter + steps after it + writer. Each stage is one datatrove executor run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from datatrove.pipeline.base import PipelineStep

from corpusforge import storage
from corpusforge.corpus.layout import LEDGER_DIR, PLAN, WORK_DIR, default_staging
from corpusforge.corpus.ledger import Ledger
from corpusforge.errors import OutputError, RecipeError
from corpusforge.recipe.models import LocalExecutor, Recipe, source_name
from corpusforge.redact import redact_values
from corpusforge.runner.inputs import fingerprint_inputs, make_readers, resolve_inputs
from corpusforge.runner.output import previous_plan
from corpusforge.shards import ArrowShardWriter, recipe_fingerprint
from corpusforge.steps.registry import get_step


@dataclass
class Stage:
    """One executor run. ``labels`` names each pipeline step in the manifest's funnel (None: internal step)."""

    name: str
    pipeline: list[PipelineStep]
    tasks: int
    logs: Path
    labels: list[str | None]


@dataclass
class BuildPlan:
    """What one build is. ``record`` is what plan.json holds (JSON; no Python objects, no plugins needed)."""

    recipe: Recipe
    out: Path  # where the build runs: the output folder, or for a URL output its staging folder
    stages: list[Stage]
    record: dict = field(default_factory=dict)

    @property
    def remote(self) -> str | None:
        """The fsspec URL finalize uploads the corpus to (None: ``out`` is the output)."""
        return self.record.get("remote")

    @property
    def progress_dir(self) -> Path:
        return self.out / WORK_DIR / "progress"


def plan_path(out: Path) -> Path:
    return Path(out) / WORK_DIR / PLAN


def with_output(recipe: Recipe, output: str | Path | None) -> tuple[Recipe, Path]:
    """The recipe with ``--output`` applied, and the folder the build runs in (absolute where tasks run elsewhere):
    the output folder, or for an fsspec URL its staging folder."""
    if output is not None:
        recipe = recipe.model_copy(update={"output": recipe.output.model_copy(update={"path": str(output)})})
    out = Path(recipe.output.path)
    if storage.is_url(recipe.output.path):
        if recipe.output.staging is None and not isinstance(recipe.executor, LocalExecutor):
            raise RecipeError(
                [
                    (
                        ("output", "staging"),
                        f"output {recipe.output.path} is a URL and the {recipe.executor.type} executor runs tasks on "
                        "other machines: set `output.staging` to a folder every node shares (the build runs there "
                        "and finalize uploads the corpus)",
                    )
                ]
            )
        out = (
            Path(recipe.output.staging).expanduser() if recipe.output.staging else default_staging(recipe.output.path)
        )
    elif recipe.output.path.startswith("file://"):
        out = storage.local_path(recipe.output.path)
    if not isinstance(recipe.executor, LocalExecutor):
        out = out.absolute()  # tasks run from another working directory, maybe on another machine
    return recipe, out


def compile_plan(recipe: Recipe, output: str | Path | None = None, progress: bool = False) -> BuildPlan:
    """Resolve and check the inputs (raises before anything is written), fingerprint them, compile the stages."""
    recipe, out = with_output(recipe, output)
    resolved = resolve_inputs(recipe, out)  # the build's own output (out, the output path) is never an input
    recipe = pin_revisions(recipe)
    progress_dir = str(out / WORK_DIR / "progress") if progress else None
    identity = {
        "recipe_fingerprint": recipe_fingerprint(recipe.to_dict()),
        "inputs": fingerprint_inputs(recipe, resolved),
        "plugins": fingerprint_plugins(recipe.plugins),
        "corpusforge": code_fingerprint(),
    }
    build_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    stages = compile_stages(recipe, out, make_readers(recipe, resolved, progress_dir, identity["inputs"]), build_id)
    record = {
        "recipe": redact_values(recipe.to_dict()),  # what plan.json, the manifest and the report show
        "recipe_fingerprint": identity["recipe_fingerprint"],
        # what decides the rows, hashed: the shard names carry it, so a new build never writes over the files of
        # the build the folder (or URL) serves until its own state.json replaces that one's
        "build_id": build_id,
        "executor": recipe.executor.type,
        "tasks": recipe.executor.tasks,
        # log folders relative to OUT: the build folder may be moved, or mounted elsewhere on another machine
        "stages": [
            {"name": s.name, "tasks": s.tasks, "logs": os.path.relpath(s.logs, out), "labels": s.labels}
            for s in stages
        ],
        "budget": recipe.budget.model_dump(mode="json") if recipe.budget else None,
        "inputs": identity["inputs"],
        "plugins": identity["plugins"],
        "corpusforge": identity["corpusforge"],
        "ledger": LEDGER_DIR,  # every file this build writes is recorded there (corpusforge.corpus.ledger)
        "remote": recipe.output.path if storage.is_url(recipe.output.path) else None,
        "started_at": time.time(),
        "jobs": [],
    }
    return BuildPlan(recipe, out, stages, record)


def pin_revisions(recipe: Recipe) -> Recipe:
    """Every Hub id a step loads (template, tokenizer, model) pinned to its commit once, here: the sha is then in the
    recipe fingerprint, and every worker loads the same files. Local paths and presets come back unchanged."""
    from corpusforge.pinning import pin_step_revisions
    from corpusforge.recipe.models import StepCall

    steps = [StepCall(name=c.name, params=pin_step_revisions(c.name, c.params)) for c in recipe.steps]
    if all(new.params is old.params for new, old in zip(steps, recipe.steps)):
        return recipe
    return recipe.model_copy(update={"steps": steps})


def fingerprint_plugins(plugins: list[str]) -> list[dict]:
    """A hash of every plugin file: its code decides the output as much as the recipe does."""
    out = []
    for spec in plugins:
        if spec.endswith(".py") and Path(spec).is_file():
            out.append({"plugin": spec, "sha256": hashlib.sha256(Path(spec).read_bytes()).hexdigest()})
    return out


# Code that never shapes a build's rows: the command line and its progress lines, what reads a finished build
# (report, publish, eval), test helpers, the docs generator and the scripts that made the bundled data. Everything
# else is hashed — when in doubt, a module counts.
NOT_OUTPUT_CODE = (
    "cli/",
    "progress.py",
    "report/",
    "publish/",
    "eval/",
    "testing.py",
    "recipe/docs.py",
    "data/build_sample.py",
    "data/build_prompts.py",
    "data/build_content_terms.py",
    "data/build_web_sample.py",
)


@functools.cache
def code_fingerprint() -> dict:
    """The corpusforge that builds: its version and a hash of the code that makes the rows. A build resumed by other
    code would mix rows that two versions made (a fix to a step, a new default), so resuming across an upgrade is
    refused like a changed recipe; editing help text or the report is not such a change."""
    import corpusforge

    return {"version": corpusforge.__version__, "code_sha256": output_code_digest(Path(corpusforge.__file__).parent)}


def output_code_digest(root: Path) -> str:
    """A hash of the package at ``root``: its modules, chat-template presets (``.jinja``) and the data files steps
    read (``data/``: term lists, shipped prompt sets; not their READMEs), but NOT_OUTPUT_CODE."""
    digest = hashlib.sha256()
    data = [p for p in (root / "data").rglob("*") if p.is_file() and p.suffix not in (".py", ".md", ".pyc")]
    for path in sorted({*root.rglob("*.py"), *root.rglob("*.jinja"), *data}):
        rel = path.relative_to(root).as_posix()
        if not rel.startswith(NOT_OUTPUT_CODE):
            digest.update(rel.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def write_plan(out: Path, record: dict) -> None:
    Ledger(out).write_json(plan_path(out), record)  # atomic: a kill never leaves a half-written plan


def read_plan(out: Path) -> dict:
    plan = previous_plan(Path(out))
    if plan is None:
        raise OutputError(
            f"{out} is not a corpusforge build folder ({plan_path(out)} is missing); start it with `corpusforge run`"
        )
    return plan


def _output_steps(recipe: Recipe, out: Path, build_id: str) -> tuple[list[PipelineStep], list[str]]:
    """The end of the build stage: the shard writer; for a KD recipe, generation and output checks before it."""
    folder = Ledger(out).data_folder(out)
    if recipe.generate is None:
        return [ArrowShardWriter(folder, batch_rows=recipe.output.batch_rows, build_id=build_id)], ["write"]
    from corpusforge.kd import KDChecks, KDGenerate
    from corpusforge.shards.writer import KDShardWriter, kd_schema

    steps = [
        KDGenerate(recipe.generate, str(out / WORK_DIR)),
        KDChecks(recipe.generate),
        KDShardWriter(
            folder, batch_rows=recipe.output.batch_rows, build_id=build_id, schema=kd_schema(recipe.generate)
        ),
    ]
    return steps, ["generate", "checks", "write"]


def compile_stages(recipe: Recipe, out: Path, readers: list[PipelineStep], build_id: str) -> list[Stage]:
    """The recipe's steps as stages, reading with ``readers`` (one per source)."""
    tasks = recipe.executor.tasks
    work = out / WORK_DIR
    read_labels = [f"read:{source_name(s, i)}" for i, s in enumerate(recipe.sources)]
    calls = list(recipe.steps)
    cut = next((i for i, call in enumerate(calls) if call.name == "dedup"), None)
    writer, write_labels = _output_steps(recipe, out, build_id)
    if cut is None:
        steps = [get_step(call.name).create(call.params) for call in calls]
        labels = read_labels + [call.name for call in calls] + write_labels
        return [Stage("build", [*readers, *steps, *writer], tasks, work / "logs", labels)]

    from corpusforge.shards.reader import ShardReader
    from corpusforge.steps.dedup import DedupParams, dedup_stages

    before = [get_step(call.name).create(call.params) for call in calls[:cut]]
    after = [get_step(call.name).create(call.params) for call in calls[cut + 1 :]]
    params = DedupParams.model_validate(calls[cut].params)
    ledger = Ledger(out)
    parts = dedup_stages(params, str(work / "dedup"), tasks, folder=ledger.data_folder)
    intermediate = ledger.data_folder(work / "dedup" / "shards")
    stages = [
        Stage(
            "dedup-signatures",
            [
                *readers,
                *before,
                parts["order_step"],
                ArrowShardWriter(intermediate, batch_rows=recipe.output.batch_rows),
                *parts["signature_steps"],
            ],
            tasks,
            work / "logs-dedup-signatures",
            read_labels + [call.name for call in calls[:cut]] + [None] * (2 + len(parts["signature_steps"])),
        )
    ]
    if parts["buckets"] is not None:
        stages.append(
            Stage("dedup-buckets", [parts["buckets"]], params.num_buckets, work / "logs-dedup-buckets", [None])
        )
    stages.append(Stage("dedup-clusters", [parts["cluster"]], 1, work / "logs-dedup-clusters", [None]))
    stages.append(
        Stage(
            "build",
            [ShardReader(str(work / "dedup" / "shards"), tasks), parts["filter"], *after, *writer],
            tasks,
            work / "logs",
            [None, "dedup"] + [call.name for call in calls[cut + 1 :]] + write_labels,
        )
    )
    return stages


def resume_problems(previous: dict, record: dict) -> list[str]:
    """Why the build whose plan is ``previous`` is not the build ``record`` plans (empty: it is, and resuming it is
    safe)."""
    from corpusforge.runner.inputs import changed_inputs, unfingerprinted_inputs

    problems = []
    before = previous.get("recipe_fingerprint") or recipe_fingerprint(previous.get("recipe") or {})
    if before != record["recipe_fingerprint"]:
        problems.append(f"it was built from another recipe ('{(previous.get('recipe') or {}).get('name')}')")
    if "inputs" not in previous:
        problems.append("its plan records no input fingerprints")
    else:
        problems += [f"input {change}" for change in changed_inputs(previous["inputs"], record["inputs"])]
        problems += [  # then or now: whether it changed cannot be told, so it is not trusted
            f"input {name} cannot be fingerprinted ({why}); rerun with --overwrite to rebuild"
            for name, why in unfingerprinted_inputs(previous["inputs"], record["inputs"])
        ]
    built_by, now = previous.get("corpusforge"), record["corpusforge"]
    if built_by is not None and built_by != now:  # plans written before this check carry none
        problems.append(
            f"it was built by another corpusforge ({built_by['version']}, code {built_by['code_sha256']}; this is "
            f"{now['version']}, code {now['code_sha256']})"
        )
    old_plugins = {p["plugin"]: p["sha256"] for p in previous.get("plugins") or []}
    new_plugins = {p["plugin"]: p["sha256"] for p in record["plugins"]}
    problems += [
        f"plugin {name} changed" for name in sorted(new_plugins) if old_plugins.get(name) != new_plugins[name]
    ]
    return problems
