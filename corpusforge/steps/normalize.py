"""`normalize`: Unicode normalization, control characters, whitespace, and optional OpenCC script conversion."""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from pydantic import Field, field_validator

from corpusforge.config import StrictModel
from corpusforge.errors import did_you_mean
from corpusforge.lang.scripts import OPENCC_CONFIGS, opencc_converter

# C0/C1 controls except tab and newline, the byte-order mark, and code points that are not characters: lone
# surrogates (broken UTF-16 that JSON decoders let through) and the noncharacters U+FDD0–U+FDEF, U+xFFFE/U+xFFFF.
_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    + "".join(f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(1, 17))
    + "]"
)
# Runs of ASCII spaces, tabs, no-break and typographic spaces. Not U+3000 (the ideographic space is part of CJK
# typography: a paragraph indent, the gap in a Japanese name) and not the zero-width characters Thai/Indic rely on.
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a]+")
# Full-width Latin letters and digits (ＡＢＣ１２３), folded by `width: fold_alnum`; the full-width punctuation of the
# same block (，：？！（）；) is Chinese and Japanese orthography and is never folded.
_FULLWIDTH_ALNUM = {
    c: c - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A)) for c in range(r[0], r[1] + 1)
}
_TRAILING = re.compile(r"[ \t]+\n")
_BLANK_LINES = re.compile(r"\n{3,}")


class NormalizeParams(StrictModel):
    """Unicode normalization, control-character removal, whitespace cleanup and optional OpenCC conversion."""

    form: Literal["NFC", "NFKC", "none"] = Field(
        "NFC",
        description="Unicode normal form. NFC (the default) changes no character's appearance. NFKC rewrites "
        "compatibility characters, including all full-width punctuation into ASCII (`你好，世界！` → `你好,世界!`): "
        "it corrupts Chinese and Japanese text, and a model trained on it writes that way. For full-width "
        "letters and digits only, use `width: fold_alnum`.",
    )
    width: Literal["keep", "fold_alnum"] = Field(
        "keep",
        description="`fold_alnum`: full-width Latin letters and digits become ASCII (`ＡＢＣ１２３` → `ABC123`); "
        "full-width punctuation is kept (`，：？！（）；` are orthography).",
    )
    control_chars: bool = Field(
        True,
        description="Remove control characters (NUL, C0/C1, BOM) and code points that are not characters (lone "
        "surrogates, noncharacters); keeps \\n and \\t.",
    )
    whitespace: bool = Field(
        True,
        description="Collapse runs of spaces and tabs (not the ideographic space U+3000), strip line ends, keep at "
        "most one blank line.",
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
            hint = did_you_mean(value, OPENCC_CONFIGS, otherwise=f" (one of: {', '.join(OPENCC_CONFIGS)})")
            raise ValueError(f"unknown OpenCC conversion '{value}'{hint}")
        return value


class Normalize(PipelineStep):
    type = "✂️ - MAP"
    name = "normalize"

    def __init__(self, params: NormalizeParams):
        super().__init__()
        self.params = params

    @property
    def converter(self):
        return opencc_converter(self.params.opencc) if self.params.opencc else None

    def normalize(self, text: str) -> str:
        p = self.params
        if p.control_chars:
            cleaned = _CONTROL.sub("", text)
            if len(cleaned) != len(text):
                self.stat_update("removed_control_chars")
            text = cleaned
        if p.form != "none":
            text = unicodedata.normalize(p.form, text)
        if p.width == "fold_alnum":
            text = text.translate(_FULLWIDTH_ALNUM)
        if p.whitespace:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            text = _SPACES.sub(" ", text)
            text = _TRAILING.sub("\n", text)
            text = _BLANK_LINES.sub("\n\n", text).strip(" \n")  # not str.strip(): U+3000 is kept
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
