"""`quality`: Gopher / C4 / FineWeb quality heuristics that also work for languages written without spaces.

datatrove's GopherQualityFilter counts words with a word tokenizer and assumes spaces and Latin letters: on Chinese
it needs spaCy + jieba, checks under 100 documents per second and drops every ordinary document (a jieba word is
1-2 characters, below the 3-character minimum mean word length; its stop words are English). Here each rule
is measured in a unit that fits the language:

* spaced languages (en, ko, de, …): a unit is a whitespace-separated word, n-grams are word n-grams — as Gopher.
* zh (zh_Hant, zh_Hans, yue, wuu), ja, th: a unit is a letter or digit character (Thai vowel and tone marks are not
  counted, as in `length`), n-grams are character n-grams of the text without whitespace, with larger n than for
  words; letters are those of any script (Han, kana, Hangul, Thai count). Thai often ends a sentence with a space
  rather than a mark: a space next to a Thai letter counts as a sentence boundary, and a long line that ends in a
  letter counts as a finished sentence.

Every rule has its own drop reason (the base class counts `dropped_<reason>`); the first failing rule in the order
of `RULES` is reported. Thresholds come from a preset (`preset: auto` reads `doc.metadata["language"]`, written by
the `language` step) and any of them can be overridden in the recipe; `skip` turns rules off by reason name.

Where things are:

* `presets` — the thresholds of each preset (`DEFAULTS`, `PRESETS`) and the language codes that share one; the
  stop words, boilerplate phrases and sentence-end marks they hold are `corpusforge.lang.lexicon`'s.
* `params` — `QualityParams`, the step's recipe schema (and the docs generated from it).
* `rules` — `RULES` (the rule order) and `Rules`, one preset's thresholds applied to a text; `unwrap`.
* `ngrams` — the repeated n-gram algorithm (`repeated_ngram_chars`) and the word → character encoding it reads.
* `step` — `QualityFilter`, the datatrove filter, registered as the `quality` step.
"""

from corpusforge.steps.quality.ngrams import _word_sequence, repeated_ngram_chars  # noqa: F401  (tests import _word_sequence)
from corpusforge.steps.quality.params import QualityParams
from corpusforge.steps.quality.presets import DEFAULTS, PRESET_ALIASES, PRESET_NAMES, PRESETS
from corpusforge.steps.quality.rules import RULES, WRAP_FILL, WRAP_MAX_WIDTH, WRAP_MIN_WIDTH, Rules, unwrap
from corpusforge.steps.quality.step import QualityFilter

__all__ = [
    "DEFAULTS",
    "PRESETS",
    "PRESET_ALIASES",
    "PRESET_NAMES",
    "RULES",
    "WRAP_FILL",
    "WRAP_MAX_WIDTH",
    "WRAP_MIN_WIDTH",
    "QualityFilter",
    "QualityParams",
    "Rules",
    "repeated_ngram_chars",
    "unwrap",
]
