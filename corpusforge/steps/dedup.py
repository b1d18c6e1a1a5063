"""`dedup`: exact (normalized-text hash) and near-duplicate (MinHash-LSH) deduplication across all sources.

A dedup step splits the build into stages (see `run.compile_stages`): the steps before it run once and write an
intermediate shard per task together with signatures; datatrove's `MinhashDedupBuckets` finds candidate pairs;
`DedupCluster` (one task) joins exact and near pairs into clusters; the final stage reads the intermediate shards,
drops every document that is not its cluster's survivor (`DedupFilter`) and runs the remaining steps. The survivor of
a cluster is its first document in recipe order: the first source listed, then file, then row — whatever the task
split or worker count (the readers tag each document with its place, `OrderSignature` writes it down and takes the
tag off).

Every survivor carries `dup_count` in its metadata: the size of its cluster (1 for a document without duplicates),
FineWeb-2's `minhash_cluster_size`. With `rehydrate`, the shard writer writes a survivor as many times as the table
gives for its cluster size (FineWeb-2's "re-hydration": upsampling by cluster size improved its ablations for some
languages, high-resource ones most; the largest clusters count once, taken to be low quality). The copies are rows of
their own, ids `<id>#2`, `<id>#3`, …, right after the original in the same shard: the token budget counts them like
any row.

Shingles are character n-grams: `ngrams` characters for text that is mostly Han, kana, Hangul or Thai (no spaces
between words), `ngrams_spaced` characters (spaces included) for other text. Word n-grams, datatrove's default, break
too easily on short documents: three edited characters in a 350-character English paragraph change a third of its
word 5-grams, and the copy falls below the LSH threshold; they change about 6% of its character 7-grams.
"""

from __future__ import annotations

import heapq
import json
import re
import struct
import unicodedata
from collections.abc import Callable

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import (
    SENTINEL,
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupSignature,
)
from datatrove.utils.text import TextNormConfig
from datatrove.utils.word_tokenizers import WordTokenizer
from pydantic import Field, field_validator, model_validator

from corpusforge.config import StrictModel
from corpusforge.errors import did_you_mean
from corpusforge.lang.scripts import unspaced
from corpusforge.shards.writer import REPEAT_KEY
from corpusforge.sources.records import ORDER_KEY

_NOT_WORD = re.compile(r"[\W_]+")
EXACT_RECORD = struct.Struct("<QI")  # 64-bit text hash, document index in the task
EXACT_DTYPE = np.dtype([("hash", "<u8"), ("index", "<u4")])  # the same record, for numpy
READ_CHUNK = 1 << 16  # records read at a time from signature and pair files
DUP_COUNT = "dup_count"  # metadata key of a survivor's cluster size
SIZE_RECORD = struct.Struct("<2I")  # document index in the task, cluster size: datatrove's `.sizes` format

# FineWeb-2's re-hydration weights (github.com/huggingface/fineweb-2, README, "Deduplication"): cluster size → times
# the survivor is written. 1 → 1, 2 → 2, 3 → 3, 4 → 3, 5–99 → 5, 100–999 → 8, 1000 and more → 1 ("very large clusters
# are lower quality"); their example block: `{1: 1, 2: 2, 3: 3, 5: 5, 100: 8, 1000: 1}` read with bisect.
FINEWEB2_REHYDRATION = {"1": 1, "2": 2, "3": 3, "4": 3, "5-99": 5, "100-999": 8, "1000+": 1}
REHYDRATION_TABLES = {"fineweb2": FINEWEB2_REHYDRATION}
_RANGE = re.compile(r"^\s*(\d+)\s*(?:(-)\s*(\d+)|(\+))?\s*$")


def rehydration_table(table: dict[str, int]) -> list[tuple[int, int | None, int]]:
    """``{"2-3": 2, "5": 4, "100+": 8}`` as sorted ``(low, high or None, times)``; raises ValueError naming the key."""
    ranges = []
    for key, times in table.items():
        m = _RANGE.match(str(key))
        if not m:
            raise ValueError(f"key {key!r} is not a cluster size range: write `3`, `5-99` or `1000+`")
        low = int(m.group(1))
        high = None if m.group(4) else int(m.group(3)) if m.group(2) else low
        if low < 1 or (high is not None and high < low):
            raise ValueError(f"key {key!r} is an empty range (cluster sizes start at 1)")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError(f"{key!r}: the number of times must be an integer ≥ 1, got {times!r}")
        ranges.append((low, high, times))
    ranges.sort(key=lambda r: r[0])
    for (lo1, hi1, _), (lo2, _, _) in zip(ranges, ranges[1:]):
        if hi1 is None or hi1 >= lo2:
            raise ValueError(f"the ranges starting at {lo1} and {lo2} overlap")
    return ranges


def times_written(ranges: list[tuple[int, int | None, int]], size: int) -> int:
    """How many times a survivor of a cluster of ``size`` is written (1 where no range covers it)."""
    for low, high, times in ranges:
        if low <= size and (high is None or size <= high):
            return times
    return 1


class DedupParams(StrictModel):
    """Exact and near-duplicate removal across all sources (MinHash-LSH on character shingles); of each cluster,
    the document of the first source in recipe order survives, with the cluster's size in its metadata (`dup_count`,
    1 for a document without duplicates)."""

    exact: bool = Field(
        True, description="Remove documents whose normalized text (case, width, spacing, punctuation) is identical."
    )
    near: bool = Field(True, description="Remove near-duplicates found by MinHash-LSH.")
    ngrams: int = Field(5, ge=1, le=20, description="Shingle size in characters for unspaced scripts (Han, Thai…).")
    ngrams_spaced: int = Field(
        7, ge=1, le=40, description="Shingle size in characters (spaces included) for text with spaces between words."
    )
    num_buckets: int = Field(14, ge=1, description="LSH bands. With 8 hashes per band: ~0.72 Jaccard threshold.")
    hashes_per_bucket: int = Field(8, ge=1, description="MinHash values per band.")
    seed: int = Field(1, description="Seed of the MinHash permutations.")
    rehydrate: str | dict[str, int] | None = Field(
        None,
        description="Write each kept document as many times as its cluster size says (its `dup_count`): "
        "`fineweb2` is FineWeb-2's table (size 1 → 1, 2 → 2, 3 → 3, 4 → 3, 5–99 → 5, 100–999 → 8, 1000+ → 1); or "
        'a table of your own, `{"2-3": 2, "5-99": 5, "100+": 8}` (sizes no range covers: once). Copies are rows '
        "`<id>#2`, `<id>#3`, … beside the original; the funnel's `rehydrate` row counts them and the token budget "
        "counts their tokens. Without it every document is written once; `dup_count` is in the metadata either way.",
    )

    @field_validator("rehydrate", mode="before")
    @classmethod
    def _table(cls, value):
        if isinstance(value, str) and value not in REHYDRATION_TABLES:
            hint = did_you_mean(value, REHYDRATION_TABLES, otherwise=' (or a table of your own: {"2-3": 2, ...})')
            raise ValueError(f"unknown rehydration table '{value}'{hint}")
        if isinstance(value, dict):  # YAML reads `4: 3` as an int key
            value = {str(k): v for k, v in value.items()}
            rehydration_table(value)
        return value

    @model_validator(mode="after")
    def _something(self):
        if not (self.exact or self.near):
            raise ValueError("set `exact`, `near`, or both (otherwise remove the dedup step)")
        return self

    def rehydration(self) -> list[tuple[int, int | None, int]] | None:
        if self.rehydrate is None:
            return None
        table = REHYDRATION_TABLES[self.rehydrate] if isinstance(self.rehydrate, str) else self.rehydrate
        return rehydration_table(table)

    def minhash_config(self) -> MinhashConfig:
        return MinhashConfig(
            n_grams=self.ngrams,
            num_buckets=self.num_buckets,
            hashes_per_bucket=self.hashes_per_bucket,
            seed=self.seed,
            norm_config=TextNormConfig(norm_unicode_diacritics=False),  # Thai/Indic marks are letters, keep them
        )


def exact_key(text: str) -> str:
    """What two texts share when they are "the same": NFKC, case-folded, without spacing or punctuation."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


def shingles(text: str, ngrams: int, ngrams_spaced: int) -> list[str]:
    """Character n-grams of already simplified text: spaces dropped for unspaced scripts, kept otherwise."""
    if unspaced(text):
        text, n = text.replace(" ", ""), ngrams
    else:
        n = ngrams_spaced
    if len(text) <= n:
        return [text] if text else []
    return [text[i : i + n] for i in range(len(text) - n + 1)]


class ScriptAwareUnits(WordTokenizer):
    """Characters for unspaced scripts (Han, kana, Hangul, Thai, Lao, Khmer, Myanmar), words otherwise."""

    def word_tokenize(self, text: str) -> list[str]:
        if unspaced(text):
            return list(text.replace(" ", ""))
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


class OrderSignature(PipelineStep):
    """Writes each document's place in the recipe's input (uint64 per document of the task, in stream order) and
    takes the readers' tag off the document; passes documents on. `DedupCluster` keeps the smallest."""

    type = "🫂 - DEDUP"
    name = "input order"

    def __init__(self, output_folder: str):
        super().__init__()
        from datatrove.io import get_datafolder

        self.output_folder = get_datafolder(output_folder)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        buffer = []
        with self.output_folder.open(f"{rank:05d}.order", "wb") as f:
            for doc in data:
                key = doc.metadata.pop(ORDER_KEY, None)
                if key is None:
                    raise RuntimeError(
                        f"document {doc.id} reached the dedup step without its input position (`{ORDER_KEY}`): "
                        "a step before `dedup` replaced the document's metadata; keep the metadata dict it was given"
                    )
                buffer.append(key)
                if len(buffer) >= READ_CHUNK:
                    f.write(np.asarray(buffer, dtype="<u8").tobytes())
                    buffer.clear()
                yield doc
            f.write(np.asarray(buffer, dtype="<u8").tobytes())


class ExactSignature(PipelineStep):
    """Writes ``(hash of exact_key, index)`` per document of the task, sorted, so that `DedupCluster` merges the
    tasks' files in one streaming pass; passes documents on."""

    type = "🫂 - DEDUP"
    name = "exact signatures"

    def __init__(self, output_folder: str):
        super().__init__()
        from datatrove.io import get_datafolder

        self.output_folder = get_datafolder(output_folder)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        import xxhash

        name = f"{rank:05d}.exact"
        with self.output_folder.open(name, "wb") as f:
            for idx, doc in enumerate(data):
                f.write(EXACT_RECORD.pack(xxhash.xxh64_intdigest(exact_key(doc.text).encode("utf-8")), idx))
                yield doc
        # sorted per task (12 bytes a document, like datatrove's MinHash signatures), merged across tasks later
        with self.output_folder.open(name, "rb") as f:
            records = np.frombuffer(f.read(), dtype=EXACT_DTYPE)
        with self.output_folder.open(name, "wb") as f:
            f.write(np.sort(records, order=["hash", "index"]).tobytes())


class NearSignature(MinhashDedupSignature):
    """datatrove's MinHash signature step with script-aware shingles."""

    name = "minhash signatures"

    def __init__(self, output_folder: str, params: DedupParams):
        super().__init__(output_folder, config=params.minhash_config(), language=ScriptAwareUnits())
        self.ngrams_spaced = params.ngrams_spaced

    def get_shingles(self, text: str) -> np.ndarray:
        # datatrove's version hands str to xxhash, which rejects any non-ASCII text: hash the UTF-8 bytes
        import xxhash
        from datatrove.utils.text import simplify_text

        grams = shingles(simplify_text(text, self.config.norm_config), self.config.n_grams, self.ngrams_spaced)
        hashes = [xxhash.xxh64_intdigest(gram.encode("utf-8")) for gram in grams]
        return np.fromiter(hashes, dtype=np.uint64, count=len(hashes)).reshape((-1, 1))

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        # datatrove's signature step is a plain function that consumes the stream; the stage ends here
        super().run(data, rank, world_size)
        return
        yield


def _iter_records(f, record: struct.Struct):
    while chunk := f.read(record.size * READ_CHUNK):
        yield from record.iter_unpack(chunk)


def _sorted_exact_records(folder, rank: int):
    """(hash, rank, index) of one task's sorted `.exact` file, read a chunk at a time."""
    with folder.open(f"{rank:05d}.exact", "rb") as f:
        for digest, idx in _iter_records(f, EXACT_RECORD):
            yield digest, rank, idx


class DedupCluster(PipelineStep):
    """One task: union exact and near-duplicate pairs; write which documents each task must drop.

    The survivor of every cluster is its first document in recipe order (the smallest `OrderSignature` key).
    Output, for every task: ``{rank:06d}.remove`` (sorted uint32 indices) and ``{rank:06d}.sizes`` (each survivor
    of a cluster of two or more: uint32 index and cluster size, sorted by index), datatrove's formats; summary.json.
    """

    type = "🫂 - DEDUP"
    name = "dedup clusters"

    def __init__(self, signatures: str, pairs: str | None, output_folder: str, tasks: int, exact: bool):
        super().__init__()
        from datatrove.io import get_datafolder

        self.signatures = get_datafolder(signatures)
        self.pairs = get_datafolder(pairs) if pairs else None
        self.output_folder = get_datafolder(output_folder)
        self.tasks = tasks
        self.exact = exact

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        parent: dict[tuple[int, int], tuple[int, int]] = {}
        orders = [self._order(task) for task in range(self.tasks)]

        def before(a, b):  # whether document a comes before b in the recipe's input
            return (int(orders[a[0]][a[1]]), a) < (int(orders[b[0]][b[1]]), b)

        def find(x):
            root = x
            while parent.get(root, root) != root:
                root = parent[root]
            while parent.get(x, x) != root:  # path compression
                parent[x], x = root, parent[x]
            return root

        def union(a, b):
            ra, rb = find(a), find(b)
            if ra != rb:
                lo, hi = (ra, rb) if before(ra, rb) else (rb, ra)
                parent[hi] = lo
                parent.setdefault(lo, lo)

        exact_pairs = near_pairs = 0
        if self.exact:
            # a k-way merge of the tasks' sorted files: equal hashes arrive together, the first in input order
            # first; memory holds one chunk per task and the duplicates, never the whole corpus
            streams = [_sorted_exact_records(self.signatures, rank) for rank in range(self.tasks)]
            previous, first = None, None
            for digest, task, idx in heapq.merge(*streams):
                if digest == previous:
                    union(first, (task, idx))
                    exact_pairs += 1
                else:
                    previous, first = digest, (task, idx)
        if self.pairs is not None:
            pair = struct.Struct("<4I")
            for name in sorted(self.pairs.list_files(glob_pattern="*.dups")):
                with self.pairs.open(name, "rb") as f:
                    for f1, d1, f2, d2 in _iter_records(f, pair):
                        if f1 == SENTINEL:
                            continue
                        union((f1, d1), (f2, d2))
                        near_pairs += 1
        remove: list[list[int]] = [[] for _ in range(self.tasks)]
        sizes: dict[tuple[int, int], int] = {}
        for node in list(parent):
            root = find(node)
            sizes[root] = sizes.get(root, 0) + 1
            if root != node:
                remove[node[0]].append(node[1])
        survivors: list[list[tuple[int, int]]] = [[] for _ in range(self.tasks)]
        for (task, idx), size in sizes.items():
            survivors[task].append((idx, size))
        for task, indices in enumerate(remove):
            with self.output_folder.open(f"{task:06d}.remove", "wb") as f:
                f.write(np.asarray(sorted(indices), dtype="<u4").tobytes())
            with self.output_folder.open(f"{task:06d}.sizes", "wb") as f:
                f.write(b"".join(SIZE_RECORD.pack(idx, size) for idx, size in sorted(survivors[task])))
        summary = {
            "exact_pairs": exact_pairs,
            "near_pairs": near_pairs,
            "removed": sum(map(len, remove)),
            "clusters": len(sizes),
            "largest_cluster": max(sizes.values(), default=1),
        }
        with self.output_folder.open("summary.json", "w") as f:
            f.write(json.dumps(summary))
        self.stat_update("removed", value=summary["removed"])
        return
        yield  # a generator, like every datatrove step

    def _order(self, task: int) -> np.ndarray:
        """The task's order keys (8 bytes a document), memory-mapped where the folder is local: only the duplicates'
        keys are read."""
        from fsspec.implementations.local import LocalFileSystem

        name = f"{task:05d}.order"
        if not self.signatures.exists(name):
            raise RuntimeError(f"{self.signatures.path}/{name} is missing: rerun the build with --overwrite")
        if isinstance(self.signatures.fs, LocalFileSystem) and self.signatures.size(name):
            return np.memmap(self.signatures.resolve_paths(name), dtype="<u8", mode="r")
        with self.signatures.open(name, "rb") as f:
            return np.frombuffer(f.read(), dtype="<u8")


class DedupFilter(PipelineStep):
    """Drops each task's `.remove` indices (counted as `dropped`, the funnel's `duplicate`); every survivor gets
    `dup_count` from the `.sizes` file, and with a rehydration table the number of times the shard writer writes it.
    (datatrove's `MinhashDedupFilter` reads the same files, but names the size `minhash_cluster_size` and writes it
    over the field of that name a FineWeb-2 source carries.)"""

    type = "🫂 - DEDUP"
    name = "dedup filter"

    def __init__(self, input_folder: str, rehydration: list[tuple[int, int | None, int]] | None = None):
        super().__init__()
        from datatrove.io import get_datafolder

        self.folder = get_datafolder(input_folder)
        self.rehydration = rehydration

    def _records(self, name: str, record: struct.Struct):
        with self.folder.open(name, "rb") as f:
            yield from _iter_records(f, record)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for name in (f"{rank:06d}.remove", f"{rank:06d}.sizes"):
            if not self.folder.exists(name):
                raise RuntimeError(f"{self.folder.path}/{name} is missing: rerun the build with --overwrite")
        removals = (idx for (idx,) in self._records(f"{rank:06d}.remove", struct.Struct("<I")))
        sizes = self._records(f"{rank:06d}.sizes", SIZE_RECORD)
        next_removal, next_size = next(removals, None), next(sizes, None)
        for idx, doc in enumerate(data):
            self.stat_update("total")
            if idx == next_removal:
                self.stat_update("dropped")
                next_removal = next(removals, None)
                continue
            size = 1
            if next_size is not None and next_size[0] == idx:
                size, next_size = next_size[1], next(sizes, None)
            doc.metadata[DUP_COUNT] = size
            if self.rehydration is not None and (times := times_written(self.rehydration, size)) > 1:
                doc.metadata[REPEAT_KEY] = times
            self.stat_update("forwarded")
            yield doc


def dedup_stages(params: DedupParams, work: str, tasks: int, folder: Callable = str) -> dict:
    """The pieces a recipe's dedup step compiles to (folders under ``work``; ``folder(path)`` makes each one's
    datatrove folder: a build passes its ledger's, so that every file they write is recorded)."""
    sigs, pairs, removals = (folder(f"{work}/{name}") for name in ("signatures", "pairs", "remove"))
    signature_steps = ([ExactSignature(sigs)] if params.exact else []) + (
        [NearSignature(sigs, params)] if params.near else []
    )
    return {
        "order_step": OrderSignature(sigs),
        "signature_steps": signature_steps,
        "buckets": MinhashDedupBuckets(sigs, pairs, config=params.minhash_config()) if params.near else None,
        "cluster": DedupCluster(sigs, pairs if params.near else None, removals, tasks, params.exact),
        "filter": DedupFilter(removals, params.rehydration()),
        "summary_file": f"{work}/remove/summary.json",
    }


def not_a_plain_step(params: DedupParams):
    raise RuntimeError("`dedup` is compiled into stages by corpusforge.run, not built as a single step")
