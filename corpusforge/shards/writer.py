"""Arrow shard writer: one `data-NNNNN-of-MMMMM-<build>.arrow` per task, Arrow streaming IPC as `datasets` writes it,
with a file-format footer appended so that `polars.scan_ipc` and `pyarrow.dataset` open it too (see ipc.py).

The shard is written to a temporary file under `.corpusforge/tmp/` and renamed into place when the task's input
is exhausted, so a crashed or killed task never leaves a readable half shard; a rerun overwrites the whole shard.

A document whose metadata holds ``REPEAT_KEY: n`` (the dedup step's `rehydrate`) is written n times: the row, then
copies with ids ``<id>#2`` … ``<id>#n``, so that every row's id stays unique and the same whatever the worker count.
"""

from __future__ import annotations

import json
import logging
import os

import pyarrow as pa
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.writers.disk_base import DiskWriter

from corpusforge.corpus.layout import WORK_DIR, shard_name
from corpusforge.shards.ipc import DualFormatWriter

CORE_COLUMNS = ("id", "text", "source", "language", "language_score", "n_tokens")
CP_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("source", pa.string()),
        ("language", pa.string()),
        ("language_score", pa.float64()),
        ("n_tokens", pa.int64()),
        ("metadata", pa.string()),  # JSON: the source's extra `fields` and any step annotations
    ]
)
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
KD_ROW = [
    ("kind", pa.string()),  # recovery | tcot | translation | preference
    ("source_id", pa.string()),  # id of the prompt's source row
    ("model", pa.string()),
    ("params_hash", pa.string()),  # model + backend + sampling: rows with equal hashes were sampled alike
    ("finish_reason", pa.string()),  # stop | length | supplied (nothing generated); a pair's: its chosen answer's
    ("n_tokens", pa.int64()),  # tokens generated for the row
]
KD_SCHEMA = pa.schema([("id", pa.string()), ("messages", MESSAGES), *KD_ROW])
# KD preference pairs (task `preference`): TRL's conversational preference format, the scores and their reasons
PREFERENCE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("prompt", MESSAGES),  # [system,] user
        ("chosen", MESSAGES),  # [assistant]
        ("rejected", MESSAGES),  # [assistant]
        ("chosen_score", pa.float64()),
        ("rejected_score", pa.float64()),
        ("margin", pa.float64()),  # chosen_score - rejected_score
        ("chosen_reasons", pa.list_(pa.string())),
        ("rejected_reasons", pa.list_(pa.string())),
        ("chosen_from", pa.string()),  # sample | reference | translation
        ("chosen_sample", pa.int64()),  # null unless chosen_from is `sample`
        ("rejected_sample", pa.int64()),
        ("samples", pa.int64()),  # answers drawn for the prompt
        ("sample_scores", pa.list_(pa.float64())),
        ("sample_reasons", pa.list_(pa.list_(pa.string()))),
        *KD_ROW,
    ]
)
# Metadata key of the number of times the writer writes a document (set by the dedup step's `rehydrate`; never written)
REPEAT_KEY = "_corpusforge_repeat"
log = logging.getLogger("corpusforge.shards")


def hf_features(schema: pa.Schema) -> dict:
    from datasets import Features

    return Features.from_arrow_schema(schema).to_dict()


def with_hf_metadata(schema: pa.Schema) -> pa.Schema:
    """Schema carrying the `huggingface` features metadata that `datasets` writes into its own shards."""
    info = json.dumps({"info": {"features": hf_features(schema)}})
    return schema.with_metadata({"huggingface": info})


def doc_to_row(doc: Document) -> dict:
    meta = dict(doc.metadata)
    row = {"id": doc.id, "text": doc.text}
    for key in CORE_COLUMNS[2:]:
        row[key] = meta.pop(key, None)
    meta.pop("file_path", None)
    meta.pop(REPEAT_KEY, None)
    row["metadata"] = json.dumps(meta, ensure_ascii=False, sort_keys=True, default=str) if meta else None
    return row


def copies(row: dict, times: int) -> list[dict]:
    """``row`` and its ``times - 1`` copies, ids ``<id>#2``, ``<id>#3``, …"""
    return [row] + [{**row, "id": f"{row['id']}#{k}"} for k in range(2, times + 1)]


def kd_schema(generate) -> pa.Schema:
    """The columns of a KD build (``generate``: its `GenerateConfig`): preference pairs, or conversations."""
    return PREFERENCE_SCHEMA if generate.preference else KD_SCHEMA


class ArrowShardWriter(DiskWriter):
    name = "arrow shards"
    default_output_filename = "data-${rank}.arrow"
    group_column, group_stat = "language", "lang"  # rows counted per value into the task's stats: `lang_th`
    row_of = staticmethod(doc_to_row)

    def __init__(
        self, output_folder, batch_rows: int = 1000, schema: pa.Schema = CP_SCHEMA, build_id: str | None = None
    ):
        """``output_folder``: a path or a datatrove folder (a build's ``LedgerFolder``: its writes are recorded);
        ``build_id`` goes into the shard names (None: intermediate shards)."""
        super().__init__(output_folder, compression=None, mode="wb")
        self.batch_rows = batch_rows
        self.schema = schema
        self.build_id = build_id

    def _write(self, document: dict, file_handler, filename: str):  # DiskWriter's per-doc hook, unused: see run()
        raise NotImplementedError

    def _flush(self, writer, rows: list[dict]) -> None:
        if rows:
            writer.write_batch(pa.RecordBatch.from_pylist(rows, schema=self.schema))
            rows.clear()

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        final = shard_name(rank, world_size, self.build_id)
        tmp = f"{WORK_DIR}/tmp/{final}.{os.getpid()}.partial"
        self.output_folder.makedirs(f"{WORK_DIR}/tmp", exist_ok=True)
        schema = with_hf_metadata(self.schema)
        rows: list[dict] = []
        languages: dict[str, int] = {}
        repeated = extra = 0
        try:
            with self.output_folder.open(tmp, "wb") as f:
                writer = DualFormatWriter(f, schema)
                for doc in data:
                    row = self.row_of(doc)
                    times = int(doc.metadata.get(REPEAT_KEY, 1))
                    if times > 1:
                        rows += copies(row, times)
                        repeated, extra = repeated + 1, extra + times - 1
                    else:
                        rows.append(row)
                    lang = row[self.group_column] or "unknown"
                    languages[lang] = languages.get(lang, 0) + times
                    if len(rows) >= self.batch_rows:
                        self._flush(writer, rows)
                    yield doc
                self._flush(writer, rows)
                if not writer.close():
                    log.warning("%s: file-format footer skipped; the shard is a plain Arrow stream", final)
        except BaseException:
            if self.output_folder.exists(tmp):
                self.output_folder.rm(tmp)
            raise
        self.output_folder.mv(tmp, final)
        self.stat_update("rows", value=sum(languages.values()))
        if repeated:  # the funnel's `rehydrate` row
            self.stat_update("rehydrated", value=repeated)
            self.stat_update("rehydrate_copies", value=extra)
        for lang, count in languages.items():
            self.stat_update(f"{self.group_stat}_{lang}", value=count)


class KDShardWriter(ArrowShardWriter):
    """KD rows: `id, messages, kind, source_id, model, params_hash, finish_reason, n_tokens` (``KD_SCHEMA``), or
    preference pairs (``PREFERENCE_SCHEMA``)."""

    group_column, group_stat = "kind", "kind"

    def __init__(
        self, output_folder, batch_rows: int = 1000, build_id: str | None = None, schema: pa.Schema = KD_SCHEMA
    ):
        super().__init__(output_folder, batch_rows, schema=schema, build_id=build_id)

    def row_of(self, doc: Document) -> dict:
        return {name: doc.id if name == "id" else doc.metadata.get(name) for name in self.schema.names}
