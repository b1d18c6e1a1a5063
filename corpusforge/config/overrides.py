"""`--set key.path=value` overrides, applied to a config's data before it is validated (recipes, training and eval
configs). The value is YAML (``tasks=4`` is an int, ``keep=[th]`` a list), read within the same budget as a file."""

from __future__ import annotations

import re
from typing import Any

import yaml

from corpusforge.config.yaml import load_yaml, yaml_problem
from corpusforge.errors import RecipeError

_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_key_path(path: str) -> list[str | int]:
    """``steps[1].language.min_score`` or ``steps.1.language.min_score`` → ``["steps", 1, "language", "min_score"]``."""
    parts: list[str | int] = []
    for name, index in _PATH_PART.findall(path):
        if index:
            parts.append(int(index))
        else:
            parts.append(int(name) if name.isdigit() else name)
    if not parts:
        raise ValueError(f"empty key path in override '{path}'")
    return parts


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``data`` with each ``a.b=c`` override applied (in place); a malformed one is a ``RecipeError`` naming it."""
    for override in overrides:
        where = (f"--set {override}",)
        if "=" not in override:
            raise RecipeError([(where, "an override looks like `key.path=value`")])
        path, _, raw_value = override.partition("=")
        try:
            parts = parse_key_path(path.strip())
        except ValueError:
            raise RecipeError([(where, "no key before '=': an override looks like `key.path=value`")]) from None
        try:
            value = load_yaml(raw_value, lines=False)[0] if raw_value.strip() else ""
        except yaml.YAMLError as err:
            raise RecipeError([(where, f"the value: {yaml_problem(err)}")]) from None
        target: Any = data
        for i, part in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            if isinstance(part, int):
                if not isinstance(target, list) or part >= len(target):
                    raise RecipeError([(tuple(parts[: i + 1]), f"--set {override}: no list item {part} here")])
                target = target[part]
            else:
                if not isinstance(target, dict):
                    raise RecipeError([(tuple(parts[: i + 1]), f"--set {override}: not a mapping here")])
                target = target.setdefault(part, [] if isinstance(nxt, int) else {})
        last = parts[-1]
        if isinstance(last, int):
            if not isinstance(target, list) or last > len(target):
                raise RecipeError([(tuple(parts), f"--set {override}: no list item {last} here")])
            if last == len(target):
                target.append(value)
            else:
                target[last] = value
        else:
            if not isinstance(target, dict):
                raise RecipeError([(tuple(parts), f"--set {override}: not a mapping here")])
            target[last] = value
    return data
