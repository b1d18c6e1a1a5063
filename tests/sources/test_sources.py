"""Every source format reads the same rows; HF `datasets` sources work from local paths."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
import zstandard

import corpusforge as cf
from corpusforge.errors import BuildFailed
from tests.support import make_recipe, write_jsonl

ROWS = [
    {"id": f"r{i}", "text": t, "url": f"https://example.org/{i}"}
    for i, t in enumerate(["第一篇文章。", "ภาษาไทย", "English text", "日本語のテキストです", "第五篇"])
]


def build(tmp_path, glob, **kwargs):
    return cf.run(cf.Recipe.from_dict(make_recipe(tmp_path, glob, **kwargs)))


def load_from_disk(path):
    import datasets

    return datasets.load_from_disk(str(path))


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


def test_a_json_array_of_records_and_json_lines(tmp_path):
    """A `.json` file is one array of records (what `json.dump` of a list writes) or JSON lines: both read."""
    (tmp_path / "array.json").write_text(json.dumps(ROWS, ensure_ascii=False, indent=1), encoding="utf-8")
    (tmp_path / "lines.json").write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    for name in ("array.json", "lines.json"):
        result = build(tmp_path / name.replace(".", "_"), str(tmp_path / name), source={"id_field": "id"})
        assert sorted(result.load()["id"]) == [r["id"] for r in ROWS], name


def test_a_limit_reads_exactly_that_many_per_task_and_the_funnel_adds_up(tmp_path):
    """With `limit`, the reader counted one document more per task than it passed on (seen as `read:prompts 122`
    above `normalize 120` in the example's KD build)."""
    files = [tmp_path / f"part{k}.jsonl" for k in range(2)]
    for k, f in enumerate(files):
        f.write_text("".join(json.dumps({"text": f"part {k} row {i}"}) + "\n" for i in range(20)), encoding="utf-8")
    result = build(
        tmp_path, str(tmp_path / "part*.jsonl"), source={"limit": 6}, steps=[{"normalize": {}}], executor={"tasks": 2}
    )
    steps = {s["step"]: s for s in result.manifest["steps"]}
    assert steps["read:src"]["out"] == steps["normalize"]["in"] == result.manifest["rows"] == 12


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


# ------------------------------------------------------------------------------------------------ one input layer
def hf_recipe(tmp_path, spec: dict, tasks: int = 2, **extra) -> cf.Recipe:
    recipe = make_recipe(tmp_path, "unused", executor={"tasks": tasks, "workers": 1}, **extra)
    recipe["sources"] = [{"name": "local", "hf": spec, "id_field": "id"}]
    return cf.Recipe.from_dict(recipe)


def rows(prefix: str, n: int = 4) -> list[dict]:
    return [{"id": f"{prefix}-{i}", "text": f"{prefix} text {i}"} for i in range(n)]


@pytest.mark.parametrize("streaming", [False, True])
def test_hf_local_files_edited_after_a_build_are_refused_then_rebuilt(tmp_path, monkeypatch, streaming):
    """`hf: {path: json, data_files: data/*.jsonl}` was fingerprinted by its spec only: files edited after a finished
    build were served as the old rows, exit 0. Its files are now fingerprinted like a glob's."""
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "data" / "a.jsonl", rows("old-a"))
    write_jsonl(tmp_path / "data" / "b.jsonl", rows("old-b"))
    recipe = hf_recipe(tmp_path, {"path": "json", "data_files": "data/*.jsonl", "streaming": streaming})
    first = cf.run(recipe)
    assert sorted(first.load()["id"]) == sorted(r["id"] for r in rows("old-a") + rows("old-b"))
    assert cf.run(recipe).manifest["rows"] == 8  # unchanged: resumed, nothing to do
    write_jsonl(tmp_path / "data" / "b.jsonl", rows("new-b", 3))
    with pytest.raises(cf.OutputError, match=r"input \S*data/b\.jsonl changed \(size, content"):
        cf.run(recipe)
    assert sorted(load_from_disk(tmp_path / "out")["id"]) == sorted(first.load()["id"])  # nothing was changed
    rebuilt = cf.run(recipe, overwrite=True)
    assert sorted(rebuilt.load()["text"]) == sorted(r["text"] for r in rows("old-a") + rows("new-b", 3))
    assert {e["path"] for e in rebuilt.manifest["inputs"] if "path" in e} == {
        str(tmp_path / "data" / "a.jsonl"),
        str(tmp_path / "data" / "b.jsonl"),
    }


def test_hf_local_file_edited_in_place_keeping_size_and_mtime_is_rebuilt_from_the_new_text(tmp_path, monkeypatch):
    """`datasets` keys its cache on path, size and modification time: an edit that keeps both was caught by the
    fingerprint (the rerun refused) but --overwrite rebuilt from the old cache. The cache is keyed on the
    fingerprint now."""
    import os

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "data" / "a.jsonl"
    write_jsonl(path, rows("old-a"))
    recipe = hf_recipe(tmp_path, {"path": "json", "data_files": "data/*.jsonl", "streaming": False})
    assert cf.run(recipe, report=False).manifest["rows"] == 4
    before = os.stat(path)
    path.write_bytes(path.read_bytes().replace(b"old-a", b"NEW-a"))  # same length
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_size == before.st_size
    with pytest.raises(cf.OutputError, match=r"data/a\.jsonl changed \(content\)"):
        cf.run(recipe, report=False)
    texts = cf.run(recipe, overwrite=True, report=False).load()["text"]
    assert texts and all("NEW-a" in t for t in texts)


def test_hf_local_file_edited_between_tasks_is_refused_never_mixed(tmp_path, monkeypatch):
    """A build whose task 0 finished and task 1 did not (a kill, a crash), its files edited before the rerun: the
    rerun resumed, and the corpus held task 0's old text beside task 1's new text. It is now refused."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plug.py").write_text(
        "import corpusforge as cf\n\n\n@cf.filter\ndef crash_on(doc, word='boom'):\n"
        "    if word in doc.text:\n        raise RuntimeError('crashed on purpose')\n    return True\n"
    )
    write_jsonl(tmp_path / "data" / "a.jsonl", rows("old-a"))
    write_jsonl(tmp_path / "data" / "b.jsonl", [*rows("old-b"), {"id": "x", "text": "boom"}])
    spec = {"path": "json", "data_files": ["data/a.jsonl", "data/b.jsonl"], "streaming": True}  # task i: file i
    recipe = hf_recipe(tmp_path, spec, steps=[{"crash_on": {}}], plugins=[str(tmp_path / "plug.py")])
    with pytest.raises(BuildFailed, match="crashed on purpose"):
        cf.run(recipe, report=False)
    write_jsonl(tmp_path / "data" / "a.jsonl", rows("new-a"))
    write_jsonl(tmp_path / "data" / "b.jsonl", rows("new-b"))
    with pytest.raises(cf.OutputError, match=r"input \S*data/a\.jsonl changed.*input \S*data/b\.jsonl changed"):
        cf.run(recipe, report=False)
    texts = sorted(cf.run(recipe, overwrite=True, report=False).load()["text"])
    assert texts == sorted(r["text"] for r in rows("new-a") + rows("new-b"))


def test_a_save_to_disk_folder_is_fingerprinted_by_its_arrow_files(tmp_path):
    import datasets

    datasets.Dataset.from_list(rows("old")).save_to_disk(str(tmp_path / "saved"))
    recipe = hf_recipe(tmp_path, {"path": str(tmp_path / "saved")})
    assert cf.run(recipe).manifest["rows"] == 4
    datasets.Dataset.from_list(rows("new", 5)).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(cf.OutputError, match=r"saved/data-00000-of-00001\.arrow changed"):
        cf.run(recipe)
    assert sorted(cf.run(recipe, overwrite=True).load()["id"]) == [f"new-{i}" for i in range(5)]


SHA = "c0ffee" + "0" * 34


@pytest.fixture
def fake_hub(monkeypatch):
    from tests.support.fake_hub import FakeHub

    hub = FakeHub()
    hub.datasets["org/corpus"] = SHA
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    yield hub
    hub.close()


def opened_specs(monkeypatch) -> list[dict]:
    """Record what the plan's check opens instead of asking the (fake) Hub for rows."""
    import datasets

    import corpusforge.runner.inputs as inputs

    specs = []
    monkeypatch.setattr(
        inputs, "open_dataset", lambda spec, streaming=None: specs.append(spec) or datasets.Dataset.from_list(ROWS)
    )
    return specs


def test_a_hub_dataset_is_pinned_to_its_commit_and_the_readers_load_it(fake_hub, monkeypatch):
    from corpusforge.runner.plan import compile_plan

    specs = opened_specs(monkeypatch)
    recipe = cf.Recipe.from_dict(
        {**make_recipe(Path("unused"), "x"), "sources": [{"hf": {"path": "org/corpus", "revision": "main"}}]}
    )
    plan = compile_plan(recipe)
    assert plan.record["inputs"] == [
        {"source": "org/corpus", "hf": recipe.sources[0].hf.model_dump(), "revision": SHA}
    ]
    reader = plan.stages[0].pipeline[0]
    assert reader.spec["revision"] == SHA and specs[0]["revision"] == SHA  # what the workers and the check load
    assert [c["path"] for c in fake_hub.calls] == ["/api/datasets/org/corpus/revision/main"]
    pinned = cf.Recipe.from_dict({**recipe.to_dict(), "sources": [{"hf": {"path": "org/corpus", "revision": SHA}}]})
    assert compile_plan(pinned).record["inputs"][0]["revision"] == SHA
    assert len(fake_hub.calls) == 1  # a commit sha is used as it is, without asking
    missing = cf.Recipe.from_dict({**recipe.to_dict(), "sources": [{"hf": {"path": "org/missing"}}]})
    with pytest.raises(cf.RecipeError, match=r"sources\[0\]\.hf\.path: no Hub dataset 'org/missing'"):
        compile_plan(missing)


def test_a_hub_that_does_not_answer_is_said_at_plan_time_and_not_resumed(monkeypatch, caplog):
    import socket

    from corpusforge.runner.plan import compile_plan, resume_problems

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    opened_specs(monkeypatch)
    recipe = cf.Recipe.from_dict({**make_recipe(Path("unused"), "x"), "sources": [{"hf": {"path": "org/corpus"}}]})
    with caplog.at_level("WARNING", logger="corpusforge"):
        record = compile_plan(recipe).record
    assert "sources[0] 'org/corpus': its content cannot be fingerprinted" in caplog.text
    assert "unfingerprinted" in record["inputs"][0] and "revision" not in record["inputs"][0]
    (problem,) = resume_problems(record, record)
    assert problem.startswith("input org/corpus cannot be fingerprinted (cannot pin Hub dataset 'org/corpus'")
    assert problem.endswith("; rerun with --overwrite to rebuild")


def _cli(*args, cwd):
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "corpusforge.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=180
    )


@pytest.mark.parametrize("glob", ["data/**/*.arrow", "data/**/*"])
def test_the_output_folder_inside_the_source_glob_is_never_an_input(tmp_path, monkeypatch, glob):
    """An output folder inside the source glob, rebuilt with --overwrite, fingerprinted its own shards as inputs,
    deleted them, and every task failed with FileNotFoundError."""
    import pyarrow as pa

    table = pa.Table.from_pylist(ROWS)
    (tmp_path / "data" / "in").mkdir(parents=True)
    if glob.endswith(".arrow"):
        with (
            pa.OSFile(str(tmp_path / "data" / "in" / "rows.arrow"), "wb") as f,
            pa.ipc.new_stream(f, table.schema) as w,
        ):
            w.write_table(table)
    else:
        write_jsonl(tmp_path / "data" / "in" / "rows.jsonl", ROWS)
    recipe = make_recipe(tmp_path, glob, source={"id_field": "id"}, executor={"tasks": 2, "workers": 1})
    recipe["output"]["path"] = str(tmp_path / "data" / "out")
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe, allow_unicode=True))
    monkeypatch.chdir(tmp_path)
    name = f"data/in/rows.{'arrow' if glob.endswith('.arrow') else 'jsonl'}"
    ids = []
    for run in ("first", "--overwrite", "resume"):
        if run == "--overwrite":  # as a user runs it: exit 0
            proc = _cli("run", "r.yaml", "--overwrite", cwd=tmp_path)
            assert proc.returncode == 0, proc.stderr
        else:
            cf.run(cf.Recipe.from_dict(recipe), report=False)
        manifest = json.loads((tmp_path / "data" / "out" / "manifest.json").read_text())
        assert [e["path"] for e in manifest["inputs"]] == [name], run
        ids.append(sorted(load_from_disk(tmp_path / "data" / "out")["id"]))
    assert ids[0] == ids[1] == ids[2] == sorted(r["id"] for r in ROWS)

    recipe["sources"][0]["glob"] = "data/out/**/*"  # nothing but the output itself
    with pytest.raises(cf.RecipeError, match=r"no file matches 'data/out/\*\*/\*' outside the build's output folder"):
        cf.run(cf.Recipe.from_dict(recipe), output=tmp_path / "data" / "out")


def test_a_url_output_inside_a_url_glob_is_left_out(tmp_path):
    import fsspec

    from corpusforge.runner.inputs import resolve_inputs

    fs = fsspec.filesystem("memory")
    fs.pipe("/own-output/in/a.jsonl", b'{"text": "kept"}\n')
    fs.pipe("/own-output/out/data-00000-of-00001.jsonl", b'{"text": "own"}\n')  # what a build there would hold
    recipe = make_recipe(tmp_path, "memory://own-output/**/*.jsonl", output={"path": "memory://own-output/out/"})
    (entry,) = resolve_inputs(cf.Recipe.from_dict(recipe), out=tmp_path / "staging")
    assert entry.files == ["memory:///own-output/in/a.jsonl"]
    recipe["sources"][0]["glob"] = "memory://own-output/out/*.jsonl"
    with pytest.raises(cf.RecipeError, match=r"outside the build's output folder memory:///own-output/out: its 1"):
        resolve_inputs(cf.Recipe.from_dict(recipe))
    fs.rm("/own-output", recursive=True)
