"""The build lifecycle, one owner: a recipe compiles once into a plan (``plan.py``: resolved inputs and their
fingerprints, stages, tasks), recorded in the output folder, which one run at a time holds (``output.py``: lock,
ownership, safe ``--overwrite``). ``run.py`` executes the plan's stages on datatrove's executors
(``executors/``: one module per engine, local, slurm, ray), ``dryrun.py`` shows what a run would do,
``finalize.py`` finishes it, ``status.py`` reads where it stands. Everything that asks "what is this build" reads
the plan; nothing resolves the recipe again.

A recipe passes through: ``recipe`` (schema) → ``runner.plan.compile_plan`` (``runner.inputs``: globs, checks,
fingerprints, readers; ``steps.registry``: the steps) → ``runner.run`` (lock, claim, stages) → ``runner.finalize``
(``shards``: datasets layout, manifest; ``report``).
"""

from corpusforge.runner.dryrun import DryRun, plan_build
from corpusforge.runner.finalize import finalize_build
from corpusforge.runner.plan import BuildPlan, compile_plan
from corpusforge.runner.run import Progress, Result, Submitted, run
from corpusforge.runner.status import BuildStatus, build_status

__all__ = [
    "BuildPlan",
    "BuildStatus",
    "DryRun",
    "Progress",
    "Result",
    "Submitted",
    "build_status",
    "compile_plan",
    "finalize_build",
    "plan_build",
    "run",
]
