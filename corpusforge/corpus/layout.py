"""Every name in a build folder, in one place.

```
OUT/
  data-00000-of-00002-<build>.arrow   the shards: one per task, named after the build (``build_id``)
  dataset_info.json  state.json       the `datasets` save_to_disk layout; state.json names the shards
  manifest.json                       what was built, from what, and what each step did
  report.html                         the HTML report (one page, charts inline)
  .corpusforge/                       the work folder: plan, lock, ledger, task logs, temp files, caches
    plan.json  lock  owned/
```

A build for an fsspec URL runs in a staging folder of this layout (``default_staging``) and is uploaded from there.

The shard names carry the build's id (a hash of what decides its rows: recipe, inputs, plugins, code), so a new
build never writes over the files the current ``state.json`` names: a reader sees the old build or the new one
whole, and the old one's files are removed only after the new ``state.json`` is in place.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

WORK_DIR = ".corpusforge"
PLAN = "plan.json"
LOCK = "lock"
LEDGER_DIR = "owned"  # under WORK_DIR: what the build wrote (corpusforge.corpus.ledger)
MANIFEST = "manifest.json"
STATE = "state.json"
DATASET_INFO = "dataset_info.json"
REPORT_HTML = "report.html"
REPORT_DIR = "report"  # where earlier versions put the report's PNGs: removed when a report is rewritten
UPLOADS_DIR = "uploads"  # under WORK_DIR at a URL: one record per upload, written before its files


def shard_name(rank: int, tasks: int, build_id: str | None = None) -> str:
    """``data-00000-of-00002-<build_id>.arrow`` (without an id: an intermediate shard of the work folder)."""
    suffix = f"-{build_id}" if build_id else ""
    return f"data-{rank:05d}-of-{tasks:05d}{suffix}.arrow"


def default_staging(url: str) -> Path:
    """``$CORPUSFORGE_CACHE`` (else ``$XDG_CACHE_HOME/corpusforge``, else ``~/.cache/corpusforge``)/builds/<hash>."""
    cache = os.environ.get("CORPUSFORGE_CACHE")
    if not cache:
        cache = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "corpusforge")
    return Path(cache).expanduser() / "builds" / hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
