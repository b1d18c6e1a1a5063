"""`dedup`: exact (normalized-text hash) and near-duplicate (MinHash-LSH) deduplication across all sources.

A dedup step splits the build into stages (see `run.compile_stages`): the steps before it run once and write an
intermediate shard per task together with signatures; datatrove's `MinhashDedupBuckets` finds candidate pairs;
`DedupCluster` (one task) joins exact and near pairs into clusters; the final stage reads the intermediate shards,
drops every document that is not its cluster's survivor (datatrove's `MinhashDedupFilter`) and runs the remaining
steps. The survivor of a cluster is its first document in input order — (task, position) smallest — so the choice
is deterministic.

Shingles are script-aware: text that is mostly Han, kana, Hangul or Thai (no spaces between words) is cut into
characters, other text into words; n-grams of those units are hashed. datatrove's own signature step would use a
word tokenizer (spaCy/jieba/…) that these languages do not need for near-duplicate detection.
"""

from __future__ import annotations

import heapq
import json
import re
import struct
import unicodedata

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

from corpusforge.recipe.models import StrictModel
from corpusforge.steps.registry import register_builtin

_UNSPACED = re.compile(
    r"[\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"
)
_NOT_WORD = re.compile(r"[\W_]+")
EXACT_RECORD = struct.Struct("<QI")  # 64-bit text hash, document index in the task
EXACT_DTYPE = np.dtype([("hash", "<u8"), ("index", "<u4")])  # the same record, for numpy
READ_CHUNK = 1 << 16  # records read at a time from signature and pair files


class DedupParams(StrictModel):
    """Exact and near-duplicate removal across all sources (MinHash-LSH, character shingles for CJK/Thai)."""

    exact: bool = Field(
        True, description="Remove documents whose normalized text (case, width, spacing, punctuation) is identical."
    )
    near: bool = Field(True, description="Remove near-duplicates found by MinHash-LSH.")
    ngrams: int = Field(5, ge=1, le=20, description="Shingle size: characters for CJK/Thai text, words otherwise.")
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


class ScriptAwareUnits(WordTokenizer):
    """Characters for unspaced scripts (Han, kana, Hangul, Thai, Lao, Khmer, Myanmar), words otherwise."""

    def word_tokenize(self, text: str) -> list[str]:
        letters = text.replace(" ", "")
        if letters and len(_UNSPACED.findall(letters)) * 2 >= len(letters):
            return list(letters)
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


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

    def get_shingles(self, text: str) -> np.ndarray:
        # datatrove's version hands str to xxhash, which rejects any non-ASCII text: hash the UTF-8 bytes
        import xxhash
        from datatrove.utils.text import ngrams, simplify_text

        units = self.word_tokenizer.word_tokenize(simplify_text(text, self.config.norm_config))
        hashes = [
            xxhash.xxh64_intdigest(" ".join(gram).encode("utf-8")) for gram in ngrams(units, self.config.n_grams)
        ]
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

    The survivor of every cluster is its smallest (task, index), i.e. its first document in input order.
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
                lo, hi = (ra, rb) if ra < rb else (rb, ra)
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


def dedup_stages(params: DedupParams, work: str, tasks: int) -> dict:
    """The pieces a recipe's dedup step compiles to (folders under ``work``)."""
    sigs, pairs, removals = f"{work}/signatures", f"{work}/pairs", f"{work}/remove"
    signature_steps = ([ExactSignature(sigs)] if params.exact else []) + (
        [NearSignature(sigs, params)] if params.near else []
    )
    return {
        "signature_steps": signature_steps,
        "buckets": MinhashDedupBuckets(sigs, pairs, config=params.minhash_config()) if params.near else None,
        "cluster": DedupCluster(sigs, pairs if params.near else None, removals, tasks, params.exact),
        "filter": MinhashDedupFilter(removals),
        "summary_file": f"{removals}/summary.json",
    }


def _not_a_plain_step(params: DedupParams):
    raise RuntimeError("`dedup` is compiled into stages by corpusforge.run, not built as a single step")


register_builtin("dedup", DedupParams, _not_a_plain_step)
