"""Every key the recipe language knows, for "did you mean" hints on unknown keys."""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel


def _walk(model: type[BaseModel], seen: set) -> set[str]:
    if model in seen:
        return set()
    seen.add(model)
    keys = set(model.model_fields)
    for field in model.model_fields.values():
        for arg in _types(field.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                keys |= _walk(arg, seen)
    return keys


def _types(annotation) -> list:
    args = getattr(annotation, "__args__", None) or ()
    out = [annotation]
    for arg in args:
        out += _types(arg)
    meta = getattr(annotation, "__metadata__", None)
    if meta:
        out += _types(annotation.__origin__)
    return out


@cache
def known_keys() -> frozenset[str]:
    from corpusforge.recipe.models import FilesSource, HFDataset, HFSource, LocalExecutor, OutputConfig, Recipe
    from corpusforge.steps.registry import builtin_specs

    seen: set = set()
    keys = set()
    for model in (Recipe, FilesSource, HFSource, HFDataset, OutputConfig, LocalExecutor):
        keys |= _walk(model, seen)
    for spec in builtin_specs().values():
        keys |= _walk(spec.params_model, seen)
    return frozenset(keys)
