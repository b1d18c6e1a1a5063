"""What every command shares: its exit status, the rich console, the -v/-q/--log-level options."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
from collections.abc import Iterator

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

# A path the user gave that cannot be used: theirs to fix (exit 2). A full disk, an I/O error: the environment's (1).
_USER_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG}
_FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


def os_error(err: OSError) -> tuple[int, str]:
    """An OSError that reached the command as its exit status and one line naming the path."""
    path = err.filename2 or err.filename  # os.replace(tmp, target): the target
    reason = err.strerror or str(err)
    if err.errno in _FULL:
        return EXIT_FAILED, f"{_FULL[err.errno]} writing {path}" if path else _FULL[err.errno]
    status = EXIT_BAD_INPUT if err.errno in _USER_ERRNOS else EXIT_FAILED
    return status, f"{path}: {reason[:1].lower()}{reason[1:]}" if path else reason


@contextlib.contextmanager
def writing(path) -> Iterator[None]:
    """An OSError without a file name (a ``write()`` that finds the disk full) is said to be writing ``path``."""
    try:
        yield
    except OSError as err:
        if err.filename is None and err.errno is not None:
            err.filename = str(path)
        raise


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
