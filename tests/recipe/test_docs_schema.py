"""The one schema: docs/recipes.md is generated from the models; recipes validate against the JSON Schema."""

from __future__ import annotations

import json

import pytest
import yaml

from corpusforge.recipe import json_schema
from corpusforge.recipe.docs import render
from tests.support import REPO


def test_recipe_docs_are_current():
    assert (REPO / "docs" / "recipes.md").read_text(encoding="utf-8") == render(), (
        "docs/recipes.md is stale: run `python -m corpusforge.recipe.docs > docs/recipes.md`"
    )


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_recipes_validate_against_json_schema(path):
    import jsonschema

    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), json_schema())


def test_json_schema_rejects_what_the_models_reject():
    import jsonschema

    bad = {"name": "x", "sources": [{"glob": "a"}], "output": {"path": "o"}, "steps": [{"language": {"kep": ["th"]}}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, json_schema())
    json.dumps(json_schema())  # serializable as printed by `corpusforge schema`
