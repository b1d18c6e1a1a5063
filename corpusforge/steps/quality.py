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

Speed, chosen by measurement (benchmarks/bench_quality.py and docs/benchmarks-quality.md; 2-core Xeon, ~1,200-
character Chinese documents): pure Python per document — one `Counter` pass over the characters whose distinct
characters are classified once and cached, `str` methods (split, count, startswith, endswith), precompiled
regexes, sets and Counters of n-gram slices — checks 1,900-2,500 documents per second on one core, 17x datatrove's
GopherQualityFilter with jieba. Two alternatives were measured and not taken. polars string kernels over a
`filter_batch` of 1,000 documents computed the per-character and per-line counts in ~200 ms instead of ~350 ms,
but with both cores (a datatrove worker per core leaves none spare), and those counts are ~40% of the time: the
repetition rules, the rest, have no polars form short of exploding every document into n-grams. A numpy rolling
hash halved the duplicated n-gram rule (~15% of the time) at the cost of a second, hash-verified code path. The
n-gram rules stay cheap because a document whose n-grams are all distinct needs no more counting, and an n-gram
can only repeat where its (n-1)-gram prefix repeats, so each larger n is checked at the positions the smaller one
left (the sums equal datatrove's `find_all_duplicate`, which a test checks).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, fields
from functools import cached_property
from itertools import accumulate
from typing import Any, Literal

import regex
from datatrove.pipeline.filters.base_filter import BaseFilter
from pydantic import Field, field_validator, model_validator

from corpusforge.recipe.models import StrictModel
from corpusforge.steps.registry import register_builtin

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

# --------------------------------------------------------------------------------------------- language data
STOP_WORDS = {
    # Gopher's list (Rae et al. 2021, appendix A1).
    "en": ["the", "be", "to", "of", "and", "that", "have", "with"],
    # Function characters and words, both scripts; matched as substrings (no word boundaries in Chinese).
    "zh": "的 了 是 在 和 有 不 也 就 都 這 这 們 们 個 个 與 与 及 而 被 將 将 之 於 于 為 为 或 其 會 会 以 可以 如果".split(),
    # Particles and common auxiliaries.
    "ja": "の に は を が で と も た です ます する ない いる から こと".split(),
    # Function words: that/which, and, in, (nominalizer), be, of, have, can, give, not, will, that (quote), with, …
    "th": "ที่ และ ใน การ เป็น ของ มี ได้ ให้ ไม่ จะ ว่า กับ นี้ แล้ว จาก โดย หรือ ซึ่ง อยู่ ก็ ต้อง คือ ถ้า".split(),
}

# Lines containing one of these (case-insensitive; a space also matches no space) are boilerplate: cookie and policy
# banners, "enable JavaScript" notices, copyright footers. The English ones apply to every language: they show up
# untranslated on pages in any language. "lorem ipsum" anywhere drops the document.
BOILERPLATE = {
    "common": [
        "enable javascript",
        "javascript is disabled",
        "javascript is required",
        "requires javascript",
        "javascript must be enabled",
        "terms of use",
        "terms of service",
        "privacy policy",
        "cookie policy",
        "uses cookies",
        "use of cookies",
        "use cookies",
        "accept cookies",
        "cookie settings",
        "all rights reserved",
    ],
    "zh": [
        "啟用 javascript",
        "启用 javascript",
        "開啟 javascript",
        "开启 javascript",
        "javascript 已停用",
        "javascript 已禁用",
        "使用 cookie",
        "接受 cookie",
        "cookie 政策",
        "隱私權政策",
        "隱私權條款",
        "隱私政策",
        "隐私政策",
        "隐私权政策",
        "使用條款",
        "使用条款",
        "服務條款",
        "服务条款",
        "版權所有",
        "版权所有",
    ],
    "ja": [
        "javascript を有効",
        "javascript が無効",
        "cookie を使用",
        "クッキーを使用",
        "プライバシーポリシー",
        "利用規約",
        "無断転載",
    ],
    "th": [
        "เปิดใช้งาน javascript",
        "เปิด javascript",
        "ใช้คุกกี้",
        "นโยบายคุกกี้",
        "นโยบายความเป็นส่วนตัว",
        "ข้อกำหนดการใช้งาน",
        "เงื่อนไขการใช้งาน",
        "สงวนลิขสิทธิ์",
    ],
    "ko": ["javascript를 활성화", "쿠키를 사용", "개인정보 처리방침", "개인정보처리방침", "이용약관", "무단 전재"],
}

# Marks that end a sentence in most scripts: Latin, CJK full-width, Devanagari danda, Arabic, Armenian, Ethiopic,
# Khmer, Myanmar, Tibetan, Thai angkhankhu / khomut and paiyannoi.
SENTENCE_END = ".!?。！？…｡؟۔।॥։።។။།๚๛ฯ"
_CLOSERS = "\"'”’」』）)]】》〉»›"
_BULLETS = ("•", "-", "*", "·", "‧", "・", "●", "○", "◦", "▪", "■", "□", "►", "▶", "➢", "➤", "→", "–", "—", "◆", "◇")
_ELLIPSES = ("...", "…", "⋯")

# --------------------------------------------------------------------------------------------- presets
# Gopher (Rae et al. 2021, table A1), C4 (Raffel et al. 2020) and FineWeb (Penedo et al. 2024) values for spaced
# languages; for character units, the word-based numbers are rescaled (a Chinese word is 1-2 characters, a Thai word
# about 4 code points) and checked on real translated prose (tests/test_quality.py).
DEFAULTS: dict[str, Any] = {
    "unit": "word",
    "min_units": 50,
    "max_units": 100_000,
    "min_mean_unit_length": 2.0,
    "max_mean_unit_length": 12.0,
    "max_symbol_ratio": 0.1,
    "max_bullet_lines": 0.9,
    "max_ellipsis_lines": 0.3,
    "min_letter_ratio": 0.8,
    "stop_words": [],
    "min_stop_words": 2,
    "max_dup_line_fraction": 0.3,
    "max_dup_para_fraction": 0.3,
    "max_dup_line_chars": 0.2,
    "max_dup_para_chars": 0.2,
    "max_top_ngram_fraction": {2: 0.2, 3: 0.18, 4: 0.16},
    "max_dup_ngram_fraction": {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
    "min_line_punct_ratio": 0.12,
    "short_line_chars": 30,
    "max_short_lines": 0.67,
    "max_newline_ratio": 0.3,
    "min_sentences": 2,
    "sentence_end": SENTENCE_END,
    "unmarked_sentence_end": False,
    "boilerplate_phrases": BOILERPLATE["common"],
    "max_boilerplate_lines": 0.2,
}

_CJK = {
    "unit": "char",
    "min_units": 50,
    "min_mean_unit_length": None,
    "max_mean_unit_length": None,
    "max_symbol_ratio": 0.05,
    "min_letter_ratio": 0.6,
    # A character 2-4-gram is about one word; on short documents anything longer repeats naturally (measured).
    "max_top_ngram_fraction": {2: 0.2, 3: 0.2, 4: 0.2},
    # 5-10 words: about 2 characters a word in Chinese.
    "max_dup_ngram_fraction": {10: 0.15, 12: 0.14, 14: 0.13, 16: 0.12, 18: 0.11, 20: 0.10},
    "short_line_chars": 10,
    "max_newline_ratio": 0.15,
}

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "en": {"min_mean_unit_length": 3.0, "max_mean_unit_length": 10.0, "stop_words": STOP_WORDS["en"]},
    # An eojeol (space-separated Korean word) carries its particles: fewer, longer-lived "words" than English.
    "ko": {
        "min_units": 30,
        "min_mean_unit_length": 1.5,
        "boilerplate_phrases": BOILERPLATE["common"] + BOILERPLATE["ko"],
    },
    "zh": {**_CJK, "stop_words": STOP_WORDS["zh"], "boilerplate_phrases": BOILERPLATE["common"] + BOILERPLATE["zh"]},
    "ja": {
        **_CJK,
        # Kana inflections and katakana loanwords: about 3 characters a word.
        "max_dup_ngram_fraction": {15: 0.15, 18: 0.14, 21: 0.13, 24: 0.12, 27: 0.11, 30: 0.10},
        "stop_words": STOP_WORDS["ja"],
        "boilerplate_phrases": BOILERPLATE["common"] + BOILERPLATE["ja"],
    },
    "th": {
        **_CJK,
        "max_symbol_ratio": 0.03,
        # About 4 code points a word (vowel and tone marks are code points of their own).
        "max_dup_ngram_fraction": {20: 0.15, 24: 0.14, 28: 0.13, 32: 0.12, 36: 0.11, 40: 0.10},
        "short_line_chars": 20,
        "max_newline_ratio": 0.1,
        "unmarked_sentence_end": True,
        "stop_words": STOP_WORDS["th"],
        "boilerplate_phrases": BOILERPLATE["common"] + BOILERPLATE["th"],
    },
}
# Language codes (as the `language` step writes them) that use another code's preset.
PRESET_ALIASES = {"zh_Hant": "zh", "zh_Hans": "zh", "yue": "zh", "wuu": "zh"}
PRESET_NAMES = sorted([*PRESETS, *PRESET_ALIASES])


def _describe(key: str, text: str) -> str:
    """A field description with each preset's value, generated from PRESETS so the docs cannot drift."""
    values = {name: PRESETS[name].get(key, DEFAULTS[key]) for name in PRESETS}

    def show(v) -> str:
        if v is None:
            return "off"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{n}: {f}" for n, f in v.items()) + "}"
        if isinstance(v, list):
            return f"{len(v)} entries" if v else "none"
        return f"`{v}`" if isinstance(v, str) else str(v)

    default = show(values["default"])
    others = [f"{name} {show(v)}" for name, v in values.items() if name != "default" and show(v) != default]
    return f"{text} Preset value: {default}" + (f" ({'; '.join(others)})." if others else ".")


# --------------------------------------------------------------------------------------------- params
class QualityParams(StrictModel):
    """Gopher / C4 / FineWeb quality heuristics with per-language presets: character units for zh, ja, th.

    Each rule drops with its own reason: `too_few_units`, `too_many_units`, `mean_unit_length`, `symbol_ratio`
    (`#` and ellipses per unit), `bullet_lines`, `ellipsis_lines`, `letter_ratio`, `stop_words`,
    `dup_line_fraction`, `dup_para_fraction`, `dup_line_chars`, `dup_para_chars`, `top_ngram_fraction`,
    `dup_ngram_fraction`, `line_punct_ratio`, `short_lines`, `newline_ratio` (lines per unit),
    `too_few_sentences`, `boilerplate` (lorem ipsum; cookie, policy and JavaScript notices), `empty`. Presets:
    `default` (spaced languages), `en`, `ko`, `zh` (= `zh_Hant`, `zh_Hans`, `yue`, `wuu`), `ja`, `th`. Any
    threshold set here overrides the preset's value, for every language under `preset: auto`.
    """

    preset: str = Field(
        "auto",
        description="Thresholds to start from: `auto` picks the preset of each document's `language` (written by the "
        "`language` step), or a preset name: " + ", ".join(f"`{p}`" for p in PRESET_NAMES) + ".",
    )
    fallback: str = Field(
        "default", description="Preset for documents without a language or whose language has no preset (`auto`)."
    )
    skip: list[str] = Field(
        default_factory=list, description="Rules to turn off, by drop reason, e.g. `[stop_words, short_lines]`."
    )
    unit: Literal["word", "char"] | None = Field(
        None,
        description=_describe(
            "unit", "`word` (whitespace-separated) or `char` (each letter or digit; n-grams over characters)."
        ),
    )
    min_units: int | None = Field(None, ge=0, description=_describe("min_units", "Drop documents with fewer units."))
    max_units: int | None = Field(None, ge=1, description=_describe("max_units", "Drop documents with more units."))
    min_mean_unit_length: float | None = Field(
        None, ge=0, description=_describe("min_mean_unit_length", "Minimum mean word length in characters.")
    )
    max_mean_unit_length: float | None = Field(
        None, ge=0, description=_describe("max_mean_unit_length", "Maximum mean word length in characters.")
    )
    max_symbol_ratio: float | None = Field(
        None, ge=0, le=1, description=_describe("max_symbol_ratio", "Maximum (`#` + ellipses) per unit.")
    )
    max_bullet_lines: float | None = Field(
        None,
        ge=0,
        le=1,
        description=_describe("max_bullet_lines", "Maximum fraction of lines starting with a bullet."),
    )
    max_ellipsis_lines: float | None = Field(
        None,
        ge=0,
        le=1,
        description=_describe("max_ellipsis_lines", "Maximum fraction of lines ending in an ellipsis."),
    )
    min_letter_ratio: float | None = Field(
        None,
        ge=0,
        le=1,
        description=_describe(
            "min_letter_ratio",
            "Words: minimum fraction of words with a letter. Characters: minimum fraction of non-space characters "
            "that are letters or marks (any script).",
        ),
    )
    stop_words: list[str] | None = Field(
        None,
        description=_describe(
            "stop_words", "Stop words (whole words for `word` units, substrings for `char` units); empty: rule off."
        ),
    )
    min_stop_words: int | None = Field(
        None, ge=0, description=_describe("min_stop_words", "Minimum number of distinct stop words present.")
    )
    max_dup_line_fraction: float | None = Field(
        None, ge=0, le=1, description=_describe("max_dup_line_fraction", "Maximum fraction of lines that repeat.")
    )
    max_dup_para_fraction: float | None = Field(
        None,
        ge=0,
        le=1,
        description=_describe(
            "max_dup_para_fraction", "Maximum fraction of paragraphs (blank-line separated) that repeat."
        ),
    )
    max_dup_line_chars: float | None = Field(
        None,
        ge=0,
        le=1,
        description=_describe("max_dup_line_chars", "Maximum fraction of characters in repeated lines."),
    )
    max_dup_para_chars: float | None = Field(
        None,
        ge=0,
        le=1,
        description=_describe("max_dup_para_chars", "Maximum fraction of characters in repeated paragraphs."),
    )
    max_top_ngram_fraction: dict[int, float] | None = Field(
        None,
        description=_describe(
            "max_top_ngram_fraction",
            "n → maximum fraction of characters covered by the most frequent n-gram (n in units).",
        ),
    )
    max_dup_ngram_fraction: dict[int, float] | None = Field(
        None,
        description=_describe(
            "max_dup_ngram_fraction", "n → maximum fraction of characters in repeated n-grams (n in units)."
        ),
    )
    min_line_punct_ratio: float | None = Field(
        None,
        ge=0,
        le=1,
        description=_describe("min_line_punct_ratio", "Minimum fraction of lines that end a sentence (FineWeb)."),
    )
    short_line_chars: int | None = Field(
        None, ge=1, description=_describe("short_line_chars", "A line this long or shorter (characters) is short.")
    )
    max_short_lines: float | None = Field(
        None, ge=0, le=1, description=_describe("max_short_lines", "Maximum fraction of short lines (FineWeb).")
    )
    max_newline_ratio: float | None = Field(
        None, ge=0, le=1, description=_describe("max_newline_ratio", "Maximum lines per unit (FineWeb's list ratio).")
    )
    min_sentences: int | None = Field(
        None, ge=0, description=_describe("min_sentences", "Minimum number of sentences (C4).")
    )
    sentence_end: str | None = Field(
        None, min_length=1, description=_describe("sentence_end", "Characters that end a sentence.")
    )
    unmarked_sentence_end: bool | None = Field(
        None,
        description=_describe(
            "unmarked_sentence_end",
            "Sentences may end without a mark (Thai): a space next to a Thai letter is a sentence boundary, and a "
            "line longer than `short_line_chars` that ends in a letter ends a sentence.",
        ),
    )
    boilerplate_phrases: list[str] | None = Field(
        None,
        description=_describe(
            "boilerplate_phrases",
            "Phrases that mark a boilerplate line (case-insensitive; a space also matches none).",
        ),
    )
    max_boilerplate_lines: float | None = Field(
        None,
        ge=0,
        le=1,
        description=_describe(
            "max_boilerplate_lines", "Maximum fraction of boilerplate lines; lorem ipsum always drops."
        ),
    )

    @field_validator("preset", "fallback")
    @classmethod
    def _known_preset(cls, name: str, info) -> str:
        if name == "auto" and info.field_name == "preset":
            return name
        if name in PRESETS or name in PRESET_ALIASES:
            return name
        from corpusforge.steps.language import LANGUAGE_ALIASES

        hint = LANGUAGE_ALIASES.get(name.lower())
        if hint is None:
            close = difflib.get_close_matches(name, PRESET_NAMES, n=1)
            hint = close[0] if close else None
        choices = (["auto"] if info.field_name == "preset" else []) + PRESET_NAMES
        raise ValueError(
            f"unknown {info.field_name} '{name}'"
            + (f" — did you mean '{hint}'?" if hint else "")
            + f" (known: {', '.join(choices)}; other spaced languages use `default`)"
        )

    @field_validator("skip")
    @classmethod
    def _known_rules(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in RULES or name == "empty":
                close = difflib.get_close_matches(name, RULES, n=1)
                hint = f" — did you mean '{close[0]}'?" if close else ""
                raise ValueError(f"unknown rule '{name}'{hint} (rules: {', '.join(RULES[1:])})")
        return names

    @field_validator("max_top_ngram_fraction", "max_dup_ngram_fraction")
    @classmethod
    def _ngram_table(cls, table: dict[int, float] | None, info) -> dict[int, float] | None:
        for n, fraction in (table or {}).items():
            if not 1 <= n <= 100:
                raise ValueError(f"n-gram size must be between 1 and 100, got {n}")
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"the fraction for {n}-grams must be between 0 and 1, got {fraction}")
        return table

    @model_validator(mode="after")
    def _ordered(self):
        # Check the thresholds each preset would end up with, so `min_units: 200000` fails here, not mid-run.
        names = sorted({*(PRESETS if self.preset == "auto" else [self.preset]), self.fallback})
        for name in names:
            t = self.thresholds(name)
            for low, high in (("min_units", "max_units"), ("min_mean_unit_length", "max_mean_unit_length")):
                if t[low] is not None and t[high] is not None and t[high] < t[low]:
                    raise ValueError(
                        f"{low} ({t[low]}) must be ≤ {high} ({t[high]}) for preset '{name}': set {high} as well"
                    )
        return self

    def thresholds(self, preset: str) -> dict[str, Any]:
        """The preset's thresholds with this step's overrides applied."""
        name = PRESET_ALIASES.get(preset, preset)
        out = {**DEFAULTS, **PRESETS[name]}
        for key in DEFAULTS:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


# --------------------------------------------------------------------------------------------- the rules
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


def _word_sequence(words: list[str]) -> str:
    """One character per distinct word, so word n-grams are substrings (hashable, sliced in C)."""
    ids: dict[str, int] = {}
    codes = [ids.setdefault(w, len(ids)) for w in words]
    return "".join([chr(c if c < 0xD800 else c + 0x800) for c in codes])  # skip the surrogate range


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
    def from_params(cls, params: QualityParams, preset: str) -> Rules:
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


def repeated_ngram_chars(seq: str, sizes: list[int], offsets: list[int] | None = None):
    """Yield ``(n, characters in repeated n-grams)`` for each n of ``sizes`` (ascending), as Gopher counts them.

    The same sums as datatrove's ``find_all_duplicate``: scanning left to right, an n-gram seen before counts its
    characters and the scan skips past it. ``seq`` is the text (character n-grams) or one character per word
    (``_word_sequence``) with ``offsets`` the words' cumulative lengths. Only a position whose n-gram occurs more than
    once can start a repeated larger n-gram, so each larger n scans the positions left by the previous one.
    """
    positions: range | list[int] = range(len(seq))
    for n in sizes:
        last = len(seq) - n
        if isinstance(positions, range):
            positions = range(last + 1)
        elif positions and positions[-1] > last:
            positions = [i for i in positions if i <= last]
        grams = [seq[i : i + n] for i in positions]
        counts = Counter(grams)
        if len(counts) == len(grams):
            return  # nothing repeats at this n, so nothing at larger n
        positions = [i for i, g in zip(positions, grams) if counts[g] > 1]
        seen: set[str] = set()
        repeated = next_free = 0
        for i in positions:
            if i < next_free:
                continue
            g = seq[i : i + n]
            if g in seen:
                repeated += n if offsets is None else offsets[i + n] - offsets[i]
                next_free = i + n
            else:
                seen.add(g)
        yield n, repeated


# --------------------------------------------------------------------------------------------- the step
class QualityFilter(BaseFilter):
    name = "quality"

    def __init__(self, params: QualityParams):
        super().__init__()
        self.params = params
        self._rules: dict[str, Rules] = {}

    def rules(self, language: str | None) -> Rules:
        """The rules for a document in ``language`` (its preset, or the fallback preset)."""
        if self.params.preset != "auto":
            name = self.params.preset
        elif language in PRESETS or language in PRESET_ALIASES:
            name = language
        else:
            name = self.params.fallback
        name = PRESET_ALIASES.get(name, name)
        rules = self._rules.get(name)
        if rules is None:
            rules = self._rules[name] = Rules.from_params(self.params, name)
        return rules

    def filter(self, doc) -> bool | tuple[bool, str]:
        return self.rules(doc.metadata.get("language")).check(doc.text)


register_builtin("quality", QualityParams, QualityFilter)
