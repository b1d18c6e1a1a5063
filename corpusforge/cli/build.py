"""Commands on recipes and builds: run, status, finalize, validate, schema, inspect, report."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from corpusforge.cli.common import EXIT_OK, make_console, writing


def add_commands(sub) -> None:
    p = sub.add_parser("run", help="build a recipe's corpus (resumes an interrupted build)")
    _recipe_args(p)
    p.add_argument("--output", "-o", help="output folder (overrides the recipe's output.path)")
    p.add_argument("--overwrite", action="store_true", help="replace an output folder built from another recipe")
    p.add_argument("--no-report", action="store_true", help="skip writing OUT/report.html")
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan (stages, tasks, logs, Slurm scripts); run nothing"
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="completed and pending tasks per stage of a build; finalized or not")
    p.add_argument("output_dir")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("finalize", help="write the manifest of a build whose stages are all done (idempotent)")
    p.add_argument("output_dir")
    p.add_argument("--no-report", action="store_true", help="skip writing OUT/report.html")
    p.set_defaults(func=cmd_finalize)

    p = sub.add_parser(
        "validate",
        help="check a recipe and its inputs without running it (exit 0 ok, 2 bad)",
        description="Check a recipe and its inputs without building anything (exit 0 ok, 2 bad input). Note: "
        "validating imports the recipe's plugins (`plugins:` files and `module:function` steps), which runs their "
        "code — validate only recipes whose plugins you trust.",
    )
    _recipe_args(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print the recipe JSON Schema")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("inspect", help="summarize a built corpus: funnel, languages, a few rows")
    p.add_argument("output_dir")
    p.add_argument("--rows", type=int, default=3, help="rows to show (default 3)")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("report", help="write OUT/report.html: funnel, languages, length histograms, sources")
    p.add_argument("output_dir")
    p.set_defaults(func=cmd_report)


def _recipe_args(p):
    p.add_argument("recipe", help="recipe YAML file")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. --set executor.tasks=4 --set steps[1].language.min_score=0.8",
    )


def cmd_validate(args) -> int:
    from corpusforge.recipe import Recipe
    from corpusforge.runner.inputs import preflight

    recipe = Recipe.from_yaml(args.recipe, args.set)
    preflight(recipe)
    make_console().print(
        f"[green]ok[/green] {args.recipe}: {len(recipe.sources)} source(s), {len(recipe.steps)} step(s)"
    )
    return EXIT_OK


def cmd_schema(args) -> int:
    from corpusforge.recipe import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK


def _build_columns() -> tuple:
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return (
        TextColumn("[bold]building[/bold]"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[docs]:,} docs"),
        TextColumn("{task.fields[kd]}"),
        TextColumn("tasks {task.fields[done]}/{task.fields[tasks]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),  # from the share of the input read (KD reads its prompts as it generates)
    )


def _build_detail(fields: dict) -> str:
    """The build's own figures in a plain progress line (a log): docs, tasks, and what a KD model is doing."""
    return " · ".join(
        part
        for part in (f"{fields['docs']:,} docs", fields["kd"], f"tasks {fields['done']}/{fields['tasks']}")
        if part
    )


def _progress_display():
    from corpusforge.progress import progress, size

    return progress(_build_columns, unit=size, detail=_build_detail)


def cmd_run(args) -> int:
    import corpusforge
    from corpusforge.recipe import Recipe

    recipe = Recipe.from_yaml(args.recipe, args.set)
    if args.dry_run:
        from corpusforge.runner import plan_build

        print_plan(plan_build(recipe, output=args.output))
        return EXIT_OK
    quiet = getattr(args, "quiet", False)
    with (
        writing(args.output or recipe.output.path),
        contextlib.nullcontext(None) if quiet else _progress_display() as display,
    ):
        bar = (
            None
            if quiet
            else display.add_task("building", total=None, docs=0, done=0, tasks=recipe.executor.tasks, kd="")
        )
        started = time.monotonic()

        def on_progress(p):
            kd = ""
            if p.requests or p.replayed:  # a KD build: what the model is doing
                rate = p.tokens / max(time.monotonic() - started, 1e-6)
                kd = f"requests {p.requests:,} (+{p.replayed:,} replayed) · {rate:,.0f} tok/s"
            display.update(
                bar, completed=p.bytes, total=p.total_bytes, docs=p.docs, done=p.tasks_done, tasks=p.tasks, kd=kd
            )

        result = corpusforge.run(
            recipe,
            output=args.output,
            overwrite=args.overwrite,
            progress=None if quiet else on_progress,
            report=not args.no_report,
            verbose=getattr(args, "verbose", False),  # datatrove's per-task logs on the console too
        )
    from corpusforge.runner import Submitted

    if isinstance(result, Submitted):
        console = make_console()
        for job in result.jobs:
            what = f"job {job.job_id}, {job.tasks} task(s)" if job.job_id else "already complete"
            console.print(f"  {job.stage}: {what}", soft_wrap=True)
        console.print(f"queued on Slurm; follow with `corpusforge status {result.path}`", soft_wrap=True)
        return EXIT_OK
    if not quiet:
        print_summary(result.manifest, result.path)
    return EXIT_OK


def print_plan(plan) -> None:
    console = make_console()
    console.soft_wrap = True  # paths are copied from here: never break them
    console.print(f"[bold]plan[/bold] (dry run: nothing written to {plan.out})")
    if plan.remote:
        console.print(f"builds in the staging folder above; finalize uploads the corpus to {plan.remote}")
    console.print(f"executor: {plan.executor}, workers: {plan.workers}")
    for i, stage in enumerate(plan.stages, 1):
        done = stage.tasks - stage.pending
        console.print(f"  {i}. {stage.name}: {stage.tasks} task(s)" + (f", {done} already done" if done else ""))
        console.print(f"     logs: {stage.logs}")
        if stage.script:
            console.print(f"     script: {stage.script}")
    if plan.slurm_logs:
        console.print(f"Slurm output files: {plan.slurm_logs}")
        console.print(f"job scripts: {plan.scripts_dir} (each stage waits for the one before: afterok)")


def cmd_status(args) -> int:
    from corpusforge.runner import build_status
    from corpusforge.runner.remote import build_folder

    status = build_status(build_folder(args.output_dir))
    console = make_console()
    console.soft_wrap = True  # paths are copied from here: never break them
    console.print(f"[bold]{status.recipe}[/bold] → {status.out} ({status.executor})")
    for stage in status.stages:
        pending = ""
        if stage.pending:
            shown = ", ".join(map(str, stage.pending[:10])) + (" …" if len(stage.pending) > 10 else "")
            pending = f", pending: {shown}"
        console.print(f"  {stage.name}: {stage.completed}/{stage.tasks} tasks done{pending}")
    if status.active_jobs:
        console.print(f"Slurm jobs queued or running: {', '.join(status.active_jobs)}")
    if status.finalized:
        console.print("[green]finalized[/green]: manifest.json written")
    elif status.complete:
        console.print(f"every task is done, not finalized yet: `corpusforge finalize {status.out}`")
    elif not status.active_jobs:
        console.print("incomplete: rerun `corpusforge run` with the same recipe and output to resume")
    return EXIT_OK


def cmd_finalize(args) -> int:
    from corpusforge.runner import finalize_build
    from corpusforge.runner.remote import build_folder

    with writing(args.output_dir):
        manifest = finalize_build(build_folder(args.output_dir), report=not args.no_report)
    print_summary(manifest, args.output_dir)
    return EXIT_OK


def print_summary(manifest: dict, path: Path | str) -> None:
    from rich.table import Table

    console = make_console()
    steps = Table(title=f"{manifest['recipe']['name']} → {path}", title_justify="left")
    counted = any(s.get("counts") for s in manifest["steps"])
    for col in ("step", "in", "out", "dropped (top reasons)", *(("counted",) if counted else ())):
        steps.add_column(col, justify="right" if col in ("in", "out") else "left")
    for s in manifest["steps"]:
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(s["dropped"].items(), key=lambda kv: -kv[1])[:3])
        tallies = ", ".join(f"{k} {v:,}" for k, v in (s.get("counts") or {}).items())
        steps.add_row(s["step"], f"{s['in']:,}", f"{s['out']:,}", reasons, *((tallies,) if counted else ()))
    console.print(steps)
    langs = manifest["languages"]["output"]
    if langs:
        console.print("languages: " + ", ".join(f"{k} {v:,}" for k, v in list(langs.items())[:8]))
    if manifest.get("kd"):
        kd = manifest["kd"]
        console.print("kinds: " + ", ".join(f"{k} {v:,}" for k, v in kd["kinds"].items()))
        console.print("finish reasons: " + ", ".join(f"{k} {v:,}" for k, v in kd["finish_reasons"].items()))
    console.print(
        f"{manifest['rows']:,} rows in {len(manifest['shards'])} shard(s); open with datasets.load_from_disk('{path}')"
    )


def cmd_inspect(args) -> int:
    from rich.markup import escape

    from corpusforge.corpus.finished import Corpus

    corpus = Corpus.open(args.output_dir)  # a CorpusError (exit 2) says what is missing
    out, manifest = corpus.location, corpus.manifest
    print_summary(manifest, out)
    if args.rows:
        console = make_console()
        for row in _head(out, manifest, args.rows):
            if "messages" in row or "chosen" in row:  # a KD dataset: conversations, or preference pairs
                label = escape(f"[{row['kind']} {row['finish_reason']}]")
                console.print(f"[bold]{escape(row['id'])}[/bold] {label}")
                if "messages" in row:
                    turns = [(m["role"], m) for m in row["messages"]]
                else:
                    turns = [(m["role"], m) for m in row["prompt"]]
                    for side in ("chosen", "rejected"):
                        reasons = ", ".join(row[f"{side}_reasons"]) or "no finding"
                        turns += [(f"{side} ({row[f'{side}_score']:g}: {reasons})", m) for m in row[side]]
                for role, message in turns:
                    content = message["content"]
                    content = content if len(content) <= 300 else content[:300] + "…"
                    console.print(f"  {role}: {content!r}", markup=False)
                continue
            text = row["text"] if len(row["text"]) <= 300 else row["text"][:300] + "…"
            label = escape(f"[{row['language']} {row['language_score']}]")
            console.print(f"[bold]{escape(row['id'])}[/bold] {label}")
            console.print(repr(text), markup=False)
    return EXIT_OK


def _head(out: Path | str, manifest: dict, n: int) -> list[dict]:
    """The first ``n`` rows, read from the first shards only (at a URL: fetched a batch at a time)."""
    import pyarrow as pa

    from corpusforge import storage

    rows: list[dict] = []
    for shard in manifest["shards"]:
        with storage.open_file(f"{str(out).rstrip('/')}/{shard['file']}", "rb") as f:
            for batch in pa.ipc.open_stream(f):
                rows += batch.slice(0, n - len(rows)).to_pylist()
                if len(rows) >= n:
                    return rows
    return rows


def cmd_report(args) -> int:
    from corpusforge.corpus.finished import Corpus
    from corpusforge.report import write_report
    from corpusforge.runner.output import BuildLock

    Corpus.open(args.output_dir)  # a CorpusError (exit 2) says what is missing, before a lock file is made
    with BuildLock(Path(args.output_dir), what="report"):  # the report edits the ledger: not while a build runs
        make_console().print(f"wrote {write_report(args.output_dir)}")
    return EXIT_OK
