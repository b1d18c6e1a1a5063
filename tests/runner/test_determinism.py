"""The same recipe on the same inputs gives byte-identical shards whatever the number of workers (the task count
fixed), in whatever folder; finalizing again rewrites the same files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import corpusforge as cf
from corpusforge.runner import finalize_build
from tests.support import make_recipe

STABLE_FILES = ("state.json", "dataset_info.json")


def file_hashes(out: Path) -> dict[str, str]:
    files = [*sorted(out.glob("data-*-of-*.arrow")), *(out / name for name in STABLE_FILES)]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def build(tmp_path: Path, folder: str, workers: int) -> cf.Result:
    recipe = make_recipe(
        tmp_path,
        "builtin:multilingual-sample.jsonl",
        steps=[
            {"normalize": {}},
            {"language": {"label_only": True}},
            {"dedup": {"num_buckets": 2}},
            {"length": {"min_chars": 4}},
        ],
        source={"id_field": "id", "fields": ["id"]},
        executor={"tasks": 3, "workers": workers},
    )
    return cf.run(cf.Recipe.from_dict(recipe), output=tmp_path / folder, report=False)


def test_byte_identical_whatever_the_workers_and_on_refinalize(tmp_path):
    one = build(tmp_path, "one-worker", workers=1)
    three = build(tmp_path, "three-workers", workers=3)
    hashes = file_hashes(one.path)
    assert len(hashes) == 3 + len(STABLE_FILES)
    assert file_hashes(three.path) == hashes
    # a real corpus, deduplicated: the comparison is not between empty shards
    assert one.manifest["rows"] > 1000 and {s["step"]: s for s in one.manifest["steps"]}["dedup"]["dropped"]
    assert {k: v for k, v in three.manifest.items() if k not in ("created_at", "seconds", "recipe")} == {
        k: v for k, v in one.manifest.items() if k not in ("created_at", "seconds", "recipe")
    }

    # finalize is idempotent: same files, same manifest but for its time stamps
    again = finalize_build(one.path, report=False)
    assert file_hashes(one.path) == hashes
    volatile = ("created_at", "seconds")
    assert {k: v for k, v in again.items() if k not in volatile} == {
        k: v for k, v in one.manifest.items() if k not in volatile
    }
    assert json.loads((one.path / "manifest.json").read_text())["rows"] == one.manifest["rows"]
