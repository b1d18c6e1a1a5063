"""`zh_region`: label whose vocabulary a Chinese text uses — Taiwan, Hong Kong or mainland (`lang.region`: OpenCC's
regional phrase tables) — and keep the regions a recipe asks for. A text without Han characters gets no label and is
never dropped.
"""

from __future__ import annotations

from datatrove.pipeline.filters.base_filter import BaseFilter
from pydantic import Field

from corpusforge.config import StrictModel
from corpusforge.lang.region import Region, region_evidence, region_label
from corpusforge.lang.scripts import HAN

EXAMPLES = 3  # phrases kept per region as evidence in the metadata


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
