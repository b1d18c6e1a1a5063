"""Ownership is a record: a build folder's ledger names every file the build wrote, ``--overwrite`` removes only
those and refuses a folder holding anything else, wherever it is; and a rebuild is a pointer flip — the folder
serves the previous build whole until the new state.json replaces it."""

from __future__ import annotations

import json

import datasets
import pytest

import corpusforge as cf
from corpusforge.corpus.ledger import Ledger
from corpusforge.errors import BuildFailed
from tests.support import make_recipe, write_jsonl

BOOM = """
import corpusforge as cf
from corpusforge.errors import BuildFailed

@cf.filter
def boom(doc) -> bool:
    if doc.id.endswith("-3"):
        raise RuntimeError("a step fails half-way through the rebuild")
    return True
"""


def _rows(n: int, prefix: str) -> list[dict]:
    return [{"id": f"{prefix}-{i}", "text": f"{prefix} document number {i}, long enough to keep"} for i in range(n)]


def _recipe(tmp_path, name: str, steps: list | None = None, **extra) -> cf.Recipe:
    return cf.Recipe.from_dict(
        make_recipe(
            tmp_path,
            str(tmp_path / "in.jsonl"),
            name=name,
            steps=steps,
            executor={"tasks": 2},
            source={"id_field": "id"},
            **extra,
        )
    )


@pytest.mark.parametrize(
    "users_file",
    ["report/my-analysis.md", "data-final-of-thesis.arrow", ".corpusforge/my-notes.txt", ".corpusforge/logs/x.txt"],
)
def test_overwrite_refuses_a_file_the_build_did_not_write_wherever_it_is(tmp_path, users_file):
    write_jsonl(tmp_path / "in.jsonl", _rows(8, "a"))
    built = cf.run(_recipe(tmp_path, "first"))
    mine = built.path / users_file
    mine.parent.mkdir(exist_ok=True)  # report/ is a user's folder: the build report is one page, report.html
    mine.write_text("the user's own notes")
    before = sorted(p.relative_to(built.path).as_posix() for p in built.path.rglob("*") if p.is_file())
    with pytest.raises(cf.OutputError, match=f"did not write \\({users_file}\\)"):
        cf.run(_recipe(tmp_path, "second"), overwrite=True)
    assert mine.read_text() == "the user's own notes"
    after = sorted(p.relative_to(built.path).as_posix() for p in built.path.rglob("*") if p.is_file())
    assert after == before  # nothing was removed, not even the build's own files
    assert sorted(datasets.load_from_disk(str(built.path))["id"]) == sorted(r["id"] for r in _rows(8, "a"))


def test_a_failed_rebuild_leaves_the_previous_build_whole_and_a_later_overwrite_is_not_refused(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", _rows(8, "a"))
    (tmp_path / "boom.py").write_text(BOOM)
    first = cf.run(_recipe(tmp_path, "first"))
    old_ids = sorted(datasets.load_from_disk(str(first.path))["id"])

    # a rebuild whose task fails after the other task wrote its shard, logs and stats: the folder still serves
    # the previous build, whole
    failing = _recipe(tmp_path, "second", steps=[{"boom": {}}], plugins=[str(tmp_path / "boom.py")])
    with pytest.raises(BuildFailed):
        cf.run(failing, overwrite=True)
    assert sorted(datasets.load_from_disk(str(first.path))["id"]) == old_ids
    assert Ledger(first.path).unrecorded() == []  # every file the failed tasks left is recorded as the build's

    third = cf.run(_recipe(tmp_path, "third", steps=[{"length": {"min_chars": 1}}]), overwrite=True)
    assert sorted(datasets.load_from_disk(str(third.path))["id"]) == old_ids
    plan = json.loads((third.path / ".corpusforge" / "plan.json").read_text())
    shards = sorted(p.name for p in third.path.glob("*.arrow"))
    assert shards == [f"data-0000{r}-of-00002-{plan['build_id']}.arrow" for r in range(2)]  # the old ones are gone
    assert Ledger(third.path).unrecorded() == []


def test_every_build_names_its_shards_apart_and_state_json_is_written_last(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", _rows(6, "a"))
    first = cf.run(_recipe(tmp_path, "first"))
    state = json.loads((first.path / "state.json").read_text())
    old_names = {f["filename"] for f in state["_data_files"]}
    write_jsonl(tmp_path / "in.jsonl", _rows(6, "b"))
    second = cf.run(_recipe(tmp_path, "first"), overwrite=True)
    new_names = {f["filename"] for f in json.loads((second.path / "state.json").read_text())["_data_files"]}
    assert old_names.isdisjoint(new_names)
    manifest = (second.path / "manifest.json").stat().st_mtime_ns
    assert (second.path / "state.json").stat().st_mtime_ns >= manifest


def test_a_folder_built_without_a_ledger_is_refused_not_guessed(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", _rows(4, "a"))
    built = cf.run(_recipe(tmp_path, "first"))
    plan_file = built.path / ".corpusforge" / "plan.json"
    plan = json.loads(plan_file.read_text())
    del plan["ledger"]  # what an older corpusforge wrote: ownership by name patterns
    plan["owned"] = ["data-*-of-*.arrow", "report", ".corpusforge"]
    plan_file.write_text(json.dumps(plan))
    with pytest.raises(cf.OutputError, match="kept no record"):
        cf.run(_recipe(tmp_path, "second"), overwrite=True)
    assert (built.path / "state.json").is_file()


def test_files_are_created_with_the_umask_like_the_shards(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", _rows(4, "a"))
    built = cf.run(_recipe(tmp_path, "first"))
    shard_mode = next(built.path.glob("*.arrow")).stat().st_mode & 0o777
    for name in ("state.json", "dataset_info.json", "manifest.json", ".corpusforge/plan.json", "report.html"):
        assert (built.path / name).stat().st_mode & 0o777 == shard_mode, name


def test_overwrite_leaves_a_users_empty_folders_alone(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", _rows(4, "a"))
    built = cf.run(_recipe(tmp_path, "first"))
    mine = [built.path / "mydir", built.path / "report" / "sub", built.path / ".corpusforge" / "sub"]
    for folder in mine:
        folder.mkdir(parents=True)
    cf.run(_recipe(tmp_path, "second"), overwrite=True)
    assert all(folder.is_dir() for folder in mine)
