"""What every command shares: its exit status, the rich console, the -v/-q/--log-level options."""

from __future__ import annotations

import argparse
import os
import sys

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def make_console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # piped or redirected, rich assumes 80 columns and cuts table cells ("Traditional Chinese (T…"): a file has no
    # width, so print tables whole (COLUMNS still wins when set)
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, highlight=False, width=240 if wide else None)


def output_options() -> argparse.ArgumentParser:
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


def taking(common: argparse.ArgumentParser, sub):
    """``sub`` whose commands all take the options of ``common``."""
    add_parser = sub.add_parser

    def with_common(name, **kwargs):
        return add_parser(name, parents=[common, *kwargs.pop("parents", [])], **kwargs)

    sub.add_parser = with_common
    return sub
