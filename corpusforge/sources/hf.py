"""Hugging Face `datasets` sources: a Hub id (online) or a local path, optionally streamed."""

from __future__ import annotations

from pathlib import Path

from corpusforge import storage
from corpusforge.sources.records import RecordReader


def open_dataset(spec: dict, streaming: bool | None = None):
    """Open the dataset a source names. A folder written by ``save_to_disk`` is opened with ``load_from_disk``."""
    import datasets

    want_stream = streaming if streaming is not None else spec["streaming"]
    if storage.is_url(spec["path"]) and not spec["path"].startswith("hf://"):  # a save_to_disk folder in a store
        fs, inner = storage.url_fs(spec["path"])
        for folder in (inner, f"{inner.rstrip('/')}/{spec['split']}"):
            if fs.exists(f"{folder}/state.json"):
                ds = datasets.load_from_disk(fs.unstrip_protocol(folder))
                return ds.to_iterable_dataset() if want_stream else ds
    path = Path(spec["path"]).expanduser()
    if path.is_dir() and (path / "state.json").exists():
        ds = datasets.load_from_disk(str(path))
        return ds.to_iterable_dataset() if want_stream else ds
    if path.is_dir() and (path / spec["split"] / "state.json").exists():
        return datasets.load_from_disk(str(path / spec["split"]))
    return datasets.load_dataset(
        spec["path"],
        spec.get("name"),
        split=spec["split"],
        data_files=spec.get("data_files"),
        revision=spec.get("revision"),
        streaming=spec["streaming"] if streaming is None else streaming,
    )


class HFReader(RecordReader):
    """Reads a `datasets` dataset; task ``rank`` takes rows ``rank, rank + world_size, …`` (deterministic), or, for a
    streamed one, whole data shards where there are enough (see `_read_stream`)."""

    name = "hf"

    def __init__(
        self,
        source_name: str,
        spec: dict,
        text_field: str,
        id_field: str | None,
        fields: list[str],
        limit: int | None = None,
        progress_dir: str | None = None,
        source_index: int | None = None,
    ):
        super().__init__(source_name, text_field, id_field, fields, limit, progress_dir, source_index)
        self.spec = spec

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if data:
            yield from data
        yield from self.limited(self._read(rank, world_size))

    def _read(self, rank: int, world_size: int):
        ds = open_dataset(self.spec)
        label = f"{self.spec['path']}[{self.spec['split']}]"
        if self.spec["streaming"]:
            yield from self._read_stream(ds, label, rank, world_size)
            return
        if world_size > 1:
            ds = ds.select(range(rank, len(ds), world_size))
            indices = range(rank, rank + world_size * len(ds), world_size)
            rows = zip(indices, ds)
        else:
            rows = enumerate(ds)
        for i, row in rows:
            doc = self.make_document(row, f"{label}:row {i}", f"{self.source_name}/{i}", i)
            if doc is not None:
                yield doc
                self.report_progress(rank)
        self.report_progress(rank, force=True)

    def _read_stream(self, ds, label: str, rank: int, world_size: int):
        """A streamed dataset, one data shard (file) at a time: with at least as many shards as tasks, task ``rank``
        streams shards ``rank, rank + world_size, …`` and each row is read once; with fewer, every task streams every
        shard and keeps rows ``rank, rank + world_size, …`` of the whole. Ids are ``source/shard/row``, whatever the
        task count."""
        n_shards = max(getattr(ds, "num_shards", 1), 1)
        split_by_shard = n_shards >= world_size
        shards = range(rank, n_shards, world_size) if split_by_shard else range(n_shards)
        seen = 0
        for self.file_index in shards:
            part = ds.shard(num_shards=n_shards, index=self.file_index) if n_shards > 1 else ds
            for j, row in enumerate(part):
                seen += 1
                if not split_by_shard and (seen - 1) % world_size != rank:
                    continue
                where = f"{label}:shard {self.file_index} row {j}"
                doc = self.make_document(row, where, f"{self.source_name}/{self.file_index}/{j}", j)
                if doc is not None:
                    yield doc
                    self.report_progress(rank)
        self.report_progress(rank, force=True)
