"""Publishing: the dry-run folder round-trips; the upload makes one commit against a local fake Hub; no token leaks."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

import corpusforge as cf
from corpusforge.corpus.finished import CorpusError
from corpusforge.publish import PublishError, check_repo_id, publish
from tests.support import REPO

TOKEN = "hf_corpusforgeTESTtoken0123456789"


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "qs"
    recipe = cf.Recipe.from_yaml(REPO / "recipes" / "quickstart.yaml", [f"output.path={out}"])
    return cf.run(recipe)


def test_dry_run_round_trips(build, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard, DatasetCardData

    folder = tmp_path / "dry"
    publish(build.path, "corpusforge-test/quickstart", dry_run=folder, license="bsd-3-clause")
    original, published = (
        build.load(),
        datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "cache")),
    )
    assert published.to_list() == original.to_list()
    assert published.features == original.features
    card = DatasetCard((folder / "README.md").read_text(encoding="utf-8"))
    assert isinstance(card.data, DatasetCardData)
    meta = card.data.to_dict()
    assert meta["language"] == ["th", "zh"] and meta["language_details"] == "zh-Hant, th"
    assert meta["license"] == "bsd-3-clause" and meta["size_categories"] == ["n<1K"]
    assert meta["configs"][0]["data_files"][0]["path"] == "data/train-*.parquet"
    assert meta == {  # every field of the card's metadata, and nothing else
        "language": ["th", "zh"],
        "license": "bsd-3-clause",
        "multilinguality": ["multilingual"],
        "size_categories": ["n<1K"],
        "task_categories": ["text-generation"],
        "pretty_name": "quickstart",
        "language_details": "zh-Hant, th",
        "tags": ["corpusforge", "continual-pretraining", "inscp"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}],
    }
    assert "| language | 2,251 | 475 |" in card.text  # the funnel from the manifest
    assert 'load_dataset("corpusforge-test/quickstart"' in card.text
    assert "add_special_tokens=False" in card.text


def test_upload_makes_one_commit_and_leaks_no_token(build, tmp_path, monkeypatch):
    from tests.support.fake_hub import FakeHub

    hub = FakeHub()
    code = (
        "import corpusforge as cf, sys; r = cf.Result(__import__('pathlib').Path(sys.argv[1]), {}); "
        "print(r.push_to_hub('corpusforge-test/quickstart', revision=None))"
    )
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": TOKEN,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    res = subprocess.run(
        [sys.executable, "-c", code, str(build.path)], env=env, capture_output=True, text=True, timeout=120
    )
    hub.close()
    assert res.returncode == 0, res.stderr
    commits = hub.commits()
    assert len(commits) == 1
    files = {op["value"]["path"]: op["value"] for op in commits[0] if op["key"] == "file"}
    assert sorted(files) == ["README.md", "corpusforge_manifest.json", "data/train-00000-of-00001.parquet"]
    parquet = pa.BufferReader(base64.b64decode(files["data/train-00000-of-00001.parquet"]["content"]))
    import pyarrow.parquet as pq

    assert pq.read_table(parquet).num_rows == build.manifest["rows"]
    assert all(c["headers"].get("authorization") == f"Bearer {TOKEN}" for c in hub.calls if c["method"] == "POST")
    # the token reached the server only in the Authorization header: not in any file, log or output
    for op in commits[0]:
        if op["key"] == "file":
            assert TOKEN.encode() not in base64.b64decode(op["value"]["content"])
    assert TOKEN not in res.stdout + res.stderr
    for path in build.path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_clear_errors(build, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-home"))
    with pytest.raises(PublishError, match="no Hugging Face token: set HF_TOKEN"):
        publish(build.path, "org/name")
    for bad in ("no-namespace", "org/na me", "org//x", "/name", "org/name/extra"):
        with pytest.raises(PublishError, match="is not a Hub repo id"):
            check_repo_id(bad)
    (tmp_path / "half").mkdir()
    with pytest.raises(CorpusError, match="not a corpusforge output: manifest.json is missing"):
        publish(tmp_path / "half", "org/name", dry_run=tmp_path / "d")


def test_kd_shaped_build_publishes_with_messages(tmp_path):
    import datasets

    out = tmp_path / "kd"
    rows = [
        {
            "id": "p1/0",
            "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
            "kind": "recovery",
            "source_id": "p1",
            "model": "m",
            "params_hash": "h",
            "finish_reason": "stop",
            "n_tokens": 5,
        }
    ]
    datasets.Dataset.from_list(rows).save_to_disk(str(out))
    shard = sorted(out.glob("*.arrow"))[0].name
    manifest = {  # the shape finalize writes (a real KD build's card: tests/kd/test_trust_kd.py)
        "recipe": {
            "name": "kd-test",
            "steps": [],
            "generate": {
                "model": "my/model",
                "backend": {"type": "vllm"},
                "tasks": [{"kind": "recovery", "language": "en"}],
                "sampling": {"temperature": 0.7, "top_p": 0.9, "max_tokens": 512, "n": 1, "seed": 0},
            },
        },
        "rows": 1,
        "shards": [{"file": shard, "rows": 1}],
        "steps": [],
        "languages": {"output": {"en": 1}},
        "versions": {},
        "kd": {"kinds": {"recovery": 1}, "finish_reasons": {"stop": 1}},
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    folder = tmp_path / "dry"
    publish(out, "org/kd", dry_run=folder)
    ds = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds[0]["messages"] == rows[0]["messages"]
    text = (folder / "README.md").read_text()
    assert "Self-generated by `my/model` (`vllm` backend), tasks: `recovery`" in text and '"temperature": 0.7' in text


def test_cli_publish_with_token_commit_message_and_pull_request(build, tmp_path):
    from tests.support.fake_hub import FakeHub

    hub = FakeHub()
    env = {
        **{k: v for k, v in os.environ.items() if k != "HF_TOKEN"},
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    args = ["publish", str(build.path), "--repo-id", "corpusforge-test/quickstart", "--token", TOKEN]
    args += ["--commit-message", "zh-TW CP v2", "--create-pr"]
    res = subprocess.run(
        [sys.executable, "-m", "corpusforge.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )
    hub.close()
    assert res.returncode == 0, res.stderr
    commit = next(c for c in hub.calls if "/commit/" in c["path"])
    assert hub.pr_title == "zh-TW CP v2" and "/commit/refs%2Fpr%2F1" in commit["path"]  # a pull request, its ref
    assert "discussions/1" in res.stdout  # its URL is what the command prints
    header = next(op for op in hub.commits()[0] if op["key"] == "header")
    assert header["value"]["summary"] == "zh-TW CP v2"
    assert commit["headers"].get("authorization") == f"Bearer {TOKEN}"
    assert TOKEN not in res.stdout + res.stderr


def test_cli_dry_run_is_a_flag(build, tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "corpusforge.cli", "publish", "--dry-run", str(build.path), "--repo-id", "org/name"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    folder = Path(res.stdout.split("wrote and loaded back ")[1].split(" (nothing uploaded)")[0])
    assert (folder / "README.md").is_file() and list(folder.glob("data/*.parquet"))
    given = tmp_path / "here"
    res = subprocess.run(
        [sys.executable, "-m", "corpusforge.cli", "publish", str(build.path), "--repo-id", "org/name"]
        + ["--dry-run-dir", str(given)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0 and (given / "README.md").is_file()
