"""The recipe language: pydantic models (the one schema), the loading step (YAML, overrides, plugins), JSON Schema."""

from corpusforge.recipe.models import Recipe, StepCall
from corpusforge.recipe.schema import json_schema

__all__ = ["Recipe", "StepCall", "json_schema"]
