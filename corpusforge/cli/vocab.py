"""`corpusforge vocab fertility | extend`: tokenizer diagnostics and vocabulary extension."""

from __future__ import annotations

import json

from corpusforge.cli.common import EXIT_OK, make_console, taking


def add_commands(sub, common) -> None:
    vocab = sub.add_parser("vocab", help="tokenizer diagnostics: fertility per language, vocabulary extension")
    vocab_sub = taking(common, vocab.add_subparsers(dest="vocab_command", required=True))

    p = vocab_sub.add_parser("fertility", help="tokens per character / word, byte-fallback and unknown shares")
    _corpus_args(p)
    p.add_argument(
        "--keep-tags", action="store_true", help="measure InsCP-tagged builds with their chat-template wrapper"
    )
    p.add_argument("--no-words", action="store_true", help="skip word counting (Thai segmentation is the slow part)")
    p.set_defaults(func=cmd_vocab_fertility)

    p = vocab_sub.add_parser("extend", help="learn target-language pieces and append them; existing ids unchanged")
    _corpus_args(p)
    p.add_argument("--add", type=int, required=True, help="number of new pieces (at most)")
    p.add_argument("--output", "-o", required=True, help="folder for the extended tokenizer")
    p.add_argument("--languages", nargs="+", help="train on these languages (default: all but en)")
    p.add_argument("--heldout", type=float, default=0.1, help="share of documents kept for before/after (0.1)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    p.set_defaults(func=cmd_vocab_extend)


def _corpus_args(p):
    p.add_argument("corpus", nargs="+", help="corpusforge output folders, jsonl (`text` field) or txt files")
    p.add_argument("--tokenizer", "-t", required=True, help="HF folder or Hub id, SentencePiece .model, tekken .json")
    p.add_argument("--max-docs", type=int, default=20_000, help="read the first N documents (0: all; default 20000)")
    p.add_argument("--language", help="language of rows that have no `language` column")
    p.add_argument("--lid", action="store_true", help="identify unlabelled rows with fastText (lid.176)")
    p.add_argument("--text-field", default="text", help="jsonl field / column holding the text (default: text)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _corpus_docs(args):
    from corpusforge.eval.documents import iter_docs, lid_identifier

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
    make_console().print(table)
    for s in report.languages.values():
        if s.note:
            make_console().print(f"{s.language}: {s.note}")


def cmd_vocab_fertility(args) -> int:
    from corpusforge.eval import measure_fertility

    report = measure_fertility(args.tokenizer, _corpus_docs(args), segment_words=not args.no_words)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print_fertility(report, f"fertility of {args.tokenizer}")
    return EXIT_OK


def cmd_vocab_extend(args) -> int:
    from rich.table import Table

    from corpusforge.eval import extend_tokenizer

    ext = extend_tokenizer(
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
    console = make_console()
    console.print(table)
    console.print(
        f"added {len(ext.added):,} pieces (ids {ext.base_size:,}–{ext.extended_size - 1:,}, {ext.method}); "
        f"load with AutoTokenizer.from_pretrained('{ext.output}'); report: {ext.output}/vocab_extension.json"
    )
    for note in ext.notes:
        console.print(f"note: {note}")
    return EXIT_OK
