"""The output folder belongs to one build at a time, and corpusforge only ever removes what it wrote there.

- ``BuildLock``: an exclusive POSIX record lock (``lockf``) on ``OUT/.corpusforge/lock`` held for the life of a run
  (or a finalize). The kernel drops it when its process dies, so the lock of a killed run is taken over by the next
  one. Not ``flock``: a ``flock`` is shared with forked children, and datatrove forks a ``multiprocess.Manager``
  that outlives a killed run and would hold the folder. The file says who holds it (pid, host, start time) so a
  refused second run can name the running one.
- ``check_output``: a folder holding any file its build's ledger does not record (a user's ``thesis.tex``, a
  ``report/my-analysis.md``, a ``.corpusforge/my-notes.txt``) is refused, with or without ``--overwrite``, and
  ``remove_build`` deletes exactly what the ledger records (corpusforge.corpus.ledger). No name decides ownership.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from corpusforge.corpus.layout import LOCK, PLAN, WORK_DIR
from corpusforge.corpus.ledger import Ledger
from corpusforge.errors import OutputError

__all__ = ["BuildLock", "BuildLockedError", "check_output", "previous_plan", "remove_build"]


class BuildLockedError(OutputError):
    """Another run holds the output folder."""


def previous_plan(out: Path) -> dict | None:
    """The plan of the build that last ran in ``out`` (None: not a corpusforge build folder)."""
    path = out / WORK_DIR / PLAN
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None


def _shown(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def check_output(out: Path) -> dict | None:
    """Refuse a folder holding anything its build did not record writing; return its previous plan (None: a new
    folder, or one whose build died before writing its plan).

    Reads only: a refused folder is left exactly as it was."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {out} is a file, not a folder; choose another --output")
    if not out.exists() or not any(out.iterdir()):
        return None
    plan = previous_plan(out)
    if plan is not None and "ledger" not in plan:
        raise OutputError(
            f"output folder {out} holds a build by an older corpusforge, which kept no record of the files it "
            "wrote; nothing was changed. Remove the folder yourself if it is yours to remove, or choose another "
            "--output"
        )
    foreign = Ledger(out).unrecorded()
    if foreign:
        raise OutputError(
            f"output folder {out} holds files corpusforge did not write ({_shown(foreign)}); nothing was changed. "
            "Choose another --output (an empty or new folder); --overwrite never removes files it did not write"
        )
    return plan


# Kept through an --overwrite: the KD replay cache is content-addressed (an entry is found only by the exact
# request: prompt, sample, call, model, sampling, messages), so a rebuild that changes only what happens to the
# answers (checks, steps after generation) replays them instead of generating them again.
KEEP_ON_OVERWRITE = (f"{WORK_DIR}/kd-cache/",)


def remove_build(out: Path) -> None:
    """Before another build runs in ``out``: delete what the previous one recorded in its work folder (the KD replay
    cache stays). Its corpus — shards, state.json, manifest, report — stays readable until the new build's
    finalize replaces its state.json, which then removes it (``remove_superseded``)."""
    work = f"{WORK_DIR}/"
    Ledger(out).remove(lambda rel: rel.startswith(work) and not rel.startswith(KEEP_ON_OVERWRITE))


def remove_superseded(out: Path, current: set[str]) -> list[str]:
    """After finalize: delete every recorded file outside the work folder that is not part of the ``current``
    corpus (paths relative to ``out``): an earlier build's shards, its report when this one wrote none."""
    return Ledger(out).remove(lambda rel: not rel.startswith(f"{WORK_DIR}/") and rel not in current)


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
