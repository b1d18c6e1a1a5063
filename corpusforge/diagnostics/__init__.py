"""Transfer diagnostics. Vocabulary: tokenizer fertility per language and vocabulary extension. Language
alignment (``corpusforge eval align``): which language a model answers English and target prompts in, see
``corpusforge.diagnostics.align``.

from corpusforge.diagnostics import iter_docs, measure_fertility, extend_vocabulary
report = measure_fertility("path/to/tokenizer", iter_docs(["out/inscp-zh-tw"]))
ext = extend_vocabulary("path/to/tokenizer", ["out/inscp-zh-tw"], add=8000, output="tok-ext")
"""

from corpusforge.diagnostics.corpus import Doc, iter_docs
from corpusforge.diagnostics.fertility import FertilityReport, LanguageFertility, measure_fertility
from corpusforge.diagnostics.tokenizer import load_tokenizer
from corpusforge.diagnostics.vocab import Extension, extend_vocabulary

__all__ = [
    "Doc",
    "Extension",
    "FertilityReport",
    "LanguageFertility",
    "extend_vocabulary",
    "iter_docs",
    "load_tokenizer",
    "measure_fertility",
]
