"""Bad input: each problem gets a clear message (file and line, or key path); the run either completes with the
bad rows counted by reason, or stops before writing anything."""

from __future__ import annotations

import json
import logging
import time

import pytest

import corpusforge as cf
from tests.support import alias_bomb, make_recipe, write_jsonl


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


# ------------------------------------------------------------------------------------------------ bounded input
def _load_recipe(path):
    return cf.Recipe.from_yaml(path)


def _load_train_config(path):
    from corpusforge_trainer.config import load_config

    return load_config(path)


def _load_eval_config(path):
    from corpusforge.eval.scorecard.config import load_scorecard_config

    return load_scorecard_config(path)


@pytest.mark.parametrize("load", [_load_recipe, _load_train_config, _load_eval_config])
def test_yaml_alias_bomb_is_refused_at_once(tmp_path, load):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    started = time.monotonic()
    with pytest.raises(cf.RecipeError, match=r"bomb\.yaml:\d+: refused: more than 100,000 nodes .*alias"):
        load(path)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("name: &a [x, *a]\n", r"r\.yaml:1: an alias inside the node it refers to"),
        ("name: " + "[" * 5000 + "]" * 5000 + "\n", r"r\.yaml:1: refused: nested more than 100 levels deep"),
    ],
    ids=["recursive-alias", "deep-nesting"],
)
def test_recursive_alias_and_deep_nesting_are_refused(tmp_path, text, reason):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(cf.RecipeError, match=reason):
        cf.Recipe.from_yaml(path)


def test_a_key_given_twice_is_refused_not_silently_dropped(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: x\nsources: [{glob: 'builtin:multilingual-sample.jsonl'}]\nname: y\noutput: {path: o}\n")
    with pytest.raises(cf.RecipeError, match=r"r\.yaml:3: the key 'name' is given twice \(first on line 1\)"):
        cf.Recipe.from_yaml(path)
    path.write_text("name: x\nsources: [{glob: a, glob: b}]\noutput: {path: o}\n")  # in a nested mapping too
    with pytest.raises(cf.RecipeError, match="the key 'glob' is given twice"):
        cf.Recipe.from_yaml(path)


def test_an_alias_repeated_in_the_recipe_still_loads_with_lines(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"text": "a"}])
    path = tmp_path / "r.yaml"
    path.write_text(
        f"name: t\nsources:\n  - glob: {tmp_path / 'in.jsonl'}\nsteps:\n  - length: &len {{min_chars: 1}}\n"
        "  - length: *len\n  - length: *len\n  - language: {keep: [zh-tw]}\noutput: {path: out}\n"
    )
    with pytest.raises(cf.RecipeError, match=r"r\.yaml:8: steps\[3\]\.language\.keep"):
        cf.Recipe.from_yaml(path)


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ("=x", r"--set =x: no key before '='"),
        (".=x", r"--set \.=x: no key before '='"),
        ("k=[1, 2", r"--set k=\[1, 2: the value: not valid YAML"),
        (
            'k=!!python/object/apply:os.system ["touch pwned"]',
            r"--set k=!!python/object/apply:os\.system .*: the value: the tag '!!python/object/apply:os\.system' is "
            "not allowed",
        ),
    ],
)
def test_bad_set_override_is_a_recipe_error_naming_it(tmp_path, monkeypatch, override, reason):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(cf.RecipeError, match=reason):
        cf.Recipe.from_dict(make_recipe(tmp_path, "x"), overrides=[override])
    assert not (tmp_path / "pwned").exists()


def test_plugin_that_exits_at_import_is_a_recipe_error(tmp_path, monkeypatch):
    (tmp_path / "cf_quits.py").write_text("import sys\n\nsys.exit(0)\n\ndef f(doc):\n    return True\n")
    with pytest.raises(cf.RecipeError, match=r"plugins.*cf_quits\.py' failed to import: .*called sys\.exit\(0\)"):
        cf.Recipe.from_dict(make_recipe(tmp_path, "x", plugins=[str(tmp_path / "cf_quits.py")]))
    monkeypatch.syspath_prepend(str(tmp_path))  # the same module as a `module:function` step
    with pytest.raises(cf.RecipeError, match=r"steps\[0\]: step 'cf_quits:f': cannot import .*called sys\.exit\(0\)"):
        cf.Recipe.from_dict(make_recipe(tmp_path, "x", steps=[{"cf_quits:f": {}}]))
    with pytest.raises(cf.RecipeError, match=r"plugin module 'cf_quits' called sys\.exit\(0\)"):  # by module name
        cf.Recipe.from_dict(make_recipe(tmp_path, "x", plugins=["cf_quits"]))
