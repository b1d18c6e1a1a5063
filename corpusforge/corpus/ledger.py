"""Ownership is a record: every path a build writes under its folder is recorded before the file is created.

Each process appends the paths it is about to write (relative to the build folder) to its own file,
``.corpusforge/owned/<host hash>-<pid>.txt`` — one per process, so workers on several machines of a shared file system
never write one file. The ledger is the only thing that says what corpusforge may remove: ``--overwrite`` deletes
recorded paths and refuses a folder holding any file the ledger does not name, wherever it is (``report/``, the work
folder, a shard-like name). Nothing here looks at a file's name to decide whose it is; the ledger's own files and the
lock are its structure.

Writers reach it three ways: ``Ledger.write``/``write_json`` (whole files, atomically), ``Ledger.record`` before a
file is opened by other code, and ``LedgerFolder`` — a datatrove ``DataFolder`` that records every file opened for
writing or moved into place through it (datatrove's task logs, stats and completion markers, shards, dedup files).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import socket
from collections.abc import Callable, Iterable
from pathlib import Path

from datatrove.io import DataFolder

from corpusforge.atomic import temp_path, write_atomic
from corpusforge.corpus.layout import LEDGER_DIR, LOCK, WORK_DIR

_STRUCTURE = (f"{WORK_DIR}/{LOCK}", f"{WORK_DIR}/{LEDGER_DIR}/")


class Ledger:
    """The record of what a build wrote under ``root``. Pickles as its path, so workers record into the same one."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        # recorded already through this process's ledger file (a file rewritten twice a second is recorded once);
        # forgotten when that file is replaced (``remove`` compacts the ledger)
        self._known: set[str] = set()
        self._known_in: int | None = None

    def __repr__(self) -> str:
        return f"Ledger({str(self.root)!r})"

    @property
    def folder(self) -> Path:
        return self.root / WORK_DIR / LEDGER_DIR

    def relative(self, path: str | Path) -> str:
        """``path`` (absolute, or relative to the working directory like any path) relative to the root."""
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(self.root)).as_posix()

    def record(self, *paths: str | Path) -> None:
        """Record ``paths`` (files under the root) as this build's, before writing them.
        A path outside the root is not in the build folder and not the ledger's (it is never removed)."""
        try:
            inode = self._own_file().stat().st_ino
        except FileNotFoundError:
            inode = None
        if inode is None or inode != self._known_in:
            self._known, self._known_in = set(), inode
        new = [rel for rel in map(self._relative_or_none, paths) if rel is not None and rel not in self._known]
        if new:
            self._append("".join(rel + "\n" for rel in new))
            self._known.update(new)
            self._known_in = self._own_file().stat().st_ino

    def record_folder(self, path: str | Path) -> None:
        """Record a whole folder, for a writer that does not go through the ledger (Slurm writes its job logs
        itself): everything under it is the build's."""
        rel = self._relative_or_none(path)
        if rel is not None:
            self._append(rel.rstrip("/") + "/\n")

    def _relative_or_none(self, path: str | Path) -> str | None:
        try:
            return self.relative(path)
        except ValueError:
            return None

    def _append(self, lines: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # O_APPEND: a line is added whole, even by two threads of one process
        fd = os.open(self._own_file(), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            os.write(fd, lines.encode("utf-8"))
        finally:
            os.close(fd)

    def _own_file(self) -> Path:
        return self.folder / f"{_host()}-{os.getpid()}.txt"

    def write(self, path: str | Path, data: str | bytes) -> None:
        """Write a whole file (atomically) and record it."""
        path = Path(path)
        self.record(path, temp_path(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)

    def write_json(self, path: str | Path, data, indent: int | None = 2) -> None:
        """``data`` as JSON (UTF-8, non-ASCII kept), written atomically and recorded."""
        self.write(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")

    def data_folder(self, path: str | Path) -> LedgerFolder:
        """A datatrove folder at ``path`` (under the root) whose writes are recorded here."""
        return LedgerFolder(str(path), ledger=str(self.root))

    # -- reading and removing (under the build lock: no writer is running) ---------------------------------------
    def paths(self) -> set[str]:
        """Every path the build recorded (whether it still exists or not)."""
        recorded: set[str] = set()
        if self.folder.is_dir():
            for file in self.folder.glob("*.txt"):
                recorded.update(line for line in file.read_text(encoding="utf-8").splitlines() if line)
        return recorded

    def unrecorded(self) -> list[str]:
        """Files under the root that the build did not record (its ledger and lock excepted), sorted."""
        recorded = self.paths()
        folders = tuple(p for p in recorded if p.endswith("/"))
        found = []
        for path in files_under(self.root):
            rel = path.relative_to(self.root).as_posix()
            if rel not in recorded and not _is_structure(rel) and not rel.startswith(folders):
                found.append(rel)
        return sorted(found)

    def remove(self, which: Callable[[str], bool]) -> list[str]:
        """Delete the recorded files for which ``which(path)`` is true, then the folders that are left empty; the
        ledger keeps the rest (compacted into one file, so a path removed here is never taken for the build's
        again). Only under the folder's BuildLock: no other process may be recording. Returns what was deleted."""
        recorded = self.paths()
        removed = []
        for rel in sorted(recorded):
            path = self.root / rel
            if not which(rel) or _is_structure(rel):
                continue
            if rel.endswith("/") and path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
                removed.append(rel)
            elif path.is_symlink() or path.is_file():
                path.unlink()
                removed.append(rel)
            elif not path.exists():
                removed.append(rel)  # recorded, never written or already gone: nothing to keep in the ledger
        _prune_emptied(self.root, {(self.root / rel).parent for rel in removed})
        gone = set(removed)
        self._rewrite(p for p in recorded if p not in gone and (self.root / p).exists())
        return removed

    def _rewrite(self, paths: Iterable[str]) -> None:
        """Replace the ledger by one file holding ``paths`` (under the lock: no other process records now)."""
        old = list(self.folder.glob("*.txt")) if self.folder.is_dir() else []
        self.folder.mkdir(parents=True, exist_ok=True)
        mine = self._own_file()
        write_atomic(mine, "".join(p + "\n" for p in sorted(set(paths))))
        for file in old:
            if file != mine:
                file.unlink(missing_ok=True)


@functools.cache
def _host() -> str:
    """The host's name hashed: one ledger file per process of each machine, without naming the machine."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _is_structure(rel: str) -> bool:
    return rel == _STRUCTURE[0] or rel.startswith(_STRUCTURE[1])


def files_under(root: Path) -> list[Path]:
    """Every file (and symlink) under ``root``; symlinks to folders are not followed."""
    found = []
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        found += [base / name for name in files]
        found += [base / name for name in dirs if (base / name).is_symlink()]
    return found


def _prune_emptied(root: Path, folders: set[Path]) -> None:
    """Remove the folders that held removed files, and their parents, where that left them empty — up to the root
    and the work folder. A folder nothing was removed from (a user's, even empty) stays."""
    stops = {root, root / WORK_DIR, root / WORK_DIR / LEDGER_DIR}
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        while folder not in stops and folder.is_relative_to(root) and folder.is_dir() and not folder.is_symlink():
            if any(folder.iterdir()):
                break
            folder.rmdir()
            folder = folder.parent


class LedgerFolder(DataFolder):
    """A datatrove ``DataFolder`` (local) that records every file opened for writing, or moved into place, in the
    ledger of the build folder ``ledger``."""

    cachable = False  # fsspec would hand a later build this instance, with its ledger's memory of the earlier one

    def __init__(self, path: str, ledger: str, **kwargs):
        super().__init__(path, **kwargs)
        self.ledger = Ledger(ledger)

    def _record(self, path: str) -> None:
        self.ledger.record(os.path.join(self.path, path))

    def open(self, path, mode="rb", *args, **kwargs):
        if "w" in mode or "a" in mode or "x" in mode:
            self._record(path)
        return super().open(path, mode, *args, **kwargs)

    def mv(self, path1, path2, *args, **kwargs):
        self._record(path2)
        return super().mv(path1, path2, *args, **kwargs)
