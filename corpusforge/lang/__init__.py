"""Language knowledge: every fact about languages, scripts and text that the steps, KD and the diagnostics share.

* `scripts` — the script census (which writing systems a text uses), Chinese split into Traditional / Simplified,
  the scripts written without spaces between words, OpenCC's converters.
* `lid` — language identification: the lid.176 model (bundled, loaded lazily), its top-k labels, and the census
  deciding first (`LanguageIdentifier`).
* `names` — language codes: the labels LID writes, aliases, display names, which labels agree, BCP-47 forms.
* `prose` — which part of a text is natural language: outside fenced code, words of Latin prose, letters.
* `degeneration` — whether an answer loops, echoes its prompt or is empty (being cut off at a token limit is a length,
  not a degeneration).
* `region` — whose vocabulary (Taiwan, Hong Kong, mainland) a Chinese text uses.
* `lexicon` — per-language words and marks: stop words, boilerplate phrases, sentence ends, bullets.
* `fidelity` — how faithfully an answer keeps to its language: per line (LCB's line-level pass), English words in a
  non-Latin answer, the other Chinese script's characters, foreign regional vocabulary, Thai letters; KD's checks
  and the scorecard both measure with it.

It sits low: it imports only the base modules and third-party libraries, never steps, KD, recipe, build or
diagnostics, which import it. Nothing is imported here, so ``import corpusforge.lang.names`` stays cheap.
"""
