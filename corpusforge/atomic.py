"""Files that are whole or absent: written to a temporary file beside the target, then renamed over it. A reader
(another task, a resumed run, a crash) never sees half a file; two writers of one path leave one whole version.

The temporary file's name is known before it exists (``temp_path``), so a build can record it as its own before
creating it (corpusforge.corpus.ledger), and it is created with the process umask, like every other file.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path


def temp_path(path: str | Path) -> Path:
    """The temporary file ``write_atomic`` writes ``path`` through: one per process and thread."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` (str: UTF-8) to ``path`` atomically."""
    path = Path(path)
    tmp = temp_path(path)
    # 0o666 & ~umask, as open() gives any other file (tempfile.mkstemp would make it 0600)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:
            err.filename = str(path)  # a full disk says which file it could not write
        raise


def write_json_atomic(path: str | Path, data, indent: int | None = 2) -> None:
    """``data`` as JSON (UTF-8, non-ASCII kept), written atomically."""
    write_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


def write_jsonl_atomic(path: str | Path, rows: list[dict]) -> None:
    """One JSON object per line, written atomically."""
    write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
