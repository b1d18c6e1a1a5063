"""Every source format reads the same rows; HF `datasets` sources work from local paths."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

import corpusforge as cf
from conftest import make_recipe, write_jsonl

ROWS = [
    {"id": f"r{i}", "text": t, "url": f"https://example.org/{i}"}
    for i, t in enumerate(["第一篇文章。", "ภาษาไทย", "English text", "日本語のテキストです", "第五篇"])
]


def build(tmp_path, glob, **kwargs):
    return cf.run(cf.Recipe.from_dict(make_recipe(tmp_path, glob, **kwargs)))


def texts(result):
    return sorted(result.load()["text"])


@pytest.mark.parametrize("suffix", ["jsonl", "jsonl.gz", "jsonl.zst"])
def test_jsonl_and_compressed(tmp_path, suffix):
    raw = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS).encode()
    path = tmp_path / f"in.{suffix}"
    path.write_bytes(
        gzip.compress(raw)
        if suffix.endswith("gz")
        else zstandard.ZstdCompressor().compress(raw)
        if suffix.endswith("zst")
        else raw
    )
    result = build(tmp_path, str(path), source={"id_field": "id", "fields": ["url"]})
    ds = result.load()
    assert sorted(ds["id"]) == [r["id"] for r in ROWS]
    assert texts(result) == sorted(r["text"] for r in ROWS)
    meta = json.loads(ds[0]["metadata"])
    assert meta["url"].startswith("https://example.org/")


def test_parquet_csv_arrow(tmp_path):
    table = pa.Table.from_pylist(ROWS)
    pq.write_table(table, tmp_path / "a.parquet")
    with pa.OSFile(str(tmp_path / "b.arrow"), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table)
    with pa.OSFile(str(tmp_path / "c.arrow"), "wb") as f, pa.ipc.new_stream(f, table.schema) as w:
        w.write_table(table)
    import csv

    with open(tmp_path / "d.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "text", "url"])
        writer.writeheader()
        writer.writerows(ROWS)
    for name in ("a.parquet", "b.arrow", "c.arrow", "d.csv"):
        result = build(tmp_path / name.replace(".", "_"), str(tmp_path / name))
        assert texts(result) == sorted(r["text"] for r in ROWS), name


def test_txt_per_line_and_per_file(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.txt").write_text("line one\n\nline two\n", encoding="utf-8")
    (tmp_path / "t" / "b.txt").write_text("第三行\n", encoding="utf-8")
    assert texts(build(tmp_path / "lines", str(tmp_path / "t" / "*.txt"))) == ["line one", "line two", "第三行"]
    per_file = build(tmp_path / "files", str(tmp_path / "t" / "*.txt"), source={"txt_unit": "file"})
    assert texts(per_file) == ["line one\n\nline two\n", "第三行\n"]


def test_hf_datasets_sources_from_local_paths(tmp_path):
    import datasets

    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "saved"))
    write_jsonl(tmp_path / "raw" / "part.jsonl", ROWS)
    for name, spec in {
        "saved": {"path": str(tmp_path / "saved")},
        "builder": {"path": "json", "data_files": str(tmp_path / "raw" / "part.jsonl")},
        "streamed": {"path": "json", "data_files": str(tmp_path / "raw" / "part.jsonl"), "streaming": True},
    }.items():
        recipe = make_recipe(tmp_path / name, "unused", executor={"tasks": 2, "workers": 1})
        recipe["sources"] = [{"name": name, "hf": spec, "id_field": "id"}]
        ds = cf.run(cf.Recipe.from_dict(recipe)).load()
        assert sorted(ds["id"]) == [r["id"] for r in ROWS], name


def test_hf_source_missing_field_fails_before_work(tmp_path):
    write_jsonl(tmp_path / "raw.jsonl", ROWS)
    recipe = make_recipe(tmp_path, "unused")
    recipe["sources"] = [{"hf": {"path": "json", "data_files": str(tmp_path / "raw.jsonl")}, "text_field": "body"}]
    with pytest.raises(cf.RecipeError, match=r"sources\[0\]\.text_field: no field 'body'"):
        cf.run(cf.Recipe.from_dict(recipe))
    assert not (tmp_path / "out").exists()


def test_one_file_is_split_across_tasks(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"text": f"doc {i}"} for i in range(10)])
    result = build(tmp_path, str(tmp_path / "in.jsonl"), executor={"tasks": 3, "workers": 1})
    assert [s["rows"] for s in result.manifest["shards"]] == [4, 3, 3]
    assert len(set(result.load()["id"])) == 10


def test_a_streamed_source_is_read_once_over_its_shards(tmp_path, monkeypatch):
    """A streamed dataset of 4 files over 2 or 4 tasks: each task streams its own files, so every row is read
    once (not once per task), and ids name the file and row, whatever the task count."""
    import corpusforge.sources.hf as hf

    rows = [{"id": f"r{i}", "text": f"row {i} of the stream"} for i in range(40)]
    for part in range(4):
        write_jsonl(tmp_path / "raw" / f"part-{part}.jsonl", rows[part::4])
    reads = []
    load = hf.open_dataset

    def counted(spec, streaming=None):  # tasks run in this process (workers: 1): count every row streamed
        ds = load(spec, streaming)
        return ds.map(lambda row: reads.append(row["id"]) or row)

    monkeypatch.setattr(hf, "open_dataset", counted)
    files = sorted(str(p) for p in (tmp_path / "raw").glob("*.jsonl"))
    ids = {}
    for tasks in (2, 4, 3):
        reads.clear()
        recipe = make_recipe(tmp_path / str(tasks), "unused", executor={"tasks": tasks, "workers": 1})
        recipe["sources"] = [{"name": "s", "hf": {"path": "json", "data_files": files, "streaming": True}}]
        ds = cf.run(cf.Recipe.from_dict(recipe)).load()
        assert sorted(ds["text"]) == sorted(r["text"] for r in rows)
        assert sorted(reads) == sorted(r["id"] for r in rows), f"{tasks} tasks: {len(reads)} reads of 40 rows"
        ids[tasks] = dict(zip(ds["text"], ds["id"]))
    assert ids[2] == ids[4] == ids[3]  # `s/<file>/<row>`: the same whatever the split
    assert ids[2]["row 0 of the stream"] == "s/0/0" and ids[2]["row 5 of the stream"] == "s/1/1"
