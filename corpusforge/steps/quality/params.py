"""`QualityParams`: the `quality` step's recipe schema; each field's description lists the presets' values."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from corpusforge.config import StrictModel
from corpusforge.errors import did_you_mean
from corpusforge.lang.names import LANGUAGE_ALIASES
from corpusforge.steps.quality.presets import DEFAULTS, PRESET_ALIASES, PRESET_NAMES, PRESETS
from corpusforge.steps.quality.rules import RULES


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

        choices = (["auto"] if info.field_name == "preset" else []) + PRESET_NAMES
        raise ValueError(
            f"unknown {info.field_name} '{name}'{did_you_mean(name, PRESET_NAMES, LANGUAGE_ALIASES)}"
            f" (known: {', '.join(choices)}; other spaced languages use `default`)"
        )

    @field_validator("skip")
    @classmethod
    def _known_rules(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in RULES or name == "empty":
                hint = did_you_mean(name, RULES)
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
