"""pydantic's validation errors as ``(key path, message)`` problems a user can act on: the key path as the YAML has
it, a readable message that says what was received, and for an unknown key the closest known one (did you mean).
``lines_for`` finds each problem's YAML line (the map from ``config.yaml.load_yaml``)."""

from __future__ import annotations

from collections.abc import Callable, Collection

from pydantic import BaseModel, ValidationError

from corpusforge.errors import did_you_mean

Problem = tuple[tuple, str]  # (key path, message), as RecipeError holds them


def pydantic_problems(
    err: ValidationError, known_keys: Callable[[], Collection[str]], prefix: tuple = ()
) -> list[Problem]:
    """``err``'s errors as problems under ``prefix``; ``known_keys()`` (asked only for an unknown key) is what
    "did you mean" chooses from. Discriminator tags (``<hf>``) and validator names (``function-after[…]``) are left
    out of the key path."""
    problems = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith(("<", "function-"))))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            key = str(loc[-1])
            msg = f"unknown key '{key}'{did_you_mean(key, known_keys())}"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif "input" in e and e["type"] not in ("value_error", "assertion_error"):
            msg = f"{msg}, got {e['input']!r}"
        problems.append((prefix + loc, msg))
    return problems


def lines_for(problems: list[Problem], lines: dict[tuple, int]) -> dict[tuple, int]:
    """Each problem's line: that of its key path, or of the nearest enclosing key that exists in the YAML."""
    found = {}
    for loc, _ in problems:
        for n in range(len(loc), -1, -1):
            if loc[:n] in lines:
                found[tuple(loc)] = lines[loc[:n]]
                break
    return found


def model_keys(*models: type[BaseModel]) -> frozenset[str]:
    """Every field name of ``models`` and of the models their fields hold (through lists, unions, ``Annotated``):
    the keys a config written for them may use."""
    seen: set = set()
    keys: set[str] = set()
    for model in models:
        keys |= _walk(model, seen)
    return frozenset(keys)


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
