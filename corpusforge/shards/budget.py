"""Token budget and source mixing, applied to the finished shards before finalize.

The selection needs every row's (id, source, n_tokens), which no single task has, so it runs once over the shards
after all tasks finished: rows are ordered by a keyed hash of their id (independent of how the build was split
into tasks), each source gets a token quota, and rows are taken in that order until the next one would exceed the
quota. Kept rows are then rewritten shard by shard (same file names, atomic replace), in their original order.

Memory: one (hash, source, n_tokens) triple per row — fine for the 10⁵–10⁷ documents of a 0.1B–10B-token CP corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa

from corpusforge.recipe.models import BudgetConfig
from corpusforge.shards.ipc import DualFormatWriter
from corpusforge.shards.writer import WORK_DIR, shard_name

MARKER = "budget.json"


def _order_key(seed: int, doc_id: str) -> bytes:
    return hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8, key=str(seed).encode()).digest()


def _read_columns(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).read_all().select(["id", "source", "n_tokens"])


def quotas(available: dict[str, int], budget: BudgetConfig) -> tuple[dict[str, float], str | None]:
    """Token quota per source, and the source that limits the total (None when the budget itself does)."""
    if not budget.mix:
        total = sum(available.values())
        return {"all": float(min(total, budget.tokens))}, None if budget.tokens <= total else "all"
    feasible = {src: available.get(src, 0) / share for src, share in budget.mix.items()}
    limiting = min(feasible, key=feasible.get)
    total = feasible[limiting] if budget.tokens is None else min(budget.tokens, feasible[limiting])
    limited_by = limiting if budget.tokens is None or feasible[limiting] < budget.tokens else None
    return {src: share * total for src, share in budget.mix.items()}, limited_by


def _shard_signature(out: Path, tasks: int) -> list[list]:
    sig = []
    for rank in range(tasks):
        stat = (out / shard_name(rank, tasks)).stat()
        sig.append([stat.st_size, stat.st_mtime_ns])
    return sig


def _select(tables: list[pa.Table], budget: BudgetConfig) -> tuple[list[list[int]], dict]:
    rows = []  # (order key, rank, row index, source, n_tokens)
    for rank, table in enumerate(tables):
        ids, sources, counts = (table[c].to_pylist() for c in ("id", "source", "n_tokens"))
        for i, (doc_id, source, n) in enumerate(zip(ids, sources, counts)):
            if n is None:
                raise ValueError(f"row {doc_id!r} has no n_tokens: the `tokens` step must run on every row")
            rows.append((_order_key(budget.seed, doc_id), rank, i, source, n))
    rows.sort()
    key_of = (lambda source: source) if budget.mix else (lambda source: "all")
    available: dict[str, int] = {}
    for _, _, _, source, n in rows:
        available[key_of(source)] = available.get(key_of(source), 0) + n
    quota, limited_by = quotas(available, budget)
    taken = {k: 0 for k in quota}
    full = set()
    keep: list[list[int]] = [[] for _ in tables]
    for _, rank, i, source, n in rows:
        k = key_of(source)
        if k not in quota or k in full:
            continue
        if taken[k] + n > quota[k]:
            full.add(k)  # stop this source at the first row that would overshoot: within one document
            continue
        taken[k] += n
        keep[rank].append(i)
    summary = {
        "requested_tokens": budget.tokens,
        "mix": budget.mix,
        "available_tokens": dict(sorted(available.items())),
        "tokens": sum(taken.values()),
        "tokens_by_source": dict(sorted(taken.items())) if budget.mix else None,
        "limited_by": limited_by,
        "rows_in": len(rows),
        "rows_out": sum(len(k) for k in keep),
    }
    return [sorted(k) for k in keep], summary


def _rewrite(path: Path, keep: list[int], tmp_dir: Path) -> None:
    tmp = tmp_dir / f"{path.name}.budget.partial"
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_stream(source).read_all()
    kept = table.take(pa.array(keep, type=pa.int64()))
    with open(tmp, "wb") as f:
        writer = DualFormatWriter(f, table.schema)
        for batch in kept.to_batches(max_chunksize=1000):
            writer.write_batch(batch)
        writer.close()
    os.replace(tmp, path)


def apply_budget(out: Path, tasks: int, budget: BudgetConfig) -> dict:
    """Trim the shards to the budget; returns the summary recorded in the manifest.

    Crash-safe and idempotent: the selection is saved (`budget.pending.json`) before any shard is rewritten, so a
    rerun after a crash finishes the same selection instead of selecting again from half-trimmed shards.
    """
    work = out / WORK_DIR
    marker, pending_file = work / MARKER, work / "budget.pending.json"
    if marker.exists() and not pending_file.exists():
        done = json.loads(marker.read_text())
        if done["shards"] == _shard_signature(out, tasks):
            return done["summary"]
    if pending_file.exists():
        pending = json.loads(pending_file.read_text())
    else:
        tables = [_read_columns(out / shard_name(rank, tasks)) for rank in range(tasks)]
        keep, summary = _select(tables, budget)
        pending = {"keep": keep, "rows": [t.num_rows for t in tables], "summary": summary}
        pending_file.write_text(json.dumps(pending))
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    for rank in range(tasks):
        path = out / shard_name(rank, tasks)
        with pa.memory_map(str(path)) as source:
            rows_now = sum(b.num_rows for b in pa.ipc.open_stream(source))
        if rows_now == pending["rows"][rank] and rows_now != len(pending["keep"][rank]):
            _rewrite(path, pending["keep"][rank], work / "tmp")
    marker.write_text(json.dumps({"shards": _shard_signature(out, tasks), "summary": pending["summary"]}, indent=2))
    pending_file.unlink()
    return pending["summary"]
