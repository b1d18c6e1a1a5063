"""`zh_region`: whose vocabulary a Chinese text uses — Taiwan, Hong Kong or mainland — from OpenCC's phrase tables.

Traditional characters are not Taiwan usage: text converted from Simplified keeps mainland words (`人工智能`,
`數據`, `軟件`; Taiwan writes `人工智慧`, `資料`, `軟體`). OpenCC's regional phrase tables are a lexicon of exactly
that difference, and its converters apply them:

- Taiwan usage: phrases that Taiwan → mainland conversion (`tw2sp`) rewrites beyond its character conversion (`tw2s`);
- Hong Kong usage: the same with `hk2sp` / `hk2s`;
- mainland usage: phrases that mainland → Taiwan conversion (`s2twp`) rewrites beyond its characters (`s2tw`),
  i.e. words Taiwan would write otherwise.

The text is first brought to Traditional characters (`s2t`), so the script does not matter. Each count is the number
of places a conversion changed. The label is the region with most evidence when it has at least ``margin`` times
the next one's; `mixed` otherwise; `none` when no phrase of any table occurs (most short lines). A text without Han
characters gets no label.
"""

from __future__ import annotations

import difflib
from typing import Literal

from datatrove.pipeline.filters.base_filter import BaseFilter
from pydantic import Field

from corpusforge.config import StrictModel
from corpusforge.steps.scripts import HAN, opencc_converter

Region = Literal["TW", "HK", "CN", "mixed", "none"]
EXAMPLES = 3  # phrases kept per region as evidence in the metadata


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
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    (best, n), (_, second) = ranked[0], ranked[1]
    if n == 0:
        return "none"
    return best if n >= margin * second and n > second else "mixed"


class RegionParams(StrictModel):
    """Taiwan / Hong Kong / mainland vocabulary of Chinese text (OpenCC phrase tables): writes `zh_region` and
    `zh_region_evidence` (counts and examples); `keep` drops the rest."""

    keep: list[Region] | None = Field(
        None,
        description="Labels to keep, e.g. `[TW, none]` for a Taiwan corpus that keeps text with no regional phrase "
        "(most short lines). Omit to annotate only. Text without Han characters is never dropped.",
    )
    margin: float = Field(
        2.0, ge=1.0, description="A region wins when its evidence is at least this many times the next one's."
    )
    max_chars: int = Field(20_000, ge=100, description="Score the first N characters.")


class ZhRegion(BaseFilter):
    name = "zh_region"

    def __init__(self, params: RegionParams):
        super().__init__()
        self.params = params
        self.keep = frozenset(params.keep) if params.keep is not None else None

    def filter(self, doc) -> bool | tuple[bool, str]:
        text = doc.text[: self.params.max_chars]
        if HAN.search(text) is None:
            return True
        places = region_evidence(text)
        counts = {region: len(found) for region, found in places.items()}
        label = region_label(counts, self.params.margin)
        doc.metadata["zh_region"] = label
        doc.metadata["zh_region_evidence"] = {
            **counts,
            "examples": {region: found[:EXAMPLES] for region, found in places.items() if found},
        }
        if self.keep is not None and label not in self.keep:
            return False, f"region_{label.lower()}"
        return True
