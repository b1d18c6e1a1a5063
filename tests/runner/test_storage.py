"""Corpora read from and written to object stores through fsspec: an S3 server (moto, on 127.0.0.1, started here)
driven by the CLI with two worker processes, and ``memory://`` through the Python API. A finished build opens with
``datasets.load_from_disk`` through the same URL, and the trust rules of a local folder hold at the URL."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile

import datasets
import fsspec
import pyarrow as pa
import pytest
import yaml

from tests.support import make_recipe, stdlib_paragraphs

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


@pytest.fixture(scope="module")
def paragraphs():
    texts = stdlib_paragraphs(200, 1200)[:300]
    assert len(texts) == 300
    return texts


@pytest.fixture
def s3(monkeypatch, tmp_path):
    """A moto S3 server on a free local port, with credentials and the endpoint in fsspec's environment config."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "FSSPEC_S3_ENDPOINT_URL": f"http://{host}:{port}",
        "CORPUSFORGE_CACHE": str(tmp_path / "cache"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    fs = fsspec.filesystem("s3", endpoint_url=env["FSSPEC_S3_ENDPOINT_URL"], skip_instance_cache=True)
    fs.mkdir("corpora")
    yield fs, env
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{env['FSSPEC_S3_ENDPOINT_URL']}/moto-api/reset", method="POST"))
    server.stop()  # (moto keeps its buckets in this process: reset, so each test starts from an empty store)


def _cli(*args, env, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "corpusforge.cli", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _recipe(tmp_path, glob: str, dedup: bool = True, **extra) -> dict:
    return make_recipe(
        tmp_path,
        glob,
        steps=[{"normalize": {}}, {"length": {"min_chars": 50}}] + ([{"dedup": {"num_buckets": 2}}] if dedup else []),
        source={"id_field": "id"},
        **extra,
    )


@pytest.mark.slow  # 10–25 s: kept out of the default suite (about 6 minutes); CI runs it in test-slow
def test_s3_build_over_two_workers_reads_and_writes_the_store(s3, tmp_path, paragraphs):
    fs, env = s3
    rows = [{"id": f"p{i}", "text": t} for i, t in enumerate(paragraphs)]
    rows += [{"id": f"dup{i}", "text": paragraphs[i]} for i in range(20)]  # exact duplicates, for dedup to drop
    parts = [rows[i::3] for i in range(3)]
    fs.pipe("corpora/raw/part-0.jsonl.gz", gzip.compress(_jsonl(parts[0])))
    fs.pipe("corpora/raw/part-1.jsonl", _jsonl(parts[1]))
    fs.pipe("corpora/raw/nested/part-2.jsonl.gz", gzip.compress(_jsonl(parts[2])))

    recipe = _recipe(tmp_path, "s3://corpora/raw/**/*.jsonl*", executor={"tasks": 3, "workers": 2})
    (tmp_path / "remote.yaml").write_text(yaml.safe_dump(recipe))
    done = _cli("run", "remote.yaml", "--output", "s3://corpora/built/zh", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "s3://corpora/built/zh" in done.stdout

    # the same recipe on the same files, local: the store changes nothing about the rows
    local = tmp_path / "local"
    for i, part in enumerate(parts):
        name = f"part-{i}.jsonl" + ("" if i == 1 else ".gz")
        folder = local / ("nested" if i == 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        data = _jsonl(part)
        (folder / name).write_bytes(data if i == 1 else gzip.compress(data))
    recipe_local = _recipe(tmp_path, str(local / "**/*.jsonl*"), executor={"tasks": 3, "workers": 2})
    recipe_local["output"]["path"] = str(tmp_path / "local-out")
    (tmp_path / "local.yaml").write_text(yaml.safe_dump(recipe_local))
    assert _cli("run", "local.yaml", env=env, cwd=tmp_path).returncode == 0

    remote = datasets.load_from_disk(
        "s3://corpora/built/zh", storage_options={"endpoint_url": env["FSSPEC_S3_ENDPOINT_URL"]}
    )
    here = datasets.load_from_disk(str(tmp_path / "local-out"))
    assert sorted(remote["text"]) == sorted(here["text"])
    assert len(set(remote["text"])) == len(remote) < len(paragraphs)  # the 20 copies (and near-duplicates) gone
    listed = sorted(p.rsplit("/", 1)[1] for p in fs.ls("corpora/built/zh"))
    assert "manifest.json" in listed and "report.html" in listed
    assert len([n for n in listed if n.startswith("data-")]) == 3
    manifest = json.loads(fs.cat("corpora/built/zh/manifest.json"))
    assert manifest["rows"] == len(remote)
    assert "testing" not in json.dumps(manifest)  # no credential in what is published

    # the commands that take a build's output take its URL too
    shown = _cli("inspect", "s3://corpora/built/zh", "--rows", "2", env=env, cwd=tmp_path)
    assert shown.returncode == 0 and remote["id"][0] in shown.stdout
    status = _cli("status", "s3://corpora/built/zh", env=env, cwd=tmp_path)
    assert status.returncode == 0 and "finalized" in status.stdout

    # the same build again resumes (nothing to redo); with one task and --overwrite, the old shards go
    again = _cli("run", "remote.yaml", "--output", "s3://corpora/built/zh", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    recipe["executor"] = {"tasks": 1, "workers": 1}
    (tmp_path / "remote.yaml").write_text(yaml.safe_dump(recipe))
    refused = _cli("run", "remote.yaml", "--output", "s3://corpora/built/zh", env=env, cwd=tmp_path)
    assert refused.returncode != 0 and "holds another build" in refused.stderr
    replaced = _cli("run", "remote.yaml", "--output", "s3://corpora/built/zh", "--overwrite", env=env, cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    shards = [p for p in fs.ls("corpora/built/zh", refresh=True) if p.rsplit("/", 1)[1].startswith("data-")]
    build_id = json.loads(fs.cat("corpora/built/zh/.corpusforge/plan.json"))["build_id"]
    assert [s.rsplit("/", 1)[1] for s in shards] == [f"data-00000-of-00001-{build_id}.arrow"]


def test_s3_prefix_with_foreign_files_is_refused_and_untouched(s3, tmp_path, paragraphs):
    fs, env = s3
    fs.pipe("corpora/in/a.jsonl", _jsonl([{"id": str(i), "text": t} for i, t in enumerate(paragraphs[:30])]))
    fs.pipe("corpora/thesis/thesis.tex", b"\\documentclass{article}")
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(_recipe(tmp_path, "s3://corpora/in/*.jsonl")))
    for extra in ([], ["--overwrite"]):
        done = _cli("run", "r.yaml", "--output", "s3://corpora/thesis", *extra, env=env, cwd=tmp_path)
        assert done.returncode == 2, done.stderr[-2000:]
        assert "thesis.tex" in done.stderr and "nothing was changed" in done.stderr
    assert fs.ls("corpora/thesis", refresh=True) == ["corpora/thesis/thesis.tex"]
    assert not (tmp_path / "cache").exists()  # refused before any work

    missing = _cli("run", "r.yaml", "--output", "s3://corpora/x", env={**env, "AWS_ACCESS_KEY_ID": ""}, cwd=tmp_path)
    bad_glob = yaml.safe_dump(_recipe(tmp_path, "s3://corpora/nothing-here/*.jsonl"))
    (tmp_path / "bad.yaml").write_text(bad_glob)
    nothing = _cli("run", "bad.yaml", env=env, cwd=tmp_path)
    assert nothing.returncode == 2 and "no file matches 's3://corpora/nothing-here/*.jsonl'" in nothing.stderr
    assert missing.returncode != 0  # the store refuses; the error names the URL
    assert "s3://corpora" in missing.stderr
    typo = _cli("run", "r.yaml", "--output", "s3://corpra/zh", env=env, cwd=tmp_path)
    assert typo.returncode == 2 and "bucket 'corpra' does not exist" in typo.stderr
    assert not fs.exists("corpra")  # refused, not created


def test_memory_urls_through_the_python_api(tmp_path, monkeypatch, paragraphs):
    import corpusforge as cf

    monkeypatch.setenv("CORPUSFORGE_CACHE", str(tmp_path / "cache"))
    fs = fsspec.filesystem("memory")
    fs.pipe("/in/docs.jsonl", _jsonl([{"id": str(i), "text": t} for i, t in enumerate(paragraphs[:80])]))
    raw = _recipe(tmp_path, "memory://in/*.jsonl", dedup=False, executor={"tasks": 2, "workers": 1})
    result = cf.run(cf.Recipe.model_validate(raw), output="memory://out/corpus", report=False)
    assert result.path == "memory://out/corpus"
    ds = datasets.load_from_disk("memory://out/corpus")
    assert len(ds) == result.manifest["rows"] == 80
    assert sorted(ds["text"]) == sorted(paragraphs[:80])
    assert len(result.load()) == 80

    fs.pipe("/in/docs.jsonl", _jsonl([{"id": str(i), "text": t} for i, t in enumerate(paragraphs[:81])]))
    with pytest.raises(cf.OutputError, match="docs.jsonl changed"):
        cf.run(cf.Recipe.model_validate(raw), output="memory://out/corpus", report=False)
    assert len(datasets.load_from_disk("memory://out/corpus")) == 80  # the refused run changed nothing there


def test_url_output_on_slurm_needs_a_shared_staging_folder(tmp_path):
    import corpusforge as cf

    raw = _recipe(tmp_path, "builtin:multilingual-sample.jsonl")
    raw["executor"] = {"type": "slurm", "partition": "debug"}
    with pytest.raises(cf.RecipeError, match="output.staging"):
        cf.runner.plan.with_output(cf.Recipe.model_validate(raw), "s3://bucket/x")
    raw["output"]["staging"] = str(tmp_path / "shared")
    _, out = cf.runner.plan.with_output(cf.Recipe.model_validate(raw), "s3://bucket/x")
    assert out == tmp_path / "shared"


def test_an_upload_never_replaces_a_build_another_machine_put_there_meanwhile(tmp_path, monkeypatch, paragraphs):
    """Two machines, one URL: each builds in its own staging folder, so neither's lock sees the other. The upload
    looks again: a build put there after this one started is refused (nothing there changes) until --overwrite."""
    import importlib

    import corpusforge as cf

    # the module: the attribute `corpusforge.runner.run` is the function
    build_run = importlib.import_module("corpusforge.runner.run")
    fs = fsspec.filesystem("memory")
    fs.pipe("/race/a.jsonl", _jsonl([{"id": f"a{i}", "text": t} for i, t in enumerate(paragraphs[:40])]))
    fs.pipe("/race/b.jsonl", _jsonl([{"id": f"b{i}", "text": t} for i, t in enumerate(paragraphs[40:70])]))
    url = "memory://race/corpus"

    def recipe(name: str) -> cf.Recipe:
        raw = _recipe(tmp_path, f"memory://race/{name}.jsonl", dedup=False, name=name)
        raw["output"] = {"path": url, "staging": str(tmp_path / f"staging-{name}")}
        return cf.Recipe.model_validate(raw)

    def ids_there() -> set[str]:
        # the shards the manifest there lists, read from the store (datasets.load_from_disk of one URL twice in one
        # process reads its first download again: huggingface/datasets#5114)
        manifest = json.loads(fs.cat(f"{url}/manifest.json"))
        return {
            i
            for s in manifest["shards"]
            for i in pa.ipc.open_stream(fs.cat(f"{url}/{s['file']}")).read_all()["id"].to_pylist()
        }

    real_stage, raced = build_run.run_stage, []

    def stage_then_the_other_machine_finishes(plan, stage, verbose=False):
        real_stage(plan, stage, verbose)
        if plan.recipe.name == "b" and not raced:
            raced.append(cf.run(recipe("a"), report=False))  # started after b, finished before it

    monkeypatch.setattr(build_run, "run_stage", stage_then_the_other_machine_finishes)
    with pytest.raises(cf.OutputError, match="while this build ran, another build was uploaded there \\('a'"):
        cf.run(recipe("b"), report=False)
    assert ids_there() == {f"a{i}" for i in range(40)}  # a's corpus, whole
    assert json.loads(fs.cat(f"{url}/manifest.json"))["recipe"]["name"] == "a"

    # b is finished in its staging folder: a rerun without --overwrite is refused before any work, with it b replaces a
    with pytest.raises(cf.OutputError, match="holds another build"):
        cf.run(recipe("b"), report=False)
    replaced = cf.run(recipe("b"), overwrite=True, report=False)
    assert replaced.manifest["recipe"]["name"] == "b"
    assert ids_there() == {f"b{i}" for i in range(30)}

    # this build's own upload is not "another build": finalizing it again uploads again
    from corpusforge.runner import finalize_build

    finalize_build(tmp_path / "staging-b", report=False)
    assert ids_there() == {f"b{i}" for i in range(30)}
    assert len(datasets.load_from_disk(url)) == 30


def test_a_long_lived_process_sees_what_changed_in_the_store(s3, monkeypatch):
    """fsspec caches listings per filesystem instance: a notebook that builds, sees the inputs change on another
    machine and builds again must list and fingerprint them afresh."""
    from corpusforge import storage

    other, env = s3  # another machine's client
    # in this process: fsspec read its FSSPEC_* variables when it was imported
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": env["FSSPEC_S3_ENDPOINT_URL"]})
    other.pipe("corpora/live/a.jsonl", b'{"text": "one"}\n')
    assert storage.glob_url("s3://corpora/live/*.jsonl") == ["s3://corpora/live/a.jsonl"]
    before = storage.file_info("s3://corpora/live/a.jsonl")

    other.pipe("corpora/live/a.jsonl", b'{"text": "one, changed"}\n')
    other.pipe("corpora/live/b.jsonl", b'{"text": "two"}\n')
    assert storage.glob_url("s3://corpora/live/*.jsonl") == ["s3://corpora/live/a.jsonl", "s3://corpora/live/b.jsonl"]
    after = storage.file_info("s3://corpora/live/a.jsonl")
    assert after["bytes"] == len(b'{"text": "one, changed"}\n') and after["version"] != before["version"]


def test_an_unreachable_store_is_not_called_a_missing_bucket(monkeypatch):
    from corpusforge.errors import OutputError
    from corpusforge.runner.remote import check_remote

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setitem(
        fsspec.config.conf,
        "s3",
        {
            "endpoint_url": "http://127.0.0.1:9",
            "skip_instance_cache": True,
            "config_kwargs": {"retries": {"max_attempts": 1}},
        },
    )
    with pytest.raises(OutputError, match="cannot list it \\(EndpointConnectionError") as err:
        check_remote("s3://corpora/zh")
    assert "does not exist" not in str(err.value)


class _Killed(BaseException):
    """The upload's process dies between two store operations."""


class _KillAt:
    """The store, with the process killed just before its ``at``-th write or removal (0: never), counted over
    every handle of one ``count``."""

    def __init__(self, fs, at: int, count: dict):
        self.fs, self.at, self.count = fs, at, count

    def _tick(self) -> None:
        self.count["calls"] += 1
        if self.count["calls"] == self.at:
            raise _Killed

    def put_file(self, *args, **kwargs):
        self._tick()
        return self.fs.put_file(*args, **kwargs)

    def rm_file(self, *args, **kwargs):
        self._tick()
        return self.fs.rm_file(*args, **kwargs)

    def open(self, path, mode="rb", **kwargs):
        if "w" in mode:
            self._tick()
        return self.fs.open(path, mode, **kwargs)

    def __getattr__(self, name):
        return getattr(self.fs, name)


@pytest.mark.slow  # 12–17 s: in test-slow (CI); tests/runner/test_run.py kills and resumes a build in the default suite
def test_a_kill_at_any_point_of_an_upload_leaves_one_whole_build_and_a_plain_rerun_finishes_it(
    s3, tmp_path, monkeypatch, paragraphs
):
    """An --overwrite upload killed before each of its store operations in turn: the URL serves the old build
    whole, the new one whole, or nothing — never a mix — and a rerun without --overwrite completes the upload."""
    import corpusforge as cf
    from corpusforge.runner import remote

    fs, env = s3
    url, prefix = "s3://corpora/built/flip", "corpora/built/flip"
    options = {"endpoint_url": env["FSSPEC_S3_ENDPOINT_URL"], "skip_instance_cache": True, "use_listings_cache": False}
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": env["FSSPEC_S3_ENDPOINT_URL"]})  # read at import
    for name, rows in (("old", paragraphs[:100]), ("new", paragraphs[100:220])):
        (tmp_path / f"{name}.jsonl").write_bytes(
            _jsonl([{"id": f"{name}-{i}", "text": t} for i, t in enumerate(rows)])
        )
    ids = {name: {f"{name}-{i}" for i in range(n)} for name, n in (("old", 100), ("new", 120))}

    def build(name: str, overwrite: bool):
        raw = _recipe(tmp_path, str(tmp_path / f"{name}.jsonl"), dedup=False, executor={"tasks": 2}, name=name)
        return cf.run(cf.Recipe.model_validate(raw), output=url, overwrite=overwrite, report=False)

    # datasets downloads a remote dataset to one temporary folder per process and path, and a second download
    # lands inside the first (its state.json stays): give every read a folder of its own
    monkeypatch.setattr(
        datasets.arrow_dataset, "get_temporary_cache_files_directory", lambda: tempfile.mkdtemp(dir=tmp_path)
    )

    def served() -> set[str] | None:
        try:
            return set(datasets.load_from_disk(url, storage_options=options)["id"])
        except Exception:  # noqa: BLE001 - no build there: an error, which is allowed; a mix is not
            return None

    build("old", overwrite=False)
    old_build = {path: fs.cat(path) for path in fs.find(prefix)}
    real_fs = remote._fs
    count = {"calls": 0}

    def killing(at: int):
        count["calls"] = 0

        def _fs(u):
            store, root = real_fs(u)
            return _KillAt(store, at, count), root

        return _fs

    monkeypatch.setattr(remote, "_fs", killing(0))
    build("new", overwrite=True)  # an upload that is not killed: how many operations it makes
    operations = count["calls"]
    assert served() == ids["new"] and operations >= 6
    seen = set()
    for at in range(1, operations + 1):
        fs.rm(prefix, recursive=True)
        for path, data in old_build.items():
            fs.pipe(path, data)
        fs.invalidate_cache()
        monkeypatch.setattr(remote, "_fs", killing(at))
        with pytest.raises(_Killed):
            build("new", overwrite=True)
        now = served()
        assert now in (ids["old"], ids["new"], None), f"killed before operation {at}: a mix of two builds"
        seen.add("old" if now == ids["old"] else "new" if now == ids["new"] else "none")
        monkeypatch.setattr(remote, "_fs", real_fs)
        build("new", overwrite=False)  # a plain rerun finishes the upload
        assert served() == ids["new"]
        assert remote.check_remote(url) is not None  # every object there is named by an upload record
        leftovers = [p for p in fs.find(prefix) if "/data-" in p and p not in old_build]
        assert len(leftovers) == 2  # the new build's two shards; the old build's are gone
    assert seen == {"old", "new"}  # kills before and after the flip were both exercised


def test_a_url_whose_store_was_emptied_is_built_again_without_overwrite(tmp_path, monkeypatch, paragraphs):
    """A memory:// store ends with its process (an S3 prefix may be emptied by hand): the default staging folder in
    the cache still held the old build, and a fresh run to the empty URL was refused as 'holds another build'."""
    import corpusforge as cf

    monkeypatch.setenv("CORPUSFORGE_CACHE", str(tmp_path / "cache"))
    fs = fsspec.filesystem("memory")
    fs.pipe("/in2/docs.jsonl", _jsonl([{"id": str(i), "text": t} for i, t in enumerate(paragraphs[:30])]))
    first = _recipe(tmp_path, "memory://in2/*.jsonl", dedup=False, executor={"tasks": 2, "workers": 1}, name="first")
    cf.run(cf.Recipe.model_validate(first), output="memory://out2/corpus", report=False)
    fs.rm("/out2", recursive=True)  # the store is gone; the staging folder stays
    second = {**first, "name": "second"}
    result = cf.run(cf.Recipe.model_validate(second), output="memory://out2/corpus", report=False)
    assert result.manifest["recipe"]["name"] == "second" and result.manifest["rows"] == 30
