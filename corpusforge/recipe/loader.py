"""A recipe file or mapping → the data the `Recipe` model validates: the YAML read with its line map, the `--set`
overrides applied, and the recipe's `plugins` imported so the steps they register are in the registry before the
steps are resolved. Importing a plugin runs its code: it happens here, when a recipe is loaded (`Recipe.from_yaml`,
`Recipe.from_dict`, `corpusforge validate`), never as a side effect of validating the model.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from corpusforge.config.overrides import apply_overrides
from corpusforge.config.problems import Problem
from corpusforge.config.yaml import read_yaml
from corpusforge.errors import RecipeError
from corpusforge.steps.registry import import_plugin_file


def read_recipe(path: str | Path) -> tuple[Any, dict[tuple, int]]:
    """A recipe file's data and its key path → line map; a missing file or bad YAML is a ``RecipeError`` naming the
    file and line."""
    return read_yaml(path, what="recipe file")


def prepare(data: Any, overrides: list[str] | None = None, source: str | None = None) -> tuple[dict, list[Problem]]:
    """``data`` with ``overrides`` applied and its plugins imported, and the problem of a plugin that failed to
    import (the recipe's other problems are reported with it)."""
    if not isinstance(data, dict):
        raise RecipeError(
            [((), f"a recipe is a mapping of keys (name, sources, steps, output), got {type(data).__name__}")], source
        )
    if overrides:
        data = apply_overrides(data, overrides)
    return data, import_plugins(data.get("plugins"))


def import_plugins(plugins: Any) -> list[Problem]:
    """Import the recipe's ``plugins`` in order, up to the first that fails (its problem is returned). A value that
    is not a list of strings is left to the model to refuse."""
    if not isinstance(plugins, list) or not all(isinstance(spec, str) for spec in plugins):
        return []
    for spec in plugins:
        try:
            import_plugin(spec)
        except ValueError as err:
            return [(("plugins",), str(err))]
    return []


def import_plugin(spec: str, base_dir: Path | None = None) -> None:
    """Import a plugin module by dotted name or by path to a ``.py`` file, so its decorated steps register."""
    if spec.endswith(".py"):
        path = Path(spec)
        if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
            path = base_dir / path
        if not path.exists():
            raise ValueError(f"plugin file '{spec}' does not exist (cwd={Path.cwd()})")
        try:
            import_plugin_file(path)
        except Exception as err:
            raise ValueError(f"plugin file '{spec}' failed to import: {type(err).__name__}: {err}") from None
    else:
        try:
            importlib.import_module(spec)
        except SystemExit as err:  # sys.exit() at import must fail the recipe, not end the run as if it were done
            raise ValueError(f"plugin module '{spec}' called sys.exit({err.code!r}) while being imported") from None
        except Exception as err:  # a missing module, a missing dependency of it, an error in its code
            raise ValueError(f"cannot import plugin module '{spec}': {type(err).__name__}: {err}") from None
