"""The shards rewritten as the Hub's Parquet layout: `data/train-NNNNN-of-MMMMM.parquet`, zstd, 10k-row groups."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from corpusforge.publish.scrub import scrub_column

PARQUET_TARGET_BYTES = 256 * 1024 * 1024  # uncompressed Arrow bytes per Parquet file (~100 MB compressed text)
ROW_GROUP_ROWS = 10_000


def _arrow_batches(out: Path, manifest: dict):
    for shard in manifest["shards"]:
        with pa.memory_map(str(out / shard["file"])) as source:
            yield from pa.ipc.open_stream(source)


def write_parquet(out: Path, manifest: dict, data_dir: Path, target_bytes: int = PARQUET_TARGET_BYTES) -> list[Path]:
    """Rewrite the shards as `data/train-NNNNN-of-MMMMM.parquet`, each about ``target_bytes`` of Arrow data."""
    data_dir.mkdir(parents=True, exist_ok=True)
    schema = pa.ipc.open_stream(pa.memory_map(str(out / manifest["shards"][0]["file"]))).schema
    parts: list[Path] = []
    writer, written = None, 0
    for batch in _arrow_batches(out, manifest):
        if "model" in batch.schema.names and pa.types.is_string(batch.schema.field("model").type):
            i = batch.schema.get_field_index("model")
            batch = batch.set_column(i, batch.schema.field(i), scrub_column(batch.column(i)))
        if writer is None or written >= target_bytes:
            if writer is not None:
                writer.close()
            parts.append(data_dir / f"part-{len(parts):05d}.parquet")
            writer = pq.ParquetWriter(parts[-1], schema, compression="zstd")
            written = 0
        writer.write_batch(batch, row_group_size=ROW_GROUP_ROWS)
        written += batch.nbytes
    if writer is None:  # an empty corpus still gets one (empty) file so the config resolves
        parts.append(data_dir / "part-00000.parquet")
        pq.write_table(schema.empty_table(), parts[-1])
    else:
        writer.close()
    final = []
    for i, part in enumerate(parts):
        target = data_dir / f"train-{i:05d}-of-{len(parts):05d}.parquet"
        part.rename(target)
        final.append(target)
    return final
