"""corpusforge: declarative data recipes for moving a chat LLM to a new language.

import corpusforge as cf

@cf.filter
def no_code_blocks(doc):
    return "```" not in doc.text or (False, "code_block")

result = cf.run(cf.Recipe.from_yaml("recipes/quickstart.yaml"))
ds = result.load()
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Loaded on first use, so that `import corpusforge` (and `corpusforge --version`, `--help`) does not import
# datatrove, pyarrow and the build machinery it never touches.
_LAZY = {
    "Recipe": "corpusforge.recipe.models",
    "Result": "corpusforge.runner.run",
    "run": "corpusforge.runner.run",
    "filter": "corpusforge.steps.registry",
    "step": "corpusforge.steps.registry",
    "CorpusforgeError": "corpusforge.errors",
    "RecipeError": "corpusforge.errors",
    "SourceError": "corpusforge.errors",
    "OutputError": "corpusforge.errors",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    try:  # a subpackage (`cf.runner.plan`), as after an eager import
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module 'corpusforge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
