"""`corpusforge train`: every argument, --help included, goes to corpusforge_trainer's own parser."""

from __future__ import annotations

import argparse


def add_commands(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train on built shards (`train CONFIG`) or merge a LoRA run (`train merge RUN --output DIR`)",
        add_help=False,
        prefix_chars="+",  # so every option, --help included, reaches the trainer's own parser
    )
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from corpusforge_trainer.cli import run

    return run(args.args)
