"""Arrow shards in the `datasets` save_to_disk layout, their finalize step and the manifest."""

from corpusforge.shards.finalize import finalize, recipe_fingerprint
from corpusforge.shards.writer import CP_SCHEMA, ArrowShardWriter, shard_name

__all__ = ["ArrowShardWriter", "CP_SCHEMA", "finalize", "recipe_fingerprint", "shard_name", "scan"]


def scan(out):
    """A polars LazyFrame over the shards.

    `polars.scan_ipc` reads only the Arrow IPC *file* format, while `datasets` reads and writes the *streaming*
    format; shards follow `datasets`, so they are memory-mapped with pyarrow and handed to polars without a copy.
    """
    from pathlib import Path

    import polars as pl
    import pyarrow as pa

    files = sorted(Path(out).glob("data-*-of-*.arrow"))
    tables = [pa.ipc.open_stream(pa.memory_map(str(f))).read_all() for f in files]
    return pl.from_arrow(pa.concat_tables(tables)).lazy()
