"""The top-level parser (its epilog lists the exit statuses), logging, and each error's exit status."""

from __future__ import annotations

import argparse
import sys

from corpusforge.cli import build, evaluate, publish, train, vocab
from corpusforge.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    make_console,
    os_error,
    output_options,
    taking,
)

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

exit status: 0 done; 1 the build or a model failed; 2 bad input (recipe, paths, permissions, arguments);
130 interrupted. A full disk is 1; a traceback is shown only with -v."""


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
    from corpusforge.errors import BuildFailed, CorpusforgeError

    args = make_parser().parse_args(argv)
    setup_logging(args)
    try:
        return args.func(args)
    except CorpusforgeError as err:
        return _fail(args, "error", str(err), EXIT_BAD_INPUT)
    except BuildFailed as err:
        return _fail(args, "build failed", str(err), EXIT_FAILED)
    except KeyboardInterrupt:
        make_console(stderr=True).print("interrupted: rerun the same command to resume")
        return EXIT_INTERRUPTED
    except OSError as err:  # a read-only or full disk, a path that cannot be used
        status, message = os_error(err)
        return _fail(args, "error", message, status, traceback=True)
    except Exception as err:  # a bug or a library's failure: one line; -v shows where
        hint = "" if getattr(args, "verbose", False) else " (-v shows the traceback)"
        return _fail(args, "error", f"{type(err).__name__}: {err}{hint}", EXIT_FAILED, traceback=True)


def _fail(args, label: str, message: str, status: int, traceback: bool = False) -> int:
    """Print ``label: message`` on stderr (after the traceback of the error being handled, with -v) → ``status``."""
    from rich.markup import escape

    if traceback and getattr(args, "verbose", False):
        import traceback as tb

        tb.print_exc()
    make_console(stderr=True).print(f"[red]{label}[/red]: {escape(message)}", soft_wrap=True)
    return status
