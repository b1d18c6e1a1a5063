"""The `corpusforge` command: parse, call one library function, print.

corpusforge run recipes/quickstart.yaml [--output DIR] [--set a.b=c ...] [--overwrite] [--dry-run]
corpusforge status out/quickstart
corpusforge validate recipes/quickstart.yaml
corpusforge schema > recipe.schema.json
corpusforge inspect out/quickstart
corpusforge vocab fertility --tokenizer TOK out/quickstart
corpusforge vocab extend --tokenizer TOK out/quickstart --add 8000 --output tok-ext
corpusforge eval scorecard --model BASE --model TUNED --prompts th.jsonl --prompts-en en.jsonl --language th -o DIR
corpusforge eval scorecard --config eval.yaml [--set k=v]      (`eval align` is the same command)
corpusforge train trainer/configs/cp-lora.yaml [--set k=v] | corpusforge train merge RUN_DIR --output DIR
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # piped or redirected, rich assumes 80 columns and cuts table cells ("Traditional Chinese (T…"): a file has no
    # width, so print tables whole (COLUMNS still wins when set)
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, highlight=False, width=240 if wide else None)


def cmd_validate(args) -> int:
    from corpusforge.build.inputs import preflight
    from corpusforge.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.set)
    preflight(recipe)
    _console().print(f"[green]ok[/green] {args.recipe}: {len(recipe.sources)} source(s), {len(recipe.steps)} step(s)")
    return EXIT_OK


def cmd_schema(args) -> int:
    from corpusforge.recipe import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK


def _progress_display():
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]building[/bold]"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[docs]:,} docs"),
        TextColumn("{task.fields[kd]}"),
        TextColumn("tasks {task.fields[done]}/{task.fields[tasks]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),  # from the share of the input read (KD reads its prompts as it generates)
        console=_console(stderr=True),
        transient=True,
    )


def cmd_run(args) -> int:
    import corpusforge
    from corpusforge.recipe import load_recipe

    if getattr(args, "verbose", False):
        os.environ["CORPUSFORGE_VERBOSE"] = "1"  # datatrove's per-task logs too
    recipe = load_recipe(args.recipe, args.set)
    if args.dry_run:
        from corpusforge.build import plan_build

        print_plan(plan_build(recipe, output=args.output))
        return EXIT_OK
    quiet = getattr(args, "quiet", False)
    with contextlib.nullcontext(None) if quiet else _progress_display() as display:
        bar = (
            None
            if quiet
            else display.add_task("build", total=None, docs=0, done=0, tasks=recipe.executor.tasks, kd="")
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
        )
    from corpusforge.build import Submitted

    if isinstance(result, Submitted):
        console = _console()
        for job in result.jobs:
            what = f"job {job.job_id}, {job.tasks} task(s)" if job.job_id else "already complete"
            console.print(f"  {job.stage}: {what}", soft_wrap=True)
        console.print(f"queued on Slurm; follow with `corpusforge status {result.path}`", soft_wrap=True)
        return EXIT_OK
    if not quiet:
        print_summary(result.manifest, result.path)
    return EXIT_OK


def print_plan(plan) -> None:
    console = _console()
    console.soft_wrap = True  # paths are copied from here: never break them
    console.print(f"[bold]plan[/bold] (dry run: nothing written to {plan.out})")
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
    from corpusforge.build import build_status

    status = build_status(args.output_dir)
    console = _console()
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
    from corpusforge.build import finalize_build

    manifest = finalize_build(args.output_dir, report=not args.no_report)
    print_summary(manifest, Path(args.output_dir))
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
    if manifest.get("kd"):
        kd = manifest["kd"]
        console.print("kinds: " + ", ".join(f"{k} {v:,}" for k, v in kd["kinds"].items()))
        console.print("finish reasons: " + ", ".join(f"{k} {v:,}" for k, v in kd["finish_reasons"].items()))
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
            if "messages" in row:  # a KD dataset
                label = escape(f"[{row['kind']} {row['finish_reason']}]")
                console.print(f"[bold]{escape(row['id'])}[/bold] {label}")
                for message in row["messages"]:
                    content = message["content"]
                    content = content if len(content) <= 300 else content[:300] + "…"
                    console.print(f"  {message['role']}: {content!r}", markup=False)
                continue
            text = row["text"] if len(row["text"]) <= 300 else row["text"][:300] + "…"
            label = escape(f"[{row['language']} {row['language_score']}]")
            console.print(f"[bold]{escape(row['id'])}[/bold] {label}")
            console.print(repr(text), markup=False)
    return EXIT_OK


def cmd_report(args) -> int:
    from corpusforge.report import write_report

    _console().print(f"wrote {write_report(args.output_dir)}")
    return EXIT_OK


def cmd_train(args) -> int:
    from corpusforge_trainer.cli import run

    return run(args.args)


def cmd_publish(args) -> int:
    from corpusforge.publish import publish

    dry_run = args.dry_run_dir
    if args.dry_run and dry_run is None:
        import tempfile

        dry_run = tempfile.mkdtemp(prefix="corpusforge-dry-run-")
    where = publish(
        args.output_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        dry_run=dry_run,
        license=args.license,
        token=args.token,
        commit_message=args.commit_message,
        create_pr=args.create_pr,
    )
    if dry_run is not None:
        _console().print(f"dry run: wrote and loaded back {where} (nothing uploaded)", soft_wrap=True)
    else:
        _console().print(f"published {args.output_dir} to {args.repo_id}: {where}", soft_wrap=True)
    return EXIT_OK


def _corpus_docs(args):
    from corpusforge.diagnostics.corpus import iter_docs, lid_identifier

    identify = lid_identifier() if args.lid and not args.language else None
    return iter_docs(args.corpus, args.max_docs or None, args.language, args.text_field, identify, not args.keep_tags)


def print_fertility(report, title: str) -> None:
    from rich.table import Table

    table = Table(title=f"{title} ({report.vocab_size:,} ids)", title_justify="left")
    for col in ("language", "docs", "chars", "tokens", "tok/char", "tok/word", "word", "bytes", "unk"):
        table.add_column(col, justify="left" if col in ("language", "word") else "right")
    for s in report.languages.values():
        per_word = "—" if s.tokens_per_word is None else f"{s.tokens_per_word:.3f}"
        table.add_row(
            s.language, f"{s.docs:,}", f"{s.chars:,}", f"{s.tokens:,}", f"{s.tokens_per_char:.3f}", per_word,
            s.word_unit, f"{s.byte_share:.1%}", f"{s.unk_share:.1%}",
        )  # fmt: skip
    _console().print(table)
    for s in report.languages.values():
        if s.note:
            _console().print(f"{s.language}: {s.note}")


def cmd_vocab_fertility(args) -> int:
    from corpusforge.diagnostics import measure_fertility

    report = measure_fertility(args.tokenizer, _corpus_docs(args), segment_words=not args.no_words)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print_fertility(report, f"fertility of {args.tokenizer}")
    return EXIT_OK


def cmd_vocab_extend(args) -> int:
    from rich.table import Table

    from corpusforge.diagnostics import extend_vocabulary

    ext = extend_vocabulary(
        args.tokenizer, args.corpus, args.add, args.output, languages=args.languages, language=args.language,
        max_docs=args.max_docs or None, heldout=args.heldout, text_field=args.text_field, lid=args.lid,
        overwrite=args.overwrite,
    )  # fmt: skip
    if args.json:
        print(
            json.dumps({k: v for k, v in ext.to_dict().items() if k != "added_pieces"}, indent=2, ensure_ascii=False)
        )
        return EXIT_OK
    table = Table(title=f"held-out fertility, {ext.base} → {ext.output}", title_justify="left")
    for col in ("language", "docs", "tok/char before", "tok/char after", "fewer tokens"):
        table.add_column(col, justify="left" if col == "language" else "right")
    for lang, before in ext.before.languages.items():
        after = ext.after.languages[lang]
        ratio = before.tokens / after.tokens if after.tokens else float("nan")
        table.add_row(
            lang, f"{before.docs:,}", f"{before.tokens_per_char:.3f}", f"{after.tokens_per_char:.3f}", f"{ratio:.2f}×"
        )
    console = _console()
    console.print(table)
    console.print(
        f"added {len(ext.added):,} pieces (ids {ext.base_size:,}–{ext.extended_size - 1:,}, {ext.method}); "
        f"load with AutoTokenizer.from_pretrained('{ext.output}'); report: {ext.output}/vocab_extension.json"
    )
    for note in ext.notes:
        console.print(f"note: {note}")
    return EXIT_OK


def _align_config(args):
    from corpusforge.diagnostics.align_config import align_config_from_dict, load_align_config
    from corpusforge.errors import CorpusforgeError

    flags = {"--model": args.model, "--prompts": args.prompts, "--prompts-en": args.prompts_en}
    flags["--language"] = args.language
    for flag in ("reference", "heldout", "heldout_en", "no_retention"):
        flags["--" + flag.replace("_", "-")] = getattr(args, flag)
    if args.config:
        given = [flag for flag, value in flags.items() if value]
        if given:
            raise CorpusforgeError(
                f"{', '.join(given)}: with --config, models, prompts and language come from the file "
                "(change them with --set key=value)"
            )
        return load_align_config(args.config, args.set, output=args.output)
    required = ("--model", "--prompts", "--prompts-en", "--language")
    missing = [flag for flag in (*required, "--output") if not {**flags, "--output": args.output}[flag]]
    if missing:
        raise CorpusforgeError(f"missing {', '.join(missing)} (or pass --config FILE)")
    if args.backend == "openai" and not args.base_url:
        raise CorpusforgeError("--backend openai needs --base-url (e.g. http://localhost:8000/v1)")
    if args.label and len(args.label) != len(args.model):
        raise CorpusforgeError(f"{len(args.label)} --label for {len(args.model)} --model: give one label per model")
    backend = {"type": args.backend}
    backend.update({"base_url": args.base_url} if args.base_url else {})
    backend.update({"dtype": args.dtype} if args.dtype else {})
    labels = args.label or [None] * len(args.model)
    sampling = {"temperature": args.temperature, "max_tokens": args.max_tokens, "seed": args.seed}
    data = {
        "language": args.language,
        "models": [{"model": m, "backend": backend, **({"name": n} if n else {})} for m, n in zip(args.model, labels)],
        "prompts": {"target": args.prompts, "en": args.prompts_en, "text_field": args.text_field, "limit": args.limit},
        "sampling": {k: v for k, v in sampling.items() if v is not None},
        "system": args.system,
        "output": args.output,
        **({"min_letters": args.min_letters} if args.min_letters is not None else {}),
        **({"reference": args.reference} if args.reference else {}),
        **({"retention": {"enabled": False}} if args.no_retention else {}),
    }
    if args.heldout or args.heldout_en:
        data["perplexity"] = {"target": args.heldout or [], "en": args.heldout_en or []}
    return align_config_from_dict(data, args.set)


def cmd_eval_align(args) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from corpusforge.diagnostics.align import CLASSES, run_align
    from corpusforge.kd.config import language_name

    config = _align_config(args)
    columns = (TextColumn("[bold]{task.description}[/bold]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_console(stderr=True), transient=True) as display:
        bars: dict[str, int] = {}

        def on_progress(name: str, done: int, total: int) -> None:
            if name not in bars:
                bars[name] = display.add_task(name, total=total)
            display.update(bars[name], completed=done)

        result = run_align(config, progress=on_progress)
    target = language_name(result.language)
    table = Table(title=f"response language ({result.language}; shares of classified responses)", title_justify="left")
    for col in ("model", "prompts", "n", "→ English", f"→ {target}", "→ other", "degenerate", "undet.", "failed"):
        table.add_column(col, justify="left" if col in ("model", "prompts") else "right", no_wrap=col != "model")
    for m in result.models:
        for prompt_set, cell in m.cells.items():
            shares = cell.shares
            shown = ["—" if shares[c] is None else f"{shares[c]:.1%} ({cell.counts[c]:,})" for c in CLASSES]
            table.add_row(
                m.name, "English" if prompt_set == "en" else target, f"{cell.prompts:,}", *shown,
                f"{cell.counts['undetermined']:,}", f"{cell.counts['failed']:,}",
            )  # fmt: skip
    console = _console()
    console.print(table)
    for m in result.models:
        others = m.cells["target"].other_languages
        if others:
            shown = ", ".join(f"{k} {v}" for k, v in others.items())
            console.print(f"{m.name}, other languages on {target} prompts: {shown}")
        for prompt_set, cell in m.cells.items():
            if cell.degenerations:
                shown = ", ".join(f"{k} {v}" for k, v in cell.degenerations.items())
                prompts = "English" if prompt_set == "en" else target
                console.print(f"{m.name}, degenerate answers to {prompts} prompts: {shown}")
    cut = sum(cell.degenerations.get("cut_off", 0) for m in result.models for cell in m.cells.values())
    if cut:
        console.print(
            f"cut_off: {cut} answer(s) reached max_tokens ({result.config.sampling.max_tokens}) without ending; "
            "if genuine answers are longer than that, raise --max-tokens (a loop is reported as a loop either way)",
            soft_wrap=True,
        )
    _print_scorecard(console, result.scorecard)
    console.print(
        f"wrote {result.scorecard_html}, {result.scorecard_json}, {result.json_path} and {result.png_path}",
        soft_wrap=True,
    )
    return EXIT_OK


def _print_scorecard(console, card: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    from corpusforge.diagnostics.scorecard import _pct

    lang = card["language"]
    table = Table(title=f"transfer scorecard (reference: {card['reference']})", title_justify="left")
    columns = ("model", "verdict", f"{lang}→{lang}", "en→en", f"degenerate en/{lang}", f"turn ended en/{lang}")
    for col in (*columns, "retention NLL", "Δ", f"ppl {lang}", "ppl en"):
        table.add_column(col, justify="left" if col in ("model", "verdict") else "right", no_wrap=col != "model")

    def num(x, digits=3):
        return "—" if x is None else f"{x:.{digits}f}"

    for m in card["models"]:
        x = m["measures"]
        retention = x["retention"] or {}
        table.add_row(
            m["name"], m["verdict"].replace("_", " "), _pct(x["language"]["target"]["target"]), _pct(x["language"]["en"]["en"]),
            f"{_pct(x['degenerate']['en'])} / {_pct(x['degenerate']['target'])}",
            f"{_pct(x['chat_format']['en'])} / {_pct(x['chat_format']['target'])}",
            num(retention.get("nll_per_token")), num(retention.get("delta_per_token")),
            num(x["perplexity"].get("target"), 2), num(x["perplexity"].get("en"), 2),
        )  # fmt: skip
    console.print(table)
    for m in card["models"]:
        console.print(escape(m["verdict_line"]), soft_wrap=True)
        for f in m["findings"]:
            if f["kind"] == "unclear":
                console.print(f"  not decisive: {escape(f['text'])}", soft_wrap=True)
        if m["measures"]["note"]:
            console.print(f"  {escape(m['measures']['note'])}", soft_wrap=True)


DESCRIPTION = (
    "Build language-transfer data for chat LLMs from YAML recipes (InsCP continual pretraining, self-distilled\n"
    "KD), train on it, publish it, and measure whether the transfer worked."
)
EPILOG = """examples:
  corpusforge run recipes/quickstart.yaml            build a corpus (rerun the same command to resume)
  corpusforge inspect out/quickstart                 funnel, languages, a few rows
  corpusforge train trainer/configs/cp-lora.yaml     LoRA / full training on a built corpus
  corpusforge eval scorecard --config eval.yaml      did the transfer work?

output: -v/--verbose adds INFO lines (and datatrove's per-task logs for `run`), -q/--quiet prints errors only,
--log-level sets the level; all on stderr. These options go before or after the command.

exit status: 0 done; 1 the build or a model failed; 2 bad input (recipe, paths, arguments); 130 interrupted."""


def _output_options() -> argparse.ArgumentParser:
    """-v / -q / --log-level, accepted before and after the command (SUPPRESS: a command's parser does not reset
    what was given before it)."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("output")
    group.add_argument("--verbose", "-v", action="store_true", default=argparse.SUPPRESS, help="INFO lines too")
    group.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS, help="errors only")
    group.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default=argparse.SUPPRESS, help="log level"
    )
    return common


def setup_logging(args) -> None:
    """corpusforge's log lines on stderr at the level the options ask (default: warnings)."""
    import logging

    level = "error" if getattr(args, "quiet", False) else "info" if getattr(args, "verbose", False) else "warning"
    level = getattr(args, "log_level", None) or level
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for name in ("corpusforge", "corpusforge_trainer", "py.warnings"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    logging.captureWarnings(True)  # library warnings follow the same level (--quiet: none)


def _taking(common: argparse.ArgumentParser, sub):
    """``sub`` whose commands all take the options of ``common``."""
    add_parser = sub.add_parser

    def with_common(name, **kwargs):
        return add_parser(name, parents=[common, *kwargs.pop("parents", [])], **kwargs)

    sub.add_parser = with_common
    return sub


def make_parser() -> argparse.ArgumentParser:
    common = _output_options()
    parser = argparse.ArgumentParser(
        prog="corpusforge",
        description=DESCRIPTION,
        epilog=EPILOG,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from corpusforge import __version__

    parser.add_argument("--version", action="version", version=f"corpusforge {__version__}")
    sub = _taking(common, parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))

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
    p.add_argument("--commit-message", help="the commit's message (default: 'Upload dataset built with corpusforge')")
    p.add_argument("--create-pr", action="store_true", help="open a pull request with the commit instead of pushing")
    p.add_argument(
        "--token",
        help="Hugging Face token (default: HF_TOKEN or `hf auth login`; a token typed here stays in history)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="write the folder that would be uploaded and load it back; no upload"
    )
    p.add_argument("--dry-run-dir", metavar="DIR", help="where --dry-run writes (implies it; default: a new temp dir)")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser(
        "train",
        help="train on built shards (`train CONFIG`) or merge a LoRA run (`train merge RUN --output DIR`)",
        add_help=False,
        prefix_chars="+",  # so every option, --help included, reaches the trainer's own parser
    )
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_train)

    vocab = sub.add_parser("vocab", help="tokenizer diagnostics: fertility per language, vocabulary extension")
    vocab_sub = _taking(common, vocab.add_subparsers(dest="vocab_command", required=True))

    def corpus_args(p):
        p.add_argument("corpus", nargs="+", help="corpusforge output folders, jsonl (`text` field) or txt files")
        p.add_argument(
            "--tokenizer", "-t", required=True, help="HF folder or Hub id, SentencePiece .model, tekken .json"
        )
        p.add_argument(
            "--max-docs", type=int, default=20_000, help="read the first N documents (0: all; default 20000)"
        )
        p.add_argument("--language", help="language of rows that have no `language` column")
        p.add_argument("--lid", action="store_true", help="identify unlabelled rows with fastText (lid.176)")
        p.add_argument("--text-field", default="text", help="jsonl field / column holding the text (default: text)")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = vocab_sub.add_parser("fertility", help="tokens per character / word, byte-fallback and unknown shares")
    corpus_args(p)
    p.add_argument(
        "--keep-tags", action="store_true", help="measure InsCP-tagged builds with their chat-template wrapper"
    )
    p.add_argument("--no-words", action="store_true", help="skip word counting (Thai segmentation is the slow part)")
    p.set_defaults(func=cmd_vocab_fertility)

    p = vocab_sub.add_parser("extend", help="learn target-language pieces and append them; existing ids unchanged")
    corpus_args(p)
    p.add_argument("--add", type=int, required=True, help="number of new pieces (at most)")
    p.add_argument("--output", "-o", required=True, help="folder for the extended tokenizer")
    p.add_argument("--languages", nargs="+", help="train on these languages (default: all but en)")
    p.add_argument("--heldout", type=float, default=0.1, help="share of documents kept for before/after (0.1)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    p.set_defaults(func=cmd_vocab_extend)

    evaluate = sub.add_parser("eval", help="did the transfer work? the scorecard of base vs tuned models")
    eval_sub = _taking(common, evaluate.add_subparsers(dest="eval_command", required=True))
    p = eval_sub.add_parser(
        "scorecard",
        aliases=["align"],
        help="per model: answer language (degenerate answers apart), turns ended, retention, perplexity, a verdict",
    )
    p.add_argument("--config", "-c", help="eval YAML (models with their own backends); replaces the flags below")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--model", "-m", action="append", help="model folder, LoRA adapter folder, Hub id or served name")
    p.add_argument("--label", action="append", help="name of each --model in the table and chart (in order)")
    p.add_argument("--prompts", nargs="+", help="target-language prompts: jsonl (`text`), txt, corpusforge outputs")
    p.add_argument("--prompts-en", nargs="+", help="English prompts, same forms")
    p.add_argument("--language", "-l", help="target language, e.g. th, zh_Hant")
    p.add_argument("--backend", choices=("transformers", "vllm", "openai"), default="transformers")
    p.add_argument("--base-url", help="endpoint root for --backend openai, e.g. http://localhost:8000/v1")
    p.add_argument("--dtype", help="model dtype (transformers, vllm)")
    p.add_argument("--max-tokens", type=int, help="tokens per response (default 256)")
    p.add_argument("--temperature", type=float, help="default 0 (greedy)")
    p.add_argument("--seed", type=int, help="base seed (default 0)")
    p.add_argument("--limit", type=int, help="first N prompts of each set")
    p.add_argument("--min-letters", type=int, help="shorter responses are `undetermined` (default 10)")
    p.add_argument("--system", help="system prompt for every request")
    p.add_argument("--text-field", default="text", help="jsonl field / column holding the prompt (default: text)")
    p.add_argument("--reference", help="name (--label) of the model the others are judged against (default: first)")
    p.add_argument("--heldout", nargs="+", help="held-out target-language text for perplexity (jsonl, txt, outputs)")
    p.add_argument("--heldout-en", nargs="+", help="held-out English text for perplexity")
    p.add_argument("--no-retention", action="store_true", help="skip the retention NLL")
    p.add_argument("--output", "-o", help="folder for scorecard.json/.html and align.json/.png")
    p.set_defaults(func=cmd_eval_align)
    return parser


def main(argv: list[str] | None = None) -> int:
    from rich.markup import escape

    from corpusforge.errors import BuildFailed, CorpusforgeError

    args = make_parser().parse_args(argv)
    setup_logging(args)
    try:
        return args.func(args)
    except CorpusforgeError as err:
        _console(stderr=True).print(f"[red]error[/red]: {escape(str(err))}", soft_wrap=True)
        return EXIT_BAD_INPUT
    except BuildFailed as err:
        _console(stderr=True).print(f"[red]build failed[/red]: {escape(str(err))}", soft_wrap=True)
        return EXIT_FAILED
    except KeyboardInterrupt:
        _console(stderr=True).print("interrupted: rerun the same command to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
