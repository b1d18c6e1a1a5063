"""Shards open in every tool untouched: datasets (load_from_disk, load_dataset "arrow"), polars.scan_ipc,
pyarrow's stream and file readers, pyarrow.dataset — with the same rows."""

from __future__ import annotations

import pyarrow as pa
import pytest

import corpusforge as cf
from corpusforge.shards.ipc import DualFormatWriter
from tests.support import make_recipe, write_jsonl


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("interop")
    rows = [{"id": f"d{i}", "text": f"文件 {i} " + "字" * (i % 50), "url": f"u{i}"} for i in range(2500)]
    write_jsonl(tmp / "in.jsonl", rows)
    recipe = make_recipe(
        tmp,
        str(tmp / "in.jsonl"),
        source={"id_field": "id", "fields": ["url"]},
        executor={"tasks": 3, "workers": 1},
        output={"path": str(tmp / "out"), "batch_rows": 300},
    )
    result = cf.run(cf.Recipe.from_dict(recipe))
    return result, sorted(r["id"] for r in rows)


def test_datasets_readers(built):
    import datasets

    result, ids = built
    assert sorted(datasets.load_from_disk(str(result.path))["id"]) == ids
    ds = datasets.load_dataset("arrow", data_files=str(result.path / "*.arrow"), split="train")
    assert sorted(ds["id"]) == ids


def test_polars_scan_ipc(built):
    import polars as pl

    result, ids = built
    frame = pl.scan_ipc(f"{result.path}/*.arrow").collect()
    assert sorted(frame["id"].to_list()) == ids
    assert frame.columns == ["id", "text", "source", "language", "language_score", "n_tokens", "metadata"]
    assert result.scan().select(pl.len()).collect().item() == len(ids)


def test_pyarrow_stream_file_and_dataset(built):
    import pyarrow.dataset as pds

    result, ids = built
    got_stream, got_file = [], []
    for shard in sorted(result.path.glob("*.arrow")):
        got_stream += pa.ipc.open_stream(pa.memory_map(str(shard))).read_all()["id"].to_pylist()
        got_file += pa.ipc.open_file(pa.memory_map(str(shard))).read_all()["id"].to_pylist()
    assert sorted(got_stream) == sorted(got_file) == ids
    files = [str(p) for p in sorted(result.path.glob("data-*.arrow"))]
    assert sorted(pds.dataset(files, format="arrow").to_table()["id"].to_pylist()) == ids


def test_empty_shard_is_valid_in_both_formats(tmp_path):
    schema = pa.schema([("id", pa.string())])
    path = tmp_path / "empty.arrow"
    with open(path, "wb") as f:
        assert DualFormatWriter(f, schema).close()
    assert pa.ipc.open_stream(pa.memory_map(str(path))).read_all().num_rows == 0
    assert pa.ipc.open_file(pa.memory_map(str(path))).read_all().num_rows == 0
