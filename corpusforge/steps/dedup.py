"""`dedup`: exact (normalized-text hash) and near-duplicate (MinHash-LSH) deduplication across all sources.

A dedup step splits the build into stages (see `run.compile_stages`): the steps before it run once and write an
intermediate shard per task together with signatures; datatrove's `MinhashDedupBuckets` finds candidate pairs;
`DedupCluster` (one task) joins exact and near pairs into clusters; the final stage reads the intermediate shards,
drops every document that is not its cluster's survivor (datatrove's `MinhashDedupFilter`) and runs the remaining
steps. The survivor of a cluster is its first document in recipe order: the first source listed, then file, then
row — whatever the task split or worker count (the readers tag each document with its place, `OrderSignature` writes
it down and takes the tag off).

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
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.utils.text import TextNormConfig
from datatrove.utils.word_tokenizers import WordTokenizer
from pydantic import Field, model_validator

from corpusforge.config import StrictModel
from corpusforge.lang.scripts import unspaced
from corpusforge.sources.records import ORDER_KEY

_NOT_WORD = re.compile(r"[\W_]+")
EXACT_RECORD = struct.Struct("<QI")  # 64-bit text hash, document index in the task
EXACT_DTYPE = np.dtype([("hash", "<u8"), ("index", "<u4")])  # the same record, for numpy
READ_CHUNK = 1 << 16  # records read at a time from signature and pair files


class DedupParams(StrictModel):
    """Exact and near-duplicate removal across all sources (MinHash-LSH on character shingles); of each cluster,
    the document of the first source in recipe order survives."""

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

    @model_validator(mode="after")
    def _something(self):
        if not (self.exact or self.near):
            raise ValueError("set `exact`, `near`, or both (otherwise remove the dedup step)")
        return self

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
    Output: ``{rank:06d}.remove`` (sorted uint32 indices, datatrove's format) for every task, and summary.json.
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
        for node in list(parent):
            if find(node) != node:
                remove[node[0]].append(node[1])
        for task, indices in enumerate(remove):
            with self.output_folder.open(f"{task:06d}.remove", "wb") as f:
                f.write(np.asarray(sorted(indices), dtype="<u4").tobytes())
        summary = {"exact_pairs": exact_pairs, "near_pairs": near_pairs, "removed": sum(map(len, remove))}
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
        "filter": MinhashDedupFilter(removals),
        "summary_file": f"{work}/remove/summary.json",
    }


def not_a_plain_step(params: DedupParams):
    raise RuntimeError("`dedup` is compiled into stages by corpusforge.run, not built as a single step")
