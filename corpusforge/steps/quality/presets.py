"""The `quality` presets: each preset's thresholds, and the language codes that share a preset."""

from __future__ import annotations

from typing import Any

from corpusforge.lang.lexicon import BOILERPLATE, SENTENCE_END, STOP_WORDS

# Gopher (Rae et al. 2021, table A1), C4 (Raffel et al. 2020) and FineWeb (Penedo et al. 2024) values for spaced
# languages; for character units, the word-based numbers are rescaled (a Chinese word is 1-2 characters, a Thai word
# about 4 code points) and checked on real translated prose (tests/steps/test_quality.py).
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
