"""YAML → Recipe with errors that name the key path and the YAML line, and `--set a.b=c` overrides."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from corpusforge.errors import RecipeError
from corpusforge.recipe.models import Recipe, pydantic_problems


def _line_map(node: yaml.Node, loc: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Key path → 1-based line for every mapping key and sequence item under ``node``."""
    out = {} if out is None else out
    out.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[loc + (key,)] = key_node.start_mark.line + 1
            _line_map(value_node, loc + (key,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[loc + (i,)] = item.start_mark.line + 1
            _line_map(item, loc + (i,), out)
    return out


def _lines_for(problems: list[tuple[tuple, str]], lines: dict[tuple, int]) -> dict[tuple, int]:
    """Each problem's line: that of its key path, or of the nearest enclosing key that exists in the YAML."""
    found = {}
    for loc, _ in problems:
        for n in range(len(loc), -1, -1):
            if loc[:n] in lines:
                found[tuple(loc)] = lines[loc[:n]]
                break
    return found


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
    """Apply ``a.b=c`` overrides; values are parsed as YAML (``tasks=4`` is an int, ``keep=[th]`` a list)."""
    for override in overrides:
        if "=" not in override:
            raise RecipeError([((f"--set {override}",), "an override looks like `key.path=value`")])
        path, _, raw_value = override.partition("=")
        parts = parse_key_path(path.strip())
        value = yaml.safe_load(raw_value) if raw_value.strip() else ""
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


def recipe_from_dict(
    data: dict, overrides: list[str] | None = None, source: str | None = None, lines: dict[tuple, int] | None = None
) -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(
            [((), f"a recipe is a mapping of keys (name, sources, steps, output), got {type(data).__name__}")], source
        )
    if overrides:
        data = apply_overrides(data, overrides)
    lines = lines or {}
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        problems = pydantic_problems(err)
    except RecipeError as err:
        problems = err.problems
    raise RecipeError(problems, source, _lines_for(problems, lines))


def read_yaml(path: str | Path, what: str = "recipe file", error: type = RecipeError, loc: tuple = ()) -> tuple:
    """A YAML file's data and its key path → line map (recipes, training and eval configs share this); a missing
    file or bad YAML raises ``error`` naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise error([(loc, f"{what} '{path}' does not exist (cwd={Path.cwd()})")])
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise error([(loc, f"{where}: not valid YAML: {getattr(err, 'problem', err)}")]) from None
    return data, (_line_map(node) if node is not None else {})


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Load and validate a recipe file."""
    data, lines = read_yaml(path)
    return recipe_from_dict(data, overrides, source=str(path), lines=lines)
