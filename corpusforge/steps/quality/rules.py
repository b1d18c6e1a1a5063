"""The `quality` rules: `Rules` holds one preset's resolved thresholds and checks a text against them, in the
order of `RULES`; `unwrap` joins hard-wrapped lines back before the line rules.

Speed, chosen by measurement (benchmarks/bench_quality.py and docs/benchmarks.md; 2-core Xeon, ~1,200-
character Chinese documents): pure Python per document — one `Counter` pass over the characters whose distinct
characters are classified once and cached, `str` methods (split, count, startswith, endswith), precompiled
regexes, sets and Counters of n-gram slices — checks 1,900-2,500 documents per second on one core, 17x datatrove's
GopherQualityFilter with jieba. Two alternatives were measured and not taken. polars string kernels over a
`filter_batch` of 1,000 documents computed the per-character and per-line counts in ~200 ms instead of ~350 ms,
but with both cores (a datatrove worker per core leaves none spare), and those counts are ~40% of the time: the
repetition rules, the rest, have no polars form short of exploding every document into n-grams. A numpy rolling
hash halved the duplicated n-gram rule (~15% of the time) at the cost of a second, hash-verified code path (the
n-gram algorithms are in `ngrams`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, fields
from functools import cached_property
from itertools import accumulate
from typing import Any, Protocol

import regex

from corpusforge.lang.lexicon import BULLETS as _BULLETS
from corpusforge.lang.lexicon import CLOSERS as _CLOSERS
from corpusforge.lang.lexicon import ELLIPSES as _ELLIPSES
from corpusforge.steps.quality.ngrams import _word_sequence, repeated_ngram_chars

# The rules, in the order they are checked; each name is also the drop reason (`dropped_<name>`).
RULES = (
    "empty",
    "too_few_units",
    "too_many_units",
    "boilerplate",
    "dup_para_fraction",
    "dup_para_chars",
    "dup_line_fraction",
    "dup_line_chars",
    "letter_ratio",
    "symbol_ratio",
    "mean_unit_length",
    "bullet_lines",
    "ellipsis_lines",
    "short_lines",
    "line_punct_ratio",
    "newline_ratio",
    "stop_words",
    "too_few_sentences",
    "top_ngram_fraction",
    "dup_ngram_fraction",
)

_SYMBOL_WORD = regex.compile(r"(?<!\S)[^\s\p{L}\p{N}]+(?!\S)")  # tokens of punctuation/symbols only
# Whitespace-separated tokens without a letter, except a lone punctuation mark (French spaces its : ; ! ? « »).
_NO_LETTER_WORD = regex.compile(r"(?<!\S)(?!\p{P}(?!\S))[^\s\p{L}]+(?!\S)")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_THAI_LETTER = "\u0e01-\u0e4e"
# Thai separates sentences (and clauses) with a space: a space next to a Thai letter is a boundary.
_THAI_GAP = re.compile(rf"(?<=[{_THAI_LETTER}])[ \t]+(?=\S)|(?<=\S)[ \t]+(?=[{_THAI_LETTER}])")
_ENDS_IN_LETTER = regex.compile(r"[\p{L}\p{M}]$")

# Character classes, cached per distinct character: a document is counted with one Counter pass, then each
# distinct character (a few hundred) is classified once.
_LETTER, _MARK, _DIGIT, _SPACE, _OTHER = range(5)
_CHAR_CLASS: dict[str, int] = {}


_KIND_BY_CATEGORY = {"L": _LETTER, "M": _MARK, "N": _DIGIT}


def _classify(ch: str) -> int:
    kind = _SPACE if ch.isspace() else _KIND_BY_CATEGORY.get(unicodedata.category(ch)[0], _OTHER)
    if len(_CHAR_CLASS) < 200_000:  # bounded: a document of random code points must not grow it forever
        _CHAR_CLASS[ch] = kind
    return kind


def _find_duplicates(items: list[str]) -> tuple[int, int]:
    """Gopher's count of repeated items and of their characters (the first occurrence is not counted)."""
    seen: set[str] = set()
    dup = dup_chars = 0
    for item in items:
        if item in seen:
            dup += 1
            dup_chars += len(item)
        else:
            seen.add(item)
    return dup, dup_chars


WRAP_MIN_WIDTH = 60  # a text whose longest line is shorter is not hard-wrapped prose (navigation, lists, verse)
WRAP_MAX_WIDTH = 100  # nor is one with longer lines (web text: a paragraph per line)
WRAP_FILL = 0.6  # a wrapped line fills at least this share of the width


def unwrap(lines: list[str], sentence_end: tuple[str, ...]) -> list[str]:
    """Logical lines of hard-wrapped text (documentation, mail, licences wrapped at 60–100 columns): a line that
    fills most of the width and ends no sentence continues on the next line, unless that one starts a bullet or a
    blank line comes between (``lines`` are stripped, blank ones included; the result has none).

    FineWeb's line rules (a share of lines ending a sentence, short lines) assume a paragraph per line, as on web
    pages; on text wrapped at 80 columns most lines end mid-sentence and clean prose would be dropped. Text that is
    not wrapped comes back as it was."""
    width = max(map(len, lines), default=0)
    if sum(map(bool, lines)) < 3 or not WRAP_MIN_WIDTH <= width <= WRAP_MAX_WIDTH:
        return [line for line in lines if line]
    out: list[str] = []
    previous = ""
    for line in lines:
        if not line:
            previous = ""  # a paragraph break: nothing continues across it
            continue
        wrapped = len(previous) >= WRAP_FILL * width and not previous.rstrip(_CLOSERS).endswith(sentence_end)
        if out and wrapped and not line.startswith(_BULLETS):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
        previous = line
    return out


class Thresholds(Protocol):
    """What `Rules.from_params` reads of the step's parameters (`params.QualityParams`, which imports this module
    for the rule names)."""

    skip: list[str]

    def thresholds(self, preset: str) -> dict[str, Any]: ...


@dataclass
class Rules:
    """One preset's resolved thresholds, with its regexes compiled; ``check(text)`` applies them."""

    unit: str
    min_units: int | None
    max_units: int | None
    min_mean_unit_length: float | None
    max_mean_unit_length: float | None
    max_symbol_ratio: float | None
    max_bullet_lines: float | None
    max_ellipsis_lines: float | None
    min_letter_ratio: float | None
    stop_words: list[str]
    min_stop_words: int | None
    max_dup_line_fraction: float | None
    max_dup_para_fraction: float | None
    max_dup_line_chars: float | None
    max_dup_para_chars: float | None
    max_top_ngram_fraction: dict[int, float] | None
    max_dup_ngram_fraction: dict[int, float] | None
    min_line_punct_ratio: float | None
    short_line_chars: int
    max_short_lines: float | None
    max_newline_ratio: float | None
    min_sentences: int | None
    sentence_end: str
    unmarked_sentence_end: bool
    boilerplate_phrases: list[str]
    max_boilerplate_lines: float | None
    skip: frozenset[str] = frozenset()

    # Which threshold each rule reads (a rule whose threshold is None, or that is skipped, is off).
    _THRESHOLD = {
        "too_few_units": "min_units",
        "too_many_units": "max_units",
        "symbol_ratio": "max_symbol_ratio",
        "bullet_lines": "max_bullet_lines",
        "ellipsis_lines": "max_ellipsis_lines",
        "letter_ratio": "min_letter_ratio",
        "dup_line_fraction": "max_dup_line_fraction",
        "dup_para_fraction": "max_dup_para_fraction",
        "dup_line_chars": "max_dup_line_chars",
        "dup_para_chars": "max_dup_para_chars",
        "top_ngram_fraction": "max_top_ngram_fraction",
        "dup_ngram_fraction": "max_dup_ngram_fraction",
        "line_punct_ratio": "min_line_punct_ratio",
        "short_lines": "max_short_lines",
        "newline_ratio": "max_newline_ratio",
        "too_few_sentences": "min_sentences",
        "boilerplate": "max_boilerplate_lines",
    }

    @classmethod
    def from_params(cls, params: Thresholds, preset: str) -> Rules:
        t = params.thresholds(preset)
        rules = cls(**{f.name: t[f.name] for f in fields(cls) if f.name != "skip"}, skip=frozenset(params.skip))
        for rule, key in cls._THRESHOLD.items():
            if rule in rules.skip:
                setattr(rules, key, None)
        if "mean_unit_length" in rules.skip or rules.unit == "char":
            rules.min_mean_unit_length = rules.max_mean_unit_length = None
        if "stop_words" in rules.skip or not rules.stop_words:
            rules.min_stop_words = None
        rules.max_top_ngram_fraction = dict(sorted((rules.max_top_ngram_fraction or {}).items())) or None
        rules.max_dup_ngram_fraction = dict(sorted((rules.max_dup_ngram_fraction or {}).items())) or None
        return rules

    # -- compiled once per preset -------------------------------------------------------------------------------
    @cached_property
    def _line_ends(self) -> tuple[str, ...]:
        return tuple(self.sentence_end)

    @cached_property
    def _marks_anywhere(self) -> frozenset[str]:
        """Sentence marks that end a sentence wherever they stand (all but ASCII . ! ?)."""
        return frozenset(self.sentence_end) - frozenset(".!?")

    @cached_property
    def _marks_regex(self) -> re.Pattern:
        return re.compile(f"[{re.escape(''.join(sorted(self._marks_anywhere)))}]+")

    @cached_property
    def _ascii_sentence_end(self) -> re.Pattern | None:
        # ASCII . ! ? end a sentence only before a space or the end (not in 3.14 or example.com).
        marks = "".join(c for c in self.sentence_end if c in ".!?")
        return re.compile(f"[{re.escape(marks)}]+[{re.escape(_CLOSERS)}]*(?=\\s|$)") if marks else None

    @cached_property
    def _boilerplate(self) -> list[str]:
        # Compared without whitespace, lower-cased: "使用 Cookie", "使用cookie" and "use  cookies" all match.
        return [p for p in ("".join(p.lower().split()) for p in self.boilerplate_phrases) if p]

    @cached_property
    def _stop_patterns(self) -> list:
        if self.unit == "char":
            return list(self.stop_words)
        return [re.compile(rf"(?<!\w){re.escape(w)}(?!\w)", re.IGNORECASE) for w in self.stop_words]

    # -- the check ----------------------------------------------------------------------------------------------
    def check(self, text: str) -> bool | tuple[bool, str]:
        lines = [s for s in (line.strip() for line in text.splitlines()) if s]
        if not lines:
            return False, "empty"
        n_lines, n_chars = len(lines), len(text)
        char_units = self.unit == "char"

        # -- size (Gopher)
        if char_units:
            counts = Counter(text)
            by_class = [0, 0, 0, 0, 0]
            get = _CHAR_CLASS.get
            for ch, count in counts.items():
                kind = get(ch)
                by_class[_classify(ch) if kind is None else kind] += count
            letters, marks, digits, spaces, _ = by_class
            for space in " \n":  # the n-gram rules read the text without whitespace
                counts.pop(space, None)
            n_units = letters + digits
        else:
            words = text.split()
            symbol_words = _SYMBOL_WORD.findall(text)
            n_units = len(words) - len(symbol_words)
        if self.min_units is not None and n_units < self.min_units:
            return False, "too_few_units"
        if self.max_units is not None and n_units > self.max_units:
            return False, "too_many_units"
        n_units = max(n_units, 1)

        # -- boilerplate (C4)
        if self.max_boilerplate_lines is not None:
            compact = "".join(text.lower().split())
            if "loremipsum" in compact:
                return False, "boilerplate"
            phrases = [p for p in self._boilerplate if p in compact]
            if phrases:
                hits = 0
                for line in lines:
                    line = "".join(line.lower().split())
                    hits += any(p in line for p in phrases)
                if hits / n_lines > self.max_boilerplate_lines:
                    return False, "boilerplate"

        # -- repetition of paragraphs and lines (Gopher)
        if self.max_dup_para_fraction is not None or self.max_dup_para_chars is not None:
            paragraphs = _PARAGRAPH_BREAK.split(text.strip())
            if len(paragraphs) > 1:
                dup, dup_chars = _find_duplicates(paragraphs)
                if self.max_dup_para_fraction is not None and dup / len(paragraphs) > self.max_dup_para_fraction:
                    return False, "dup_para_fraction"
                if self.max_dup_para_chars is not None and dup_chars / n_chars > self.max_dup_para_chars:
                    return False, "dup_para_chars"
        if n_lines > 1:
            dup, dup_chars = _find_duplicates(lines)
            if self.max_dup_line_fraction is not None and dup / n_lines > self.max_dup_line_fraction:
                return False, "dup_line_fraction"
            if self.max_dup_line_chars is not None and dup_chars / n_chars > self.max_dup_line_chars:
                return False, "dup_line_chars"

        # -- letters, symbols, word length (Gopher)
        if self.min_letter_ratio is not None:
            if char_units:
                ratio = (letters + marks) / max(n_chars - spaces, 1)
            else:
                ratio = 1 - len(_NO_LETTER_WORD.findall(text)) / max(len(words), 1)
            if ratio < self.min_letter_ratio:
                return False, "letter_ratio"
        if self.max_symbol_ratio is not None:
            # Gopher counts `#` and ellipses; a CJK ellipsis is written as two (……) and counts once.
            ellipses = text.count("...") + text.count("…") - text.count("……") + text.count("⋯") - text.count("⋯⋯")
            if (text.count("#") + ellipses) / n_units > self.max_symbol_ratio:
                return False, "symbol_ratio"
        if self.min_mean_unit_length is not None or self.max_mean_unit_length is not None:
            mean = (sum(map(len, words)) - sum(map(len, symbol_words))) / n_units
            if (self.min_mean_unit_length is not None and mean < self.min_mean_unit_length) or (
                self.max_mean_unit_length is not None and mean > self.max_mean_unit_length
            ):
                return False, "mean_unit_length"

        # -- line shapes (Gopher, FineWeb), on logical lines: hard-wrapped prose joined back (see `unwrap`)
        if not self.unmarked_sentence_end:  # Thai marks no sentence end: a wrapped line cannot be told apart
            lines = unwrap([line.strip() for line in text.splitlines()], self._line_ends)
            n_lines = len(lines)
        bullets = self.max_bullet_lines
        if bullets is not None and sum(line.startswith(_BULLETS) for line in lines) / n_lines > bullets:
            return False, "bullet_lines"
        ellipses = self.max_ellipsis_lines
        if ellipses is not None and sum(line.endswith(_ELLIPSES) for line in lines) / n_lines > ellipses:
            return False, "ellipsis_lines"
        short = self.short_line_chars
        if (
            self.max_short_lines is not None
            and sum(len(line) <= short for line in lines) / n_lines > self.max_short_lines
        ):
            return False, "short_lines"
        if self.min_line_punct_ratio is not None:
            ends = self._line_ends
            ended = sum(line.rstrip(_CLOSERS).endswith(ends) for line in lines)
            if self.unmarked_sentence_end:  # Thai: a long line ending in a letter ends a sentence too
                ended += sum(
                    len(line) > short and _ENDS_IN_LETTER.search(line.rstrip(_CLOSERS)) is not None for line in lines
                )
            if ended / n_lines < self.min_line_punct_ratio:
                return False, "line_punct_ratio"
        if self.max_newline_ratio is not None and n_lines / n_units > self.max_newline_ratio:
            return False, "newline_ratio"

        # -- natural language: stop words (Gopher), sentences (C4)
        if self.min_stop_words is not None:
            found = 0
            for word in self._stop_patterns:
                if (word in text) if char_units else word.search(text):
                    found += 1
                    if found >= self.min_stop_words:
                        break
            if found < self.min_stop_words:
                return False, "stop_words"
        enough = self.min_sentences
        if enough is not None and self._sentences(text, counts if char_units else None, enough) < enough:
            return False, "too_few_sentences"

        # -- n-gram repetition (Gopher)
        if (self.max_top_ngram_fraction or self.max_dup_ngram_fraction) and (char_units or len(words) < 1_000_000):
            if char_units:
                seq, offsets = "".join(text.split()), None
                top_char = max(counts.values(), default=0)  # an upper bound (other whitespace may remain)
            else:
                seq, offsets, top_char = _word_sequence(words), [0, *accumulate(map(len, words))], None
            if self.max_top_ngram_fraction and self._top_ngram_exceeds(seq, offsets, top_char, n_chars):
                return False, "top_ngram_fraction"
            if self.max_dup_ngram_fraction and self._dup_ngram_exceeds(seq, offsets, n_chars):
                return False, "dup_ngram_fraction"
        return True

    def _sentences(self, text: str, counts: Counter | None, enough: int) -> int:
        """Sentences (counted up to ``enough``): marks that end one, Thai sentence spaces, an unmarked last one."""
        if counts is None:
            n = len(self._marks_regex.findall(text)) if self._marks_anywhere else 0
        else:
            n = sum(counts[c] for c in self._marks_anywhere if c in counts)
        if n < enough and self._ascii_sentence_end is not None:
            n += len(self._ascii_sentence_end.findall(text))
        if n < enough and self.unmarked_sentence_end:
            n += len(_THAI_GAP.findall(text))
        if n < enough and not text.rstrip().rstrip(_CLOSERS).endswith(self._line_ends):
            n += 1
        return n

    def _top_ngram_exceeds(self, seq: str, offsets: list[int] | None, top_char: int | None, n_chars: int) -> bool:
        """Does the most frequent n-gram cover more than its share of the document's characters, for some n?

        For characters, an n-gram occurs at most as often as its (n-1)-gram prefix, so the most frequent shorter
        n-gram bounds the longer ones, and most documents are settled without counting the longer ones at all.
        """
        bound = top_char
        for n, fraction in self.max_top_ngram_fraction.items():
            if len(seq) < n:
                break
            if bound is not None and bound * n <= fraction * n_chars:
                continue
            counts = Counter([seq[i : i + n] for i in range(len(seq) - n + 1)])
            gram, count = max(counts.items(), key=lambda kv: kv[1])
            if offsets is None:
                bound, chars = count, n
            else:
                i = seq.find(gram)
                chars = offsets[i + n] - offsets[i] + n - 1  # words joined by spaces, as Gopher
            if count > 1 and chars * count > fraction * n_chars:
                return True
        return False

    def _dup_ngram_exceeds(self, seq: str, offsets: list[int] | None, n_chars: int) -> bool:
        table = self.max_dup_ngram_fraction
        return any(chars > table[n] * n_chars for n, chars in repeated_ngram_chars(seq, list(table), offsets))
