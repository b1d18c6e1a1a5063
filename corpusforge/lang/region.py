"""Whose vocabulary a Chinese text uses — Taiwan, Hong Kong or mainland — from OpenCC's phrase tables.

Traditional characters are not Taiwan usage: text converted from Simplified keeps mainland words (`人工智能`,
`數據`, `軟件`; Taiwan writes `人工智慧`, `資料`, `軟體`). OpenCC's regional phrase tables are a lexicon of exactly
that difference, and its converters apply them:

- Taiwan usage: phrases that Taiwan → mainland conversion (`tw2sp`) rewrites beyond its character conversion (`tw2s`);
- Hong Kong usage: the same with `hk2sp` / `hk2s`;
- mainland usage: phrases that mainland → Taiwan conversion (`s2twp`) rewrites beyond its characters (`s2tw`),
  i.e. words Taiwan would write otherwise.

The text is first brought to Traditional characters (`s2t`), so the script does not matter. Each count is the number
of places a conversion changed. The label is the region with most evidence when it has at least ``margin`` times
the next one's; `mixed` otherwise; `none` when no phrase of any table occurs (most short lines).
"""

from __future__ import annotations

import difflib
from typing import Literal

from corpusforge.lang.scripts import opencc_converter

Region = Literal["TW", "HK", "CN", "mixed", "none"]


def _changed_places(before: str, after: str, source: str) -> list[str]:
    """The pieces of ``source`` where ``after`` differs from ``before`` (both conversions of ``source``)."""
    if before == after:
        return []
    ops = difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes()
    # character conversions keep the length: point back into the source, a character either side for context
    text = source if len(before) == len(source) else before
    return [text[max(0, i1 - 1) : i2 + 1] for op, i1, i2, _, _ in ops if op != "equal"]


def region_evidence(text: str) -> dict[str, list[str]]:
    """Places of Taiwan, Hong Kong and mainland usage in ``text`` (see the module docstring)."""
    trad = opencc_converter("s2t").convert(text)
    c = opencc_converter
    return {
        "TW": _changed_places(c("tw2s").convert(trad), c("tw2sp").convert(trad), trad),
        "HK": _changed_places(c("hk2s").convert(trad), c("hk2sp").convert(trad), trad),
        "CN": _changed_places(c("s2tw").convert(trad), c("s2twp").convert(trad), trad),
    }


def region_label(counts: dict[str, int], margin: float) -> str:
    """`TW`, `HK` or `CN` when that region's count is at least ``margin`` times the next one's, `mixed` when none
    is, `none` when all are 0."""
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    (best, n), (_, second) = ranked[0], ranked[1]
    if n == 0:
        return "none"
    return best if n >= margin * second and n > second else "mixed"
