"""Hugging Face `datasets` sources: a Hub id (online) or a local path, optionally streamed. How a spec is opened
(``open_dataset``) and which files it reads (``saved_folder``/``saved_files``, ``data_files``) live side by side: the
input layer (``runner/inputs.py``) fingerprints what the reader will open."""

from __future__ import annotations

import json
from pathlib import Path

from corpusforge import storage
from corpusforge.corpus.layout import STATE
from corpusforge.sources.records import RecordReader


def saved_folder(spec: dict) -> str | None:
    """The folder ``load_from_disk`` opens for this spec: ``path`` itself when ``save_to_disk`` wrote it, else its
    ``split`` subfolder (a saved DatasetDict), local or at an fsspec URL; None when the spec is read with
    ``load_dataset`` (a Hub id, a builder such as `json`, a folder of data files)."""
    if storage.is_url(spec["path"]):
        if spec["path"].startswith("hf://"):
            return None
        fs, inner = storage.url_fs(spec["path"])
        for folder in (inner, f"{inner.rstrip('/')}/{spec['split']}"):
            if fs.exists(f"{folder}/state.json"):
                return fs.unstrip_protocol(folder)
        return None
    path = Path(spec["path"]).expanduser()
    for folder in (path, path / spec["split"]):
        if folder.is_dir() and (folder / STATE).exists():
            return str(folder)
    return None


def saved_files(folder: str) -> list[str]:
    """The Arrow files ``load_from_disk(folder)`` reads: those its state.json lists."""
    with storage.open_file(f"{folder.rstrip('/')}/state.json", "rb") as f:
        state = json.load(f)
    return [f"{folder.rstrip('/')}/{entry['filename']}" for entry in state.get("_data_files") or []]


def is_builder(path: str) -> bool:
    """Whether ``path`` names one of the builders `datasets` ships (`json`, `csv`, `parquet`, `text`, `arrow`, …)."""
    from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

    return path in _PACKAGED_DATASETS_MODULES


def data_files(spec: dict) -> dict[str, list[str]]:
    """The files ``load_dataset`` reads for a builder over files or a local folder of data files, split by split, as
    `datasets` itself resolves ``data_files`` / ``data_dir`` (patterns relative to ``data_dir``, else to the folder
    or the working directory). Nothing is downloaded or prepared."""
    import datasets

    builder = datasets.load_dataset_builder(
        spec["path"], spec.get("name"), data_dir=spec.get("data_dir"), data_files=spec.get("data_files")
    )
    return {str(split): list(files) for split, files in (builder.config.data_files or {}).items()}


def hf_cache_root() -> Path:
    """Where corpusforge keeps the `datasets` caches of its ``hf:`` sources, one per fingerprint of their files."""
    import datasets

    return Path(datasets.config.HF_DATASETS_CACHE) / "corpusforge"


def open_dataset(spec: dict, streaming: bool | None = None):
    """Open the dataset a source names. A folder written by ``save_to_disk`` is opened with ``load_from_disk``."""
    import datasets

    want_stream = streaming if streaming is not None else spec["streaming"]
    folder = saved_folder(spec)
    if folder is not None:
        ds = datasets.load_from_disk(folder)
        return ds.to_iterable_dataset() if want_stream else ds
    return datasets.load_dataset(
        spec["path"],
        spec.get("name"),
        split=spec["split"],
        data_dir=spec.get("data_dir"),
        data_files=spec.get("data_files"),
        revision=spec.get("revision"),
        streaming=want_stream,
        cache_dir=spec.get("cache_dir"),  # keyed on corpusforge's fingerprint of the files (build.inputs)
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
