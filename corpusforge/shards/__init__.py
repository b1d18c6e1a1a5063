"""Arrow shards in the `datasets` save_to_disk layout, their finalize step and the manifest."""

from corpusforge.shards.dataset import finalize, recipe_fingerprint
from corpusforge.shards.writer import CP_SCHEMA, ArrowShardWriter, shard_name

__all__ = ["ArrowShardWriter", "CP_SCHEMA", "finalize", "recipe_fingerprint", "shard_name", "scan"]


def scan(out):
    """A polars LazyFrame over the shards (they carry a file-format footer, so `polars.scan_ipc` reads them)."""
    from pathlib import Path

    import polars as pl

    return pl.scan_ipc(str(Path(out) / "data-*-of-*.arrow"))
