"""Did the transfer work, and what will it cost: `eval.scorecard` (``corpusforge eval scorecard``: in which language
each model answers English and target prompts, what it kept, one verdict against the reference) and `eval.vocab`
(tokenizer fertility per language, vocabulary extension). `eval.documents` reads the texts both take.

from corpusforge.eval import iter_docs, measure_fertility, extend_tokenizer
report = measure_fertility("path/to/tokenizer", iter_docs(["out/inscp-zh-tw"]))
ext = extend_tokenizer("path/to/tokenizer", ["out/inscp-zh-tw"], add=8000, output="tok-ext")
"""

from corpusforge.eval.documents import Doc, iter_docs
from corpusforge.eval.vocab.extend import Extension, extend_tokenizer
from corpusforge.eval.vocab.fertility import FertilityReport, LanguageFertility, measure_fertility
from corpusforge.eval.vocab.tokenizer import tokenizer_view

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
