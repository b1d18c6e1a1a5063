"""`normalize`: Unicode normalization, control characters, whitespace, and optional OpenCC script conversion."""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from pydantic import Field, field_validator

from corpusforge.recipe.models import StrictModel
from corpusforge.steps.registry import register_builtin

OPENCC_CONFIGS = (
    "s2t",
    "s2tw",
    "s2twp",
    "s2hk",
    "s2hkp",
    "t2s",
    "tw2s",
    "tw2sp",
    "hk2s",
    "hk2sp",
    "t2tw",
    "t2hk",
    "tw2t",
    "hk2t",
    "t2jp",
    "jp2t",
)

# C0/C1 controls except tab and newline, plus the byte-order mark and the Unicode replacement of NUL by some tools.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u3000]+")  # keep zero-width chars: Thai/Indic text relies on them
_TRAILING = re.compile(r"[ \t]+\n")
_BLANK_LINES = re.compile(r"\n{3,}")


class NormalizeParams(StrictModel):
    """Unicode normalization, control-character removal, whitespace cleanup and optional OpenCC conversion."""

    form: Literal["NFC", "NFKC", "none"] = Field(
        "NFC",
        description="Unicode normal form. NFKC also folds full-width Latin letters and digits (common in CJK web text).",
    )
    control_chars: bool = Field(True, description="Remove control characters (NUL, C0/C1, BOM); keeps \\n and \\t.")
    whitespace: bool = Field(
        True,
        description="Collapse runs of spaces (incl. ideographic space), strip line ends, keep at most one blank line.",
    )
    opencc: str | None = Field(
        None, description="OpenCC conversion, e.g. `s2twp` (Simplified → Taiwan Traditional with phrases), `t2s`."
    )

    @field_validator("opencc")
    @classmethod
    def _known_config(cls, value: str | None) -> str | None:
        if value is None:
            return value
        value = value.removesuffix(".json")
        if value not in OPENCC_CONFIGS:
            import difflib

            close = difflib.get_close_matches(value, OPENCC_CONFIGS, n=1)
            hint = f" — did you mean '{close[0]}'?" if close else f" (one of: {', '.join(OPENCC_CONFIGS)})"
            raise ValueError(f"unknown OpenCC conversion '{value}'{hint}")
        return value


class Normalize(PipelineStep):
    type = "✂️ - MAP"
    name = "normalize"

    def __init__(self, params: NormalizeParams):
        super().__init__()
        self.params = params
        self._converter = None

    @property
    def converter(self):
        if self._converter is None and self.params.opencc:
            import opencc

            self._converter = opencc.OpenCC(f"{self.params.opencc}.json")
        return self._converter

    def __getstate__(self):
        return {**self.__dict__, "_converter": None}

    def normalize(self, text: str) -> str:
        p = self.params
        if p.control_chars:
            cleaned = _CONTROL.sub("", text)
            if len(cleaned) != len(text):
                self.stat_update("removed_control_chars")
            text = cleaned
        if p.form != "none":
            text = unicodedata.normalize(p.form, text)
        if p.whitespace:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            text = _SPACES.sub(" ", text)
            text = _TRAILING.sub("\n", text)
            text = _BLANK_LINES.sub("\n\n", text).strip()
        if self.converter is not None:
            text = self.converter.convert(text)
        return text

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("total")
            with self.track_time():
                doc.text = self.normalize(doc.text)
            if not doc.text:
                self.stat_update("dropped", "dropped_empty_after_normalize")
                continue
            self.stat_update("forwarded")
            yield doc


register_builtin("normalize", NormalizeParams, Normalize)
