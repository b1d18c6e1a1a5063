"""Arrow shards in the `datasets` save_to_disk layout, their finalize step and the manifest."""

from corpusforge.shards.finalize import finalize, recipe_fingerprint
from corpusforge.shards.writer import CP_SCHEMA, ArrowShardWriter, shard_name

__all__ = ["ArrowShardWriter", "CP_SCHEMA", "finalize", "recipe_fingerprint", "shard_name", "scan"]


def scan(out):
    """A polars LazyFrame over the shards.

    `polars.scan_ipc` reads only the Arrow IPC *file* format, while `datasets` reads and writes the *streaming*
    format; shards follow `datasets`, so they are read here with `polars.read_ipc_stream` (memory-mapped).
    """
    from pathlib import Path

    import polars as pl

    files = sorted(Path(out).glob("data-*-of-*.arrow"))
    return pl.concat([pl.read_ipc_stream(f, memory_map=True) for f in files], how="vertical").lazy()
