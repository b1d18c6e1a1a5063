"""Transfer diagnostics. Vocabulary: tokenizer fertility per language and vocabulary extension. Language
alignment (``corpusforge eval align``): which language a model answers English and target prompts in, see
``corpusforge.diagnostics.align``.

from corpusforge.diagnostics import iter_docs, measure_fertility, extend_tokenizer
report = measure_fertility("path/to/tokenizer", iter_docs(["out/inscp-zh-tw"]))
ext = extend_tokenizer("path/to/tokenizer", ["out/inscp-zh-tw"], add=8000, output="tok-ext")
"""

from corpusforge.diagnostics.corpus import Doc, iter_docs
from corpusforge.diagnostics.fertility import FertilityReport, LanguageFertility, measure_fertility
from corpusforge.diagnostics.tokenizer import tokenizer_view
from corpusforge.diagnostics.vocab import Extension, extend_tokenizer

__all__ = [
    "Doc",
    "Extension",
    "FertilityReport",
    "LanguageFertility",
    "extend_tokenizer",
    "iter_docs",
    "tokenizer_view",
    "measure_fertility",
]
