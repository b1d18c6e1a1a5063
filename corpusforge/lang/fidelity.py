"""Language fidelity of one answer, down to the line and the character: is every line in the language asked for,
are there English words in an answer whose language is not written in Latin letters, does a Traditional Chinese
answer hold Simplified characters (a Simplified one Traditional characters) or mainland vocabulary, is a Thai answer
written in Thai letters. The KD output checks and the scorecard both ask these functions.

``fidelity(answer, language)`` → a `Fidelity` with every measure that applies to ``language``:

* **Lines** (the Language Confusion Benchmark's line level, Marchisio et al. 2024, arXiv 2406.20052). The answer is
  split at newlines after fenced code blocks, inline code, URLs and e-mail addresses are blanked out (code is in no
  natural language). A line with fewer than ``MIN_LINE_UNITS`` units of letters (words; single characters of the
  scripts written without spaces, see `degeneration.units`) is *undetermined*: LID is noise on `- 42`, `**注意**`,
  a lone `OK` or a brand name, and LCB skips lines of fewer than 5 tokens too. Leading Markdown (`#`, `>`,
  bullets, `1.`) and table bars are taken off before LID. Each other line gets the label of the same
  `LanguageIdentifier` the scorecard uses (script census first, Chinese split into zh_Hant / zh_Hans / zh, lid.176
  for the rest) and passes when `names.languages_agree` with the language asked for. ``line_pass``: every
  determined line passes; None when no line is determined.
* **English words** (LCB's word level), for languages written without Latin letters only (`NON_LATIN`). LCB counts
  the tokens found in an English dictionary that are lower-case and longer than 3 letters; the base install has no
  English dictionary, so an English word here is a Latin *prose* word (`prose.PROSE_WORD`: letters only, so no
  identifier, placeholder, option, path or number) outside code and URLs that is all lower-case and at least
  ``MIN_ENGLISH_LETTERS`` (4) letters long. That leaves out acronyms and units (`AI`, `GPU`, `kg`, `cm`: capitals
  or too short), mixed-case brands (`iPhone`, `YouTube`) and capitalised names (`Python`, `Google`, `Taipei`: a
  name is written in Latin letters in Chinese and Thai prose too), and it takes a romanised word (`xiexie`) as
  English. ``word_pass``: no such word.
* **Script**, for zh_Hant and zh_Hans: the characters only the other script writes (Simplified-only in zh_Hant,
  Traditional-only in zh_Hans; CC-CEDICT's sets, `scripts.other_script_chars`), over the whole answer, code
  included: a Simplified comment is still a Simplified character the model wrote (and the KD `script` check has
  always read the whole field). Counted against the Han characters, with their spans for highlighting.
* **Region**: for zh_Hant, the places of mainland vocabulary (`region.region_evidence`'s `CN`: `軟件`, `數據`,
  `人工智能` where Taiwan writes `軟體`, `資料`, `人工智慧`); for zh_Hans the mirror, Taiwan vocabulary (`TW`). The
  count is zh_region's own; a span is the place as zh_region reports it (the phrase with a character of context on
  each side).
* **Thai letters**, for th: Thai-script letters among the letters of the prose (code and URLs blanked out).

Spans are ``(start, end)`` character offsets into the answer as given (Python string indices).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from functools import cache

from corpusforge.lang.degeneration import units
from corpusforge.lang.lid import LanguageIdentifier
from corpusforge.lang.names import languages_agree
from corpusforge.lang.prose import ASCII_RUN, CODE_FENCE, PROSE_WORD, letters, prose
from corpusforge.lang.region import region_evidence
from corpusforge.lang.scripts import HAN, SCRIPT_LANGUAGES, THAI, opencc_converter, other_script_chars

MIN_LINE_UNITS = 5  # LCB skips lines of fewer than 5 tokens
MIN_ENGLISH_LETTERS = 4  # LCB's dictionary words: lower-case, longer than 3 letters

# languages written without Latin letters, where a Latin word in the prose is a confusion (LCB scores the word level
# for ar, hi, ja, ko, ru, zh): the languages the script census settles, and those of Cyrillic, Arabic, Hebrew,
# Devanagari, Bengali, Georgian, Ethiopic and Armenian script that lid.176 labels
NON_LATIN = frozenset(SCRIPT_LANGUAGES) | frozenset(
    "ru uk be bg mk kk ky tg mn tt ba cv sah ce os ar arz fa ur ps ckb ug sd he yi hi mr ne sa bh mai new bn as "
    "ka am".split()
)
# the region whose vocabulary is foreign to each Chinese script (zh_region's labels)
FOREIGN_REGION = {"zh_Hant": "CN", "zh_Hans": "TW"}

Span = tuple[int, int]

# blanked out before lines are read: inline code, URLs, e-mail addresses (fenced code: prose.CODE_FENCE)
INLINE_CODE = re.compile(r"`[^`\n]+`")
URL = re.compile(r"(?:https?|ftp)://[!-~]+|www\.[!-~]+|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Markdown at the start of a line (heading, quote, bullet, numbering) and table bars: not part of the sentence
LEADING_MARKUP = re.compile(r"^\s*(?:#{1,6}|>+|[-*+•·●○◦▪■►▶➢➤→–—]|\(?\d{1,3}[.)、]|\(?[A-Za-z][.)])\s+")
INNER_MARKUP = re.compile(r"\||\*{1,3}|_{2,3}")
_NOT_NEWLINE = re.compile(r"[^\n]")


@dataclass(frozen=True)
class Line:
    """One line of an answer: where it is, what LID read, and whether that is the language asked for."""

    start: int
    end: int
    label: str | None  # None: undetermined (fewer than MIN_LINE_UNITS units of letters)
    ok: bool | None  # None when undetermined


@dataclass
class Fidelity:
    """The fidelity measures of one answer to ``language``; a measure that does not apply to it is None."""

    language: str
    lines: list[Line]
    line_pass: bool | None  # every determined line in the language; None: no line determined
    english_words: list[Span] | None = None  # NON_LATIN languages only
    word_pass: bool | None = None
    han: int = 0  # Han characters of the answer
    other_script: int | None = None  # zh_Hant: Simplified-only characters; zh_Hans: Traditional-only
    other_script_spans: list[Span] = field(default_factory=list)
    region: str | None = None  # whose vocabulary is counted as foreign: CN for zh_Hant, TW for zh_Hans
    region_hits: int | None = None
    region_spans: list[Span] = field(default_factory=list)
    thai_letters: int | None = None  # th only: Thai letters, of ``letters`` letters in the prose
    letters: int | None = None
    other_letter_spans: list[Span] = field(default_factory=list)  # th only: runs of letters of other scripts

    @property
    def other_script_per_1000(self) -> float | None:
        """Characters of the other script per 1,000 Han characters (None without Han or outside Chinese)."""
        return None if self.other_script is None or not self.han else 1000 * self.other_script / self.han

    @property
    def thai_share(self) -> float | None:
        return None if self.thai_letters is None or not self.letters else self.thai_letters / self.letters

    def to_dict(self) -> dict:
        return asdict(self)


@cache
def default_identifier() -> LanguageIdentifier:
    """The language step's defaults (lid.176, loaded on first use), once per process."""
    return LanguageIdentifier()


def blank_code(text: str) -> str:
    """``text`` with fenced code, inline code, URLs and e-mail addresses replaced by spaces (newlines kept), so every
    offset still points into ``text``."""
    for pattern in (CODE_FENCE, INLINE_CODE, URL):
        text = pattern.sub(lambda m: _NOT_NEWLINE.sub(" ", m.group()), text)
    return text


def prose_lines(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, line)`` of each line of ``text`` with some non-space character outside code (see
    ``blank_code``); ``line`` is the blanked line with its Markdown taken off, what LID reads."""
    out, start = [], 0
    for raw in blank_code(text).split("\n"):
        end = start + len(raw)
        line = INNER_MARKUP.sub(" ", LEADING_MARKUP.sub("", raw)).strip()
        if line:
            out.append((start, end, line))
        start = end + 1
    return out


def _determined(line: str) -> bool:
    return sum(1 for u in units(line) if any(ch.isalpha() for ch in u)) >= MIN_LINE_UNITS


def line_languages(text: str, language: str, lid: LanguageIdentifier | None = None) -> list[Line]:
    """Each prose line of ``text`` with its LID label and whether it is in ``language`` (see the module docstring)."""
    lid = lid or default_identifier()
    out = []
    for start, end, line in prose_lines(text):
        if not _determined(line):
            out.append(Line(start, end, None, None))
            continue
        label, _ = lid.identify(line)
        out.append(Line(start, end, label, languages_agree(label, language)))
    return out


def line_pass(lines: list[Line]) -> bool | None:
    """Every determined line in the language; None when no line is determined."""
    judged = [line.ok for line in lines if line.ok is not None]
    return all(judged) if judged else None


def english_words(text: str) -> list[Span]:
    """Spans of the English words of ``text``'s prose: lower-case Latin prose words of at least
    ``MIN_ENGLISH_LETTERS`` letters, outside code and URLs (see the module docstring)."""
    out = []
    for run in ASCII_RUN.finditer(blank_code(text)):
        if not PROSE_WORD.fullmatch(run.group()):
            continue
        word = re.search(r"[A-Za-z]+(?:'[a-z]+)?", run.group())
        if word and word.group().islower() and len(word.group().replace("'", "")) >= MIN_ENGLISH_LETTERS:
            out.append((run.start() + word.start(), run.start() + word.end()))
    return out


def _spans(positions: list[int]) -> list[Span]:
    """Consecutive positions merged into ``(start, end)`` spans."""
    spans: list[list[int]] = []
    for i in positions:
        if spans and spans[-1][1] == i:
            spans[-1][1] = i + 1
        else:
            spans.append([i, i + 1])
    return [(a, b) for a, b in spans]


def other_script_count(text: str, language: str) -> int:
    """Characters of ``text`` that only the other Chinese script writes (Simplified-only ones in zh_Hant)."""
    return len(other_script_chars(text, language))


def other_script_spans(text: str, language: str) -> list[Span]:
    """Spans of the characters only the other Chinese script writes (``language``: zh_Hant or zh_Hans)."""
    other = set(other_script_chars(text, language))
    return _spans([i for i, ch in enumerate(text) if ch in other]) if other else []


def region_places(text: str, region: str) -> tuple[int, list[Span]]:
    """zh_region's evidence of ``region``'s vocabulary (`CN`, `TW`, `HK`) in ``text``: how many places, and their spans
    where they can be found in the text (zh_region reads a Traditional conversion of it; a conversion that changed
    the length leaves the spans out, never the count)."""
    if HAN.search(text) is None:
        return 0, []
    places = region_evidence(text)[region]
    trad = opencc_converter("s2t").convert(text)
    spans: list[Span] = []
    if len(trad) == len(text):
        at = 0
        for piece in places:
            i = trad.find(piece, at)
            if i < 0:
                continue
            spans.append((i, i + len(piece)))
            at = i + 1
    return len(places), spans


def thai_letters(text: str) -> tuple[int, int, list[Span]]:
    """(Thai letters, letters, spans of the runs of other letters) of ``text``'s prose (code and URLs blanked out)."""
    body = blank_code(text)
    other = [i for i, ch in enumerate(body) if ch.isalpha() and not THAI.match(ch)]
    return sum(1 for ch in THAI.findall(body) if ch.isalpha()), letters(body), _spans(other)


def answer_language(text: str, lid: LanguageIdentifier, min_letters: int) -> tuple[str, float] | None:
    """The language of a whole answer: LID on its prose (fenced code blocks left out), or None when the prose has
    fewer than ``min_letters`` letters (LID is noise on 'OK', '42', '✓')."""
    text = prose(text)
    if letters(text) < min_letters:
        return None
    return lid.identify(text)


def fidelity(text: str, language: str, lid: LanguageIdentifier | None = None) -> Fidelity:
    """Every fidelity measure of one answer that applies to ``language`` (see the module docstring)."""
    lines = line_languages(text, language, lid)
    out = Fidelity(language=language, lines=lines, line_pass=line_pass(lines), han=len(HAN.findall(text)))
    if language in NON_LATIN:
        out.english_words = english_words(text)
        out.word_pass = not out.english_words
    if language in FOREIGN_REGION:
        out.other_script_spans = other_script_spans(text, language)
        out.other_script = sum(b - a for a, b in out.other_script_spans)
        out.region = FOREIGN_REGION[language]
        out.region_hits, out.region_spans = region_places(text, out.region)
    if language == "th":
        out.thai_letters, out.letters, out.other_letter_spans = thai_letters(text)
    return out
