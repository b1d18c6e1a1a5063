"""The output folder belongs to one build at a time, and corpusforge only ever removes what it wrote there.

- ``BuildLock``: an exclusive POSIX record lock (``lockf``) on ``OUT/.corpusforge/lock`` held for the life of a run
  (or a finalize). The kernel drops it when its process dies, so the lock of a killed run is taken over by the next
  one. Not ``flock``: a ``flock`` is shared with forked children, and datatrove forks a ``multiprocess.Manager``
  that outlives a killed run and would hold the folder. The file says who holds it (pid, host, start time) so a
  refused second run can name the running one.
- ``claim_output``: a folder with anything corpusforge did not write (a user's ``thesis.tex``) is refused, with or
  without ``--overwrite``; ``--overwrite`` removes exactly the entries the previous build's plan lists as its own.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import time
from fnmatch import fnmatch
from pathlib import Path

from corpusforge.errors import OutputError
from corpusforge.shards.writer import WORK_DIR

LOCK = "lock"
PLAN = "plan.json"

# Every top-level entry a build writes into its output folder (shards, the datasets layout, manifest, report,
# the work folder). A plan records the list it was built with: that list, not this one, decides what an
# `--overwrite` of that build may remove.
OWNED = ["data-*-of-*.arrow", "dataset_info.json", "state.json", "manifest.json", "report.html", "report", WORK_DIR]


class BuildLockedError(OutputError):
    """Another run holds the output folder."""


def foreign_entries(out: Path, owned: list[str]) -> list[str]:
    """Top-level names in ``out`` that match none of the ``owned`` patterns."""
    return sorted(p.name for p in out.iterdir() if not any(fnmatch(p.name, pattern) for pattern in owned))


def previous_plan(out: Path) -> dict | None:
    """The plan of the build that last ran in ``out`` (None: not a corpusforge build folder)."""
    path = out / WORK_DIR / PLAN
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None


def check_output(out: Path) -> dict | None:
    """Refuse a folder holding anything corpusforge did not write; return its previous plan (None: new folder).

    Reads only: a refused folder is left exactly as it was."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {out} is a file, not a folder; choose another --output")
    if not out.exists() or not any(out.iterdir()):
        return None
    plan = previous_plan(out)
    owned = [WORK_DIR] if plan is None else plan.get("owned") or OWNED
    foreign = foreign_entries(out, owned)
    if plan is None and not foreign:  # only an empty work folder: a build that died before writing its plan
        return None
    if plan is None or foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OutputError(
            f"output folder {out} holds files corpusforge did not write ({shown}); nothing was changed. "
            "Choose another --output (an empty or new folder); --overwrite never removes files it did not write"
        )
    return plan


# Kept through an --overwrite: the KD replay cache is content-addressed (an entry is found only by the exact
# request: prompt, sample, call, model, sampling, messages), so a rebuild that changes only what happens to the
# answers (checks, steps after generation) replays them instead of generating them again.
KEEP_ON_OVERWRITE = {"kd-cache"}


def remove_build(out: Path, plan: dict) -> None:
    """Delete what the build recorded in ``plan`` wrote in ``out`` — and nothing else (the lock file stays, and the
    KD replay cache)."""
    owned = plan.get("owned") or OWNED
    for entry in sorted(out.iterdir()):
        if not any(fnmatch(entry.name, pattern) for pattern in owned):
            continue
        if entry.name == WORK_DIR:
            for inner in entry.iterdir():
                if inner.name != LOCK and inner.name not in KEEP_ON_OVERWRITE:
                    shutil.rmtree(inner) if inner.is_dir() and not inner.is_symlink() else inner.unlink()
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


_HELD: set[str] = set()  # POSIX locks do not exclude threads of one process: this does


class BuildLock:
    """``with BuildLock(out):`` — exclusive ownership of a build folder, released on exit or on process death."""

    def __init__(self, out: Path, what: str = "run"):
        self.path = Path(out) / WORK_DIR / LOCK
        self.what = what
        self._fd: int | None = None
        self._key = ""

    def __enter__(self) -> BuildLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = str(self.path.resolve())
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            if key in _HELD:
                raise BlockingIOError
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise BuildLockedError(
                f"{self.path.parent.parent}: another corpusforge {holder} is using this output folder; wait for it "
                "to finish (or stop it), then rerun to resume"
            ) from None
        _HELD.add(key)
        self._key = key
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": time.time(), "what": self.what}
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.lockf(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            _HELD.discard(self._key)


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        info = {}
    if not info:
        return "run"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started_at", 0)))
    return f"{info.get('what', 'run')} (pid {info.get('pid')} on {info.get('host')}, started {started})"
