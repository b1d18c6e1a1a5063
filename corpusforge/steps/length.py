"""`length`: keep documents whose visible length lies in [min_chars, max_chars].

Visible length counts what a reader sees as characters: whitespace is not counted, and neither are combining
marks (Thai vowel and tone marks, Indic vowel signs, Latin accents in NFD), so one Thai syllable with a tone mark
is not counted as three. One CJK character counts one.
"""

from __future__ import annotations

import regex
from datatrove.pipeline.filters.base_filter import BaseFilter
from pydantic import Field, model_validator

from corpusforge.config import StrictModel

_NOT_COUNTED = regex.compile(r"[\s\p{M}]")


def visible_length(text: str) -> int:
    return len(text) - len(_NOT_COUNTED.findall(text))


class LengthParams(StrictModel):
    """Keep documents by visible length (no whitespace, no combining marks: CJK and Thai counted sensibly)."""

    min_chars: int = Field(0, ge=0, description="Drop documents shorter than this.")
    max_chars: int | None = Field(None, ge=1, description="Drop documents longer than this.")

    @model_validator(mode="after")
    def _ordered(self):
        if self.max_chars is not None and self.max_chars < self.min_chars:
            raise ValueError(f"max_chars ({self.max_chars}) must be ≥ min_chars ({self.min_chars})")
        return self


class Length(BaseFilter):
    name = "length"

    def __init__(self, params: LengthParams):
        super().__init__()
        self.params = params

    def filter(self, doc) -> bool | tuple[bool, str]:
        n = visible_length(doc.text)
        if n < self.params.min_chars:
            return False, "too_short"
        if self.params.max_chars is not None and n > self.params.max_chars:
            return False, "too_long"
        return True
