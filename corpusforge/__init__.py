"""corpusforge: declarative data recipes for moving a chat LLM to a new language.

import corpusforge as cf

@cf.filter
def no_code_blocks(doc):
    return "```" not in doc.text or (False, "code_block")

result = cf.run(cf.Recipe.from_yaml("recipes/quickstart.yaml"))
ds = result.load()
"""

from corpusforge.build.run import Result, run
from corpusforge.errors import CorpusforgeError, OutputError, RecipeError, SourceError
from corpusforge.recipe.models import Recipe
from corpusforge.steps.registry import filter, step

__version__ = "0.1.0"
__all__ = [
    "Recipe",
    "Result",
    "run",
    "filter",
    "step",
    "CorpusforgeError",
    "RecipeError",
    "SourceError",
    "OutputError",
    "__version__",
]
