"""The top-level parser (its epilog lists the exit statuses), logging, and each error's exit status."""

from __future__ import annotations

import argparse
import sys

from corpusforge.cli import build, evaluate, publish, train, vocab
from corpusforge.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, make_console, output_options, taking

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


def make_parser() -> argparse.ArgumentParser:
    common = output_options()
    parser = argparse.ArgumentParser(
        prog="corpusforge",
        description=DESCRIPTION,
        epilog=EPILOG,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from corpusforge import __version__

    parser.add_argument("--version", action="version", version=f"corpusforge {__version__}")
    sub = taking(common, parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    build.add_commands(sub)  # in the order `--help` lists them
    publish.add_commands(sub)
    train.add_commands(sub)
    vocab.add_commands(sub, common)
    evaluate.add_commands(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    from rich.markup import escape

    from corpusforge.errors import BuildFailed, CorpusforgeError

    args = make_parser().parse_args(argv)
    setup_logging(args)
    try:
        return args.func(args)
    except CorpusforgeError as err:
        make_console(stderr=True).print(f"[red]error[/red]: {escape(str(err))}", soft_wrap=True)
        return EXIT_BAD_INPUT
    except BuildFailed as err:
        make_console(stderr=True).print(f"[red]build failed[/red]: {escape(str(err))}", soft_wrap=True)
        return EXIT_FAILED
    except KeyboardInterrupt:
        make_console(stderr=True).print("interrupted: rerun the same command to resume")
        return 130
