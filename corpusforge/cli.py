"""The `corpusforge` command: parse, call one library function, print.

corpusforge run recipes/quickstart.yaml [--output DIR] [--set a.b=c ...] [--overwrite]
corpusforge validate recipes/quickstart.yaml
corpusforge schema > recipe.schema.json
corpusforge inspect out/quickstart
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def cmd_validate(args) -> int:
    from corpusforge.recipe import load_recipe
    from corpusforge.sources import preflight

    recipe = load_recipe(args.recipe, args.set)
    preflight(recipe)
    _console().print(f"[green]ok[/green] {args.recipe}: {len(recipe.sources)} source(s), {len(recipe.steps)} step(s)")
    return EXIT_OK


def cmd_schema(args) -> int:
    from corpusforge.recipe import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK


def _progress_display():
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]building[/bold]"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[docs]:,} docs"),
        TextColumn("tasks {task.fields[done]}/{task.fields[tasks]}"),
        TimeElapsedColumn(),
        console=_console(stderr=True),
        transient=True,
    )


def cmd_run(args) -> int:
    import corpusforge
    from corpusforge.recipe import load_recipe

    if args.verbose:
        os.environ["CORPUSFORGE_VERBOSE"] = "1"
    recipe = load_recipe(args.recipe, args.set)
    with _progress_display() as display:
        bar = display.add_task("build", total=None, docs=0, done=0, tasks=recipe.executor.tasks)

        def on_progress(p):
            display.update(bar, completed=p.bytes, total=p.total_bytes, docs=p.docs, done=p.tasks_done, tasks=p.tasks)

        result = corpusforge.run(
            recipe, output=args.output, overwrite=args.overwrite, progress=on_progress, report=not args.no_report
        )
    print_summary(result.manifest, result.path)
    return EXIT_OK


def print_summary(manifest: dict, path: Path) -> None:
    from rich.table import Table

    console = _console()
    steps = Table(title=f"{manifest['recipe']['name']} → {path}", title_justify="left")
    for col in ("step", "in", "out", "dropped (top reasons)"):
        steps.add_column(col, justify="right" if col in ("in", "out") else "left")
    for s in manifest["steps"]:
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(s["dropped"].items(), key=lambda kv: -kv[1])[:3])
        steps.add_row(s["step"], f"{s['in']:,}", f"{s['out']:,}", reasons)
    console.print(steps)
    langs = manifest["languages"]["output"]
    if langs:
        console.print("languages: " + ", ".join(f"{k} {v:,}" for k, v in list(langs.items())[:8]))
    console.print(
        f"{manifest['rows']:,} rows in {len(manifest['shards'])} shard(s); open with datasets.load_from_disk('{path}')"
    )


def cmd_inspect(args) -> int:
    from rich.markup import escape

    out = Path(args.output_dir)
    manifest_file = out / "manifest.json"
    if not manifest_file.exists():
        _console(stderr=True).print(
            f"[red]error[/red]: {out} has no manifest.json (not a finished corpusforge output)"
        )
        return EXIT_BAD_INPUT
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    print_summary(manifest, out)
    if args.rows:
        from corpusforge.shards import scan

        console = _console()
        for row in scan(out).head(args.rows).collect().iter_rows(named=True):
            text = row["text"] if len(row["text"]) <= 300 else row["text"][:300] + "…"
            label = escape(f"[{row['language']} {row['language_score']}]")
            console.print(f"[bold]{escape(row['id'])}[/bold] {label}")
            console.print(repr(text), markup=False)
    return EXIT_OK


def cmd_report(args) -> int:
    from corpusforge.report import write_report

    _console().print(f"wrote {write_report(args.output_dir)}")
    return EXIT_OK


def cmd_publish(args) -> int:
    from corpusforge.publish import publish

    where = publish(
        args.output_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        dry_run=args.dry_run,
        license=args.license,
    )
    if args.dry_run:
        _console().print(f"dry run: wrote and loaded back {where} (nothing uploaded)")
    else:
        _console().print(f"published {args.output_dir} to {args.repo_id}: {where}")
    return EXIT_OK


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="corpusforge", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def recipe_args(p):
        p.add_argument("recipe", help="recipe YAML file")
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a recipe key, e.g. --set executor.tasks=4 --set steps[1].language.min_score=0.8",
        )

    p = sub.add_parser("run", help="build a recipe's corpus (resumes an interrupted build)")
    recipe_args(p)
    p.add_argument("--output", "-o", help="output folder (overrides the recipe's output.path)")
    p.add_argument("--overwrite", action="store_true", help="replace an output folder built from another recipe")
    p.add_argument("--verbose", "-v", action="store_true", help="show datatrove's per-task logs")
    p.add_argument("--no-report", action="store_true", help="skip writing OUT/report.html")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="check a recipe and its inputs without running it (exit 0 ok, 2 bad)")
    recipe_args(p)
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

    p = sub.add_parser("publish", help="upload a built corpus to the Hugging Face Hub (Parquet + dataset card)")
    p.add_argument("output_dir")
    p.add_argument("--repo-id", required=True, help="namespace/name of the dataset repo")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", help="branch to commit to (created if missing)")
    p.add_argument("--license", default="unknown", help="license id for the card (default: unknown)")
    p.add_argument("--dry-run", metavar="DIR", help="write the folder that would be uploaded to DIR and load it back")
    p.set_defaults(func=cmd_publish)
    return parser


def main(argv: list[str] | None = None) -> int:
    from rich.markup import escape

    from corpusforge.errors import CorpusforgeError

    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except CorpusforgeError as err:
        _console(stderr=True).print(f"[red]error[/red]: {escape(str(err))}", soft_wrap=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _console(stderr=True).print("interrupted: rerun the same command to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
