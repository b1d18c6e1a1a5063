"""The recipe language: pydantic models (the one schema), YAML loading with line numbers, overrides, JSON Schema."""

from corpusforge.recipe.loader import apply_overrides, load_recipe, recipe_from_dict
from corpusforge.recipe.models import Recipe, StepCall
from corpusforge.recipe.schema import json_schema

__all__ = ["Recipe", "StepCall", "load_recipe", "recipe_from_dict", "apply_overrides", "json_schema"]
