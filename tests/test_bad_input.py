"""Bad input: each problem gets a clear message (file and line, or key path); the run either completes with the
bad rows counted by reason, or stops before writing anything."""

from __future__ import annotations

import json
import logging

import pytest

import corpusforge as cf
from conftest import make_recipe, write_jsonl


def steps_by_name(manifest):
    return {s["step"]: s for s in manifest["steps"]}


def test_bad_rows_are_counted_by_reason_and_logged_with_file_and_line(tmp_path, caplog):
    path = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"text": "好的文件"}, ensure_ascii=False).encode(),
        b'{"text": "unterminated',  # 2: malformed JSON
        b'{"text": "caf\xe9"}',  # 3: invalid UTF-8 (latin-1 byte)
        json.dumps({"text": ""}).encode(),  # 4: empty text
        json.dumps({"body": "no text field"}).encode(),  # 5: missing text field
        json.dumps({"text": "nul\u0000inside"}).encode(),  # 6: NUL character: kept, cleaned by normalize
        b'{"text": "\\ud800 lone surrogate"}',  # 7: unpaired surrogate: not valid JSON text
        b"[1, 2, 3]",  # 8: not an object
        json.dumps({"text": "   "}).encode(),  # 9: whitespace only
        json.dumps({"text": 42}).encode(),  # 10: not a string
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    recipe = make_recipe(tmp_path, str(path), steps=[{"normalize": {}}])
    with caplog.at_level(logging.WARNING, logger="corpusforge"):
        result = cf.run(cf.Recipe.from_dict(recipe))
    read = steps_by_name(result.manifest)["read:src"]
    assert read["dropped"] == {
        "empty_text": 2,
        "invalid_utf8": 1,
        "malformed_json": 3,
        "missing_text_field": 1,
        "text_not_string": 1,
    }
    assert read["out"] == 2 and read["in"] == 10
    assert sorted(result.load()["text"]) == ["nulinside", "好的文件"]
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert f"{path}:2: malformed JSON" in messages
    assert f"{path}:3: invalid UTF-8 at byte" in messages
    assert f"{path}:5: no field 'text'" in messages
    assert f"{path}:7: malformed JSON: no low surrogate" in messages


def test_missing_text_field_stops_before_writing(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"body": "x"}])
    recipe = make_recipe(tmp_path, str(tmp_path / "in.jsonl"))
    with pytest.raises(
        cf.RecipeError, match=r"sources\[0\]\.text_field: .*in\.jsonl: no field 'text' in the first record"
    ):
        cf.run(cf.Recipe.from_dict(recipe))
    assert not (tmp_path / "out").exists()


def test_nonexistent_glob_stops_before_writing(tmp_path):
    recipe = make_recipe(tmp_path, str(tmp_path / "nope" / "*.jsonl"))
    with pytest.raises(cf.RecipeError, match=r"sources\[0\]\.glob: no file matches '.*nope/\*\.jsonl' \(cwd="):
        cf.run(cf.Recipe.from_dict(recipe))
    assert not (tmp_path / "out").exists()


def test_multi_megabyte_single_document(tmp_path):
    big = "這是一個很長的文件。" * 400_000  # 4M characters, ~12 MB of UTF-8
    write_jsonl(tmp_path / "in.jsonl", [{"text": big}, {"text": "短文件"}])
    recipe = make_recipe(tmp_path, str(tmp_path / "in.jsonl"), steps=[{"language": {"keep": ["zh_Hant", "zh"]}}])
    ds = cf.run(cf.Recipe.from_dict(recipe)).load()
    assert sorted(len(t) for t in ds["text"]) == [3, len(big)]
    assert set(ds["language"]) <= {"zh_Hant", "zh"}


def test_recipe_typos_name_the_key_path_and_line(tmp_path):
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(
        "name: t\n"
        "sources:\n"
        "  - glob: '*.jsonl'\n"
        "    text_feild: body\n"
        "steps:\n"
        "  - normalize: {}\n"
        "  - langauge: {keep: [th]}\n"
        "  - language: {keep: [zh-tw], min_scor: 0.5}\n"
        "output: {path: out}\n"
    )
    with pytest.raises(cf.RecipeError) as err:
        cf.Recipe.from_yaml(recipe_file)
    text = str(err.value)
    assert f"{recipe_file}:7: steps[1]: unknown step 'langauge' — did you mean 'language'?" in text
    assert "steps[2].language.keep" in text and "unknown language 'zh-tw' — did you mean 'zh_Hant'?" in text


def test_unknown_keys_are_rejected_with_line(tmp_path):
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text("name: t\nsources:\n  - glob: '*.jsonl'\n    text_feild: body\noutput: {path: out}\n")
    with pytest.raises(
        cf.RecipeError,
        match=r"r\.yaml:4: sources\[0\]\.text_feild: unknown key 'text_feild' — did you mean 'text_field'\?",
    ):
        cf.Recipe.from_yaml(recipe_file)


def test_invalid_yaml_names_the_line(tmp_path):
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text("name: t\nsources: [\n  - glob\noutput: {path: out}\n")
    with pytest.raises(cf.RecipeError, match=r"r\.yaml:\d+: not valid YAML"):
        cf.Recipe.from_yaml(recipe_file)


def test_existing_output_of_another_recipe_is_kept(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"text": "a"}, {"text": "b"}])
    first = make_recipe(tmp_path, str(tmp_path / "in.jsonl"))
    cf.run(cf.Recipe.from_dict(first))
    before = (tmp_path / "out" / "manifest.json").read_bytes()
    second = make_recipe(tmp_path, str(tmp_path / "in.jsonl"), steps=[{"length": {"min_chars": 5}}])
    with pytest.raises(cf.OutputError, match="another recipe.*--overwrite"):
        cf.run(cf.Recipe.from_dict(second))
    assert (tmp_path / "out" / "manifest.json").read_bytes() == before
    assert cf.run(cf.Recipe.from_dict(second), overwrite=True).manifest["rows"] == 0


def test_foreign_output_folder_is_not_clobbered(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"text": "a"}])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    with pytest.raises(cf.OutputError, match="files corpusforge did not write"):
        cf.run(cf.Recipe.from_dict(make_recipe(tmp_path, str(tmp_path / "in.jsonl"))))
    assert (tmp_path / "out" / "precious.txt").read_text() == "keep me"
