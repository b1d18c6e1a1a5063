"""Token budget and source mixing, applied to the finished shards before finalize.

The selection needs every row's (id, source, n_tokens), which no single task has, so it runs once over the shards
after all tasks finished: rows are ordered by a keyed hash of their id (independent of how the build was split
into tasks), each source gets a token quota, and rows are taken in that order until the next one would exceed the
quota. Kept rows are then rewritten shard by shard (same file names, atomic replace), in their original order.

The copies a dedup step's `rehydrate` wrote are rows like any other (ids `<id>#2`, …): their tokens count toward the
budget, and each is kept or not by its own id's hash, so a budget smaller than the corpus keeps on average the same
share of every document's copies: the upsampling survives the trim.

Memory does not grow with the corpus: the kept rows of a source are a prefix of its hash order, so the selection
is one cutoff per source. Pass 1 counts tokens in 65,536 bins of the hash (its top 16 bits); the bin where a quota
runs out is the only one whose rows are sorted (pass 2, ~1/65,536 of the rows); pass 3 rewrites each shard batch
by batch, keeping the rows at or before their source's cutoff.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from corpusforge.corpus.layout import WORK_DIR
from corpusforge.corpus.ledger import Ledger
from corpusforge.recipe.models import BudgetConfig
from corpusforge.shards.ipc import DualFormatWriter

MARKER = "budget.json"
BIN_SHIFT = 48  # bin = top 16 bits of the 64-bit order key
N_BINS = 1 << (64 - BIN_SHIFT)


def _order_key(seed: int, doc_id: str) -> int:
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8, key=str(seed).encode()).digest()
    return int.from_bytes(digest, "big")


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


def _shard_signature(shards: list[Path]) -> list[list]:
    sig = []
    for path in shards:
        stat = path.stat()
        sig.append([stat.st_size, stat.st_mtime_ns])
    return sig


class Selection:
    """Which rows a budget keeps: those of a source with a quota whose (order key, shard, row) is at or before
    the source's cutoff (None: all of them). A pure per-row rule, so trimming an already trimmed shard again
    changes nothing — that is what makes a crash during the rewrite safe to resume."""

    def __init__(self, seed: int, mixed: bool, cutoffs: dict[str, list[int] | None]):
        self.seed, self.mixed = seed, mixed
        self.cutoffs = {k: tuple(v) if v is not None else None for k, v in cutoffs.items()}

    def group(self, source: str | None) -> str:
        return source if self.mixed else "all"

    def keeps(self, key: int, rank: int, row: int, source: str | None) -> bool:
        group = self.group(source)
        if group not in self.cutoffs:
            return False
        cutoff = self.cutoffs[group]
        return cutoff is None or (key, rank, row) <= cutoff

    def to_json(self) -> dict:
        return {"seed": self.seed, "mixed": self.mixed, "cutoffs": self.cutoffs}

    @classmethod
    def from_json(cls, data: dict) -> Selection:
        return cls(data["seed"], data["mixed"], data["cutoffs"])


def _batches(path: Path) -> Iterator[pa.RecordBatch]:
    with pa.memory_map(str(path)) as source:
        yield from pa.ipc.open_stream(source)


def _rows(shards: list[Path], seed: int) -> Iterator[tuple[int, int, int, str | None, int]]:
    """(order key, shard, row index, source, n_tokens) of every row, shard after shard."""
    for rank, path in enumerate(shards):
        row = 0
        for batch in _batches(path):
            ids, sources, counts = (batch.column(c).to_pylist() for c in ("id", "source", "n_tokens"))
            for doc_id, source, n in zip(ids, sources, counts):
                if n is None:
                    raise ValueError(f"row {doc_id!r} has no n_tokens: the `tokens` step must run on every row")
                yield _order_key(seed, doc_id), rank, row, source, n
                row += 1


def select(shards: list[Path], budget: BudgetConfig) -> tuple[Selection, dict]:
    """The budget's selection over ``shards`` (task 0's first), and its summary for the manifest."""
    mixed = bool(budget.mix)
    key_of = (lambda source: source) if mixed else (lambda source: "all")
    token_bins: dict[str, np.ndarray] = {}
    row_bins: dict[str, np.ndarray] = {}
    rows_in = 0
    for key, _, _, source, n in _rows(shards, budget.seed):
        group = key_of(source)
        if group not in token_bins:
            token_bins[group] = np.zeros(N_BINS, dtype=np.int64)
            row_bins[group] = np.zeros(N_BINS, dtype=np.int64)
        token_bins[group][key >> BIN_SHIFT] += n
        row_bins[group][key >> BIN_SHIFT] += 1
        rows_in += 1
    available = {group: int(bins.sum()) for group, bins in sorted(token_bins.items())}
    quota, limited_by = quotas(available, budget)

    # per source with a quota: whole bins kept before the quota runs out, and the bin where it does
    boundary: dict[str, int] = {}
    taken: dict[str, int] = {}
    rows_out = 0
    for group, q in quota.items():
        if group not in token_bins:
            taken[group] = 0
            continue
        cumulative = np.cumsum(token_bins[group])
        over = np.flatnonzero(cumulative > q)
        if len(over) == 0:
            taken[group] = int(cumulative[-1])
            rows_out += int(row_bins[group].sum())
            continue
        b = int(over[0])
        boundary[group] = b
        taken[group] = int(cumulative[b - 1]) if b else 0
        rows_out += int(row_bins[group][:b].sum())
    cutoffs: dict[str, list[int] | None] = {group: None for group in quota}
    if boundary:
        in_bin: dict[str, list[tuple[int, int, int, int]]] = {group: [] for group in boundary}
        for key, rank, row, source, n in _rows(shards, budget.seed):
            group = key_of(source)
            if group in boundary and key >> BIN_SHIFT == boundary[group]:
                in_bin[group].append((key, rank, row, n))
        for group, rows in in_bin.items():
            b = boundary[group]
            # the last row kept before this bin is below any key of the bin: a cutoff that keeps whole bins only
            cutoffs[group] = [(b << BIN_SHIFT) - 1, len(shards), 0] if b else [-1, 0, 0]
            for key, rank, row, n in sorted(rows):
                if taken[group] + n > quota[group]:
                    break  # stop this source at the first row that would overshoot: within one document
                taken[group] += n
                rows_out += 1
                cutoffs[group] = [key, rank, row]
    summary = {
        "requested_tokens": budget.tokens,
        "mix": budget.mix,
        "available_tokens": available,
        "tokens": sum(taken.values()),
        "tokens_by_source": dict(sorted(taken.items())) if mixed else None,
        "limited_by": limited_by,
        "rows_in": rows_in,
        "rows_out": rows_out,
    }
    return Selection(budget.seed, mixed, cutoffs), summary


def _rewrite(path: Path, keep: tuple[Selection, int], tmp: Path) -> None:
    """Rewrite one shard (through ``tmp``) with the rows ``keep`` (selection, shard rank) selects, batch by batch."""
    selection, rank = keep
    row, dropped = 0, 0
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_stream(source)
        with open(tmp, "wb") as f:
            writer = DualFormatWriter(f, reader.schema)
            for batch in reader:
                ids, sources = batch.column("id").to_pylist(), batch.column("source").to_pylist()
                mask = []
                for doc_id, src in zip(ids, sources):
                    mask.append(selection.keeps(_order_key(selection.seed, doc_id), rank, row, src))
                    row += 1
                kept = batch.filter(pa.array(mask, type=pa.bool_()))
                dropped += batch.num_rows - kept.num_rows
                if kept.num_rows:
                    writer.write_batch(kept)
            writer.close()
    if dropped:
        os.replace(tmp, path)
    else:  # already trimmed (a resumed run): leave the shard and its mtime alone
        tmp.unlink()


def apply_budget(out: Path, shards: list[Path], budget: BudgetConfig) -> dict:
    """Trim the shards to the budget; returns the summary recorded in the manifest.

    Crash-safe and idempotent: the selection is saved (`budget.pending.json`) before any shard is rewritten, so a
    rerun after a crash applies the same selection again instead of selecting from half-trimmed shards.
    """
    work = out / WORK_DIR
    ledger = Ledger(out)
    marker, pending_file = work / MARKER, work / "budget.pending.json"
    if marker.exists() and not pending_file.exists():
        done = json.loads(marker.read_text())
        if done["shards"] == _shard_signature(shards):
            return done["summary"]
    if pending_file.exists():
        pending = json.loads(pending_file.read_text())
    else:
        selection, summary = select(shards, budget)
        pending = {"selection": selection.to_json(), "summary": summary}
        ledger.write_json(pending_file, pending, indent=None)
    selection = Selection.from_json(pending["selection"])
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    for rank, path in enumerate(shards):
        tmp = work / "tmp" / f"{path.name}.budget.partial"
        ledger.record(tmp)
        _rewrite(path, (selection, rank), tmp)
    ledger.write_json(marker, {"shards": _shard_signature(shards), "summary": pending["summary"]})
    pending_file.unlink()
    return pending["summary"]
