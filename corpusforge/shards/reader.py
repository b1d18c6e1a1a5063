"""Read corpusforge shards back into Documents, exactly as the writer stored them (for multi-stage builds)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
from datatrove.data import Document
from datatrove.pipeline.readers.base import BaseReader

from corpusforge.shards.writer import CORE_COLUMNS


def row_to_doc(row: dict) -> Document:
    """Inverse of ``writer.doc_to_row``."""
    metadata = json.loads(row["metadata"]) if row.get("metadata") else {}
    for key in CORE_COLUMNS[2:]:
        if row.get(key) is not None:
            metadata[key] = row[key]
    return Document(text=row["text"], id=row["id"], metadata=metadata)


class ShardReader(BaseReader):
    """Task ``rank`` reads shard ``rank`` of a folder written by ArrowShardWriter with the same task count."""

    type = "📖 - READER"
    name = "shards"

    def __init__(self, folder: str, tasks: int):
        super().__init__()
        self.folder = folder
        self.tasks = tasks

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from corpusforge.shards.writer import shard_name

        if data:
            yield from data
        path = Path(self.folder) / shard_name(rank, self.tasks)
        count = 0
        with pa.memory_map(str(path)) as source:
            for batch in pa.ipc.open_stream(source):
                for row in batch.to_pylist():
                    count += 1
                    yield row_to_doc(row)
        self.stat_update("documents", value=count)
