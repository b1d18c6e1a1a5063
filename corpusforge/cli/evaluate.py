"""`corpusforge eval scorecard` (alias `eval align`): did the transfer work? base vs tuned models."""

from __future__ import annotations

from corpusforge.cli.common import EXIT_OK, make_console, taking


def add_commands(sub, common) -> None:
    evaluate = sub.add_parser("eval", help="did the transfer work? the scorecard of base vs tuned models")
    eval_sub = taking(common, evaluate.add_subparsers(dest="eval_command", required=True))
    p = eval_sub.add_parser(
        "scorecard",
        aliases=["align"],
        help="per model: answer language (degenerate answers apart), turns ended / cut off, retention, perplexity, "
        "a verdict",
    )
    p.add_argument("--config", "-c", help="eval YAML (models with their own backends); replaces the flags below")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--model", "-m", action="append", help="model folder, LoRA adapter folder, Hub id or served name")
    p.add_argument("--label", action="append", help="name of each --model in the table and chart (in order)")
    p.add_argument(
        "--prompts",
        nargs="+",
        help="target-language prompts: jsonl (`text`), txt, corpusforge outputs (default: the shipped set, if any)",
    )
    p.add_argument("--prompts-en", nargs="+", help="English prompts, same forms (default: the shipped English set)")
    p.add_argument("--language", "-l", help="target language, e.g. th, zh_Hant")
    p.add_argument("--backend", choices=("transformers", "vllm", "openai"), default="transformers")
    p.add_argument("--base-url", help="endpoint root for --backend openai, e.g. http://localhost:8000/v1")
    p.add_argument("--dtype", help="model dtype (transformers, vllm)")
    p.add_argument("--max-tokens", type=int, help="tokens per response (default 256)")
    p.add_argument("--temperature", type=float, help="default 0 (greedy)")
    p.add_argument("--top-p", type=float, help="nucleus sampling (default 1)")
    p.add_argument("--top-k", type=int, help="sample from the k most likely tokens only (default: all)")
    p.add_argument("--seed", type=int, help="base seed (default 0)")
    p.add_argument(
        "--auto-sampling",
        action="store_true",
        help="temperature, top_p, top_k from each model's generation_config.json (greedy when it sets none)",
    )
    p.add_argument("--samples", type=int, help="answers per prompt, each with its own seed (default 1)")
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


def _align_config(args):
    from corpusforge.errors import CorpusforgeError
    from corpusforge.eval.scorecard.config import load_scorecard_config, scorecard_config_from_dict

    flags = {"--model": args.model, "--prompts": args.prompts, "--prompts-en": args.prompts_en}
    flags["--language"] = args.language
    for flag in ("reference", "heldout", "heldout_en", "no_retention", "auto_sampling", "samples"):
        flags["--" + flag.replace("_", "-")] = getattr(args, flag)
    if args.config:
        given = [flag for flag, value in flags.items() if value]
        if given:
            raise CorpusforgeError(
                f"{', '.join(given)}: with --config, models, prompts, sampling and language come from the file "
                "(change them with --set key=value)"
            )
        return load_scorecard_config(args.config, args.set, output=args.output)
    required = ("--model", "--language")
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
    sampling = {
        "temperature": args.temperature,
        "top_p": args.top_p,
        "top_k": args.top_k,
        "max_tokens": args.max_tokens,
        "seed": args.seed,
    }
    sampling = {k: v for k, v in sampling.items() if v is not None}
    if args.auto_sampling:
        sampling["auto"] = True
    prompts = {"target": args.prompts, "en": args.prompts_en, "text_field": args.text_field, "limit": args.limit}
    data = {
        "language": args.language,
        "models": [{"model": m, "backend": backend, **({"name": n} if n else {})} for m, n in zip(args.model, labels)],
        "prompts": {k: v for k, v in prompts.items() if v is not None},
        "sampling": sampling,
        **({"samples": args.samples} if args.samples is not None else {}),
        "system": args.system,
        "output": args.output,
        **({"min_letters": args.min_letters} if args.min_letters is not None else {}),
        **({"reference": args.reference} if args.reference else {}),
        **({"retention": {"enabled": False}} if args.no_retention else {}),
    }
    if args.heldout or args.heldout_en:
        data["perplexity"] = {"target": args.heldout or [], "en": args.heldout_en or []}
    return scorecard_config_from_dict(data, args.set)


def _eval_columns() -> tuple:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    return (TextColumn("[bold]{task.description}[/bold]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


def cmd_eval_align(args) -> int:
    from rich.table import Table

    from corpusforge.eval.scorecard.evaluate import run_scorecard
    from corpusforge.eval.scorecard.results import CLASSES
    from corpusforge.eval.scorecard.verdicts import _ci
    from corpusforge.lang.names import language_name
    from corpusforge.progress import progress

    config = _align_config(args)
    with progress(_eval_columns) as display:
        bars: dict[str, int] = {}

        def on_progress(name: str, done: int, total: int) -> None:
            if name not in bars:
                bars[name] = display.add_task(name, total=total)
            display.update(bars[name], completed=done)

        result = run_scorecard(config, progress=on_progress)
    target = language_name(result.language)
    title = f"response language ({result.language}; shares of classified responses, [95% interval])"
    table = Table(title=title, title_justify="left")
    columns = ("model", "prompts", "n", "→ English", f"→ {target}", "→ other", "degenerate", "undet.", "failed")
    for col in (*columns, "cut off"):
        table.add_column(col, justify="left" if col in ("model", "prompts") else "right", no_wrap=col != "model")
    for m in result.models:
        for prompt_set, cell in m.cells.items():
            shares = cell.shares
            shown = [
                "—" if shares[c] is None else f"{shares[c]:.1%} ({cell.counts[c]:,}) {_ci(cell.of_class(c).interval)}"
                for c in CLASSES
            ]
            cut = cell.cut_off
            n = (
                f"{cell.prompts:,}"
                if cell.answers == cell.prompts
                else f"{cell.prompts:,}×{cell.answers // cell.prompts}"
            )
            table.add_row(
                m.name, "English" if prompt_set == "en" else target, n, *shown,
                f"{cell.counts['undetermined']:,}", f"{cell.counts['failed']:,}",
                "—" if cut.share is None else f"{cut.share:.1%} ({cut.k:,}) {_ci(cut.interval)}",
            )  # fmt: skip
    console = make_console()
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
            if cell.cut_off.k:
                what = ", ".join(f"{k} {v}" for k, v in cell.cut_off_by_class.items())
                prompts = "English" if prompt_set == "en" else target
                console.print(f"{m.name}, answers to {prompts} prompts cut off at max_tokens: {what}", soft_wrap=True)
        for note in m.sampling.get("notes", []):
            console.print(f"{m.name}, sampling: {note}", soft_wrap=True)
    genuine = sum(
        v
        for m in result.models
        for cell in m.cells.values()
        for c, v in cell.cut_off_by_class.items()
        if c != "degenerate"
    )
    if genuine:
        console.print(
            f"cut off: {genuine} answer(s) that are not loops or echoes reached max_tokens "
            f"({result.config.sampling.max_tokens}) without ending; they count in their language, but as turns not "
            "ended — raise --max-tokens (sampling.max_tokens) if genuine answers are longer than that",
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

    from corpusforge.eval.scorecard.verdicts import _ci, _pct

    lang = card["language"]
    table = Table(title=f"transfer scorecard (reference: {card['reference']})", title_justify="left")
    columns = ("model", "verdict", f"{lang}→{lang}", "en→en", f"degenerate en/{lang}", f"turn ended en/{lang}")
    columns = (*columns, f"cut off en/{lang}")
    for col in (*columns, "retention NLL", "Δ", f"ppl {lang}", "ppl en"):
        table.add_column(col, justify="left" if col in ("model", "verdict") else "right", no_wrap=col != "model")

    def num(x, digits=3):
        return "—" if x is None else f"{x:.{digits}f}"

    for m in card["models"]:
        x = m["measures"]
        ci = x["ci95"]
        retention = x["retention"] or {}
        table.add_row(
            m["name"], m["verdict"].replace("_", " "),
            f"{_pct(x['language']['target']['target'])} {_ci(ci['language']['target']['target'])}",
            f"{_pct(x['language']['en']['en'])} {_ci(ci['language']['en']['en'])}",
            f"{_pct(x['degenerate']['en'])} / {_pct(x['degenerate']['target'])}",
            f"{_pct(x['chat_format']['en'])} / {_pct(x['chat_format']['target'])}",
            f"{_pct(x['cut_off']['en'])} / {_pct(x['cut_off']['target'])}",
            num(retention.get("nll_per_token")), num(retention.get("delta_per_token")),
            num(x["perplexity"].get("target"), 2), num(x["perplexity"].get("en"), 2),
        )  # fmt: skip
    console.print(table)
    _print_fidelity(console, card)
    for m in card["models"]:
        console.print(escape(m["verdict_line"]), soft_wrap=True)
        for f in m["findings"]:
            if f["kind"] == "unclear":
                console.print(f"  not decisive: {escape(f['text'])}", soft_wrap=True)
        if m["measures"]["note"]:
            console.print(f"  {escape(m['measures']['note'])}", soft_wrap=True)


def _print_fidelity(console, card: dict) -> None:
    """The language-fidelity measures that apply to the target language, one row per model."""
    from rich.table import Table

    from corpusforge.eval.scorecard.verdicts import _ci, _pct

    lang, words = card["language"], card["other_words"]
    columns = {"every line en": ("line_pass", "en"), f"every line {lang}": ("line_pass", "target")}
    if card["non_latin"]:
        columns["no English word"] = ("word_pass", "target")
    if words:
        columns[f"{words['script']} chars"] = ("other_script", "target")
        columns[f"{words['region']} words"] = ("other_region", "target")
    table = Table(title="language fidelity (shares of the answers that count, [95% interval])", title_justify="left")
    for col in (
        "model",
        *columns,
        *(("per 1,000 Han",) if words else ()),
        *(("Thai letters",) if lang == "th" else ()),
    ):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=col != "model")
    for m in card["models"]:
        x = m["measures"]
        row = [m["name"]] + [f"{_pct(x[name][s])} {_ci(x['ci95'][name][s])}" for name, s in columns.values()]
        pooled = x["fidelity"]["target"]
        if words:
            per = pooled["script_per_1000"]
            row.append("—" if per is None else f"{per:.1f}")
        if lang == "th":
            row.append(_pct(pooled["thai_share"]))
        table.add_row(*row)
    console.print(table)
