"""Command line: parse, call one function, print a summary (main process only).

corpusforge train CONFIG [--set key.path=value ...] [--prepare-only]
corpusforge train merge RUN_DIR --output DIR [--dtype auto|float32|bfloat16|float16]

The same as ``python -m corpusforge_trainer ...``; under a launcher:
accelerate launch --config_file trainer/accelerate/ddp.yaml -m corpusforge_trainer CONFIG
torchrun --nproc_per_node 8 -m corpusforge_trainer CONFIG
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="corpusforge train",
        description="Train on corpusforge shards (cp: InsCP/plain text, sft: KD messages, dpo: preference pairs). "
        "`corpusforge train merge RUN_DIR --output DIR` merges a LoRA adapter into its base model.",
    )
    p.add_argument("config", help="training config YAML (see trainer/configs/)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.max_steps=10 --set data.sources[0].weight=2",
    )
    p.add_argument(
        "--prepare-only", action="store_true", help="tokenize and pack the data (fills the cache), then stop"
    )
    return p


def merge_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="corpusforge train merge", description="Merge a LoRA adapter into its base model."
    )
    p.add_argument("run_dir", help="output_dir of a `method: lora` run, or one of its checkpoint-N folders")
    p.add_argument("--output", "-o", required=True, help="folder for the merged model and tokenizer")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    return p


def run(argv: list[str]) -> int:
    """Parse the trainer's arguments and run; `corpusforge train ...` and `python -m corpusforge_trainer` land here."""
    logging.basicConfig(
        level=logging.INFO if _is_main_process() else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if argv and argv[0] == "merge":
        from corpusforge_trainer.model import merge

        args = merge_parser().parse_args(argv[1:])
        out = merge(args.run_dir, args.output, args.dtype)
        print(f"merged {args.run_dir} into {out}")
        return EXIT_OK

    from corpusforge_trainer.config import load_config
    from corpusforge_trainer.run import train

    args = train_parser().parse_args(argv)
    result = train(load_config(args.config, args.set), prepare_only=args.prepare_only)
    if _is_main_process():
        d = result.data_stats
        print(
            f"data: {d['documents']:,} documents, {d['tokens']:,} tokens in {d['rows']:,} rows "
            f"({d['packing']}, row fill {d['row_fill']:.1%}); stats in {result.output_dir / 'data_stats.json'}"
        )
        if result.train_stats:
            t = result.train_stats
            speed = f"{t['tokens_per_second']:,.0f} tokens/s" if t["tokens_per_second"] else "-"
            print(
                f"trained to step {t['global_step']}: {t['real_tokens']:,} tokens, real-token share "
                f"{t['real_token_share']:.1%}, {speed}; saved to {result.output_dir}"
            )
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    from corpusforge.errors import CorpusforgeError

    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv)
    except CorpusforgeError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted: rerun with `train.resume: true` to continue from the last checkpoint", file=sys.stderr)
        return 130
