"""Files that are whole or absent: written to a temporary file beside the target, then renamed over it. A reader
(another task, a resumed run, a crash) never sees half a file; two writers of one path leave one whole version."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` (str: UTF-8) to ``path`` atomically."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, data, indent: int | None = 2) -> None:
    """``data`` as JSON (UTF-8, non-ASCII kept), written atomically."""
    write_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


def write_jsonl_atomic(path: str | Path, rows: list[dict]) -> None:
    """One JSON object per line, written atomically."""
    write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
