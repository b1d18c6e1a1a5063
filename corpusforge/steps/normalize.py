"""`normalize`: mojibake repair (optional, ftfy), Unicode normalization, control characters, whitespace, and optional
OpenCC script conversion.

`fix_encoding` runs ftfy's encoding repair and nothing of ftfy that rewrites well-formed text. ftfy's own defaults
fold full-width punctuation (`fix_character_width`: `你好，世界！` → `你好,世界!`) and uncurl quotes, and change 12.8% of
143,589 real clean texts (the tests' Debian gettext catalogs in zh_TW/zh_CN/th/ja and their English originals, the
chatterbot corpus in 12 languages, Django's and Sphinx's catalogs in 7, the standard library's docstrings); datatrove's
`FTFYFormatter` (FineWeb-2's) keeps width and quotes but unescapes HTML entities and drops terminal escapes and
control characters, 63 of them (0.044%: `請將 & 轉換為 &amp;` loses its point). The settings here change none.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

import ftfy
import ftfy.bad_codecs  # noqa: F401  (registers the sloppy-windows-1252 codec)
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

# ftfy, encoding repair only: undo UTF-8 read as Windows-1252/Latin-1 (and the other single-byte codepages ftfy
# knows: 1250, 1251, MacRoman, cp437, ...), with its sub-fixes for the same damage: a lost 0xA0 byte, lossy
# sequences, mixed segments (without `explain`, ftfy applies its own defaults for these three, which these are); C1
# controls that were cp1252 punctuation; UTF-16 surrogate pairs. Off: everything that rewrites well-formed text —
# HTML entities (`&amp;` may be the content), terminal escapes, control characters (`control_chars` decides),
# ligatures, character width (full-width punctuation is orthography), curly quotes, line breaks (`whitespace`
# decides), and normalization (`form` decides, after).
FTFY_CONFIG = ftfy.TextFixerConfig(
    unescape_html=False,
    remove_terminal_escapes=False,
    fix_encoding=True,
    restore_byte_a0=True,
    replace_lossy_sequences=True,
    decode_inconsistent_utf8=True,
    fix_c1_controls=True,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    fix_surrogates=True,
    remove_control_chars=False,
    normalization=None,
    explain=False,
)


def _single_byte_decodable(text: str) -> bool:
    """Whether the whole text could be UTF-8 bytes shown in one single-byte codepage (every character in it)."""
    for encoding in ("sloppy-windows-1252", "latin-1"):
        try:
            text.encode(encoding)
            return True
        except UnicodeEncodeError:
            continue
    return False


def fix_encoding(text: str) -> str:
    """ftfy's mojibake repair (`FTFY_CONFIG`), the whole document at once where all of it fits one codepage.

    ftfy's `fix_text` judges line by line, and a short line of mangled CJK (`å¹´` for 年, `æ›´æ–°` for 更新) looks
    like plausible Latin text on its own: of real zh_TW/ja/zh_CN documents of five lines read as Windows-1252, 1.5–2%
    stay broken. A page decoded with the wrong charset is mojibake from end to end, and judged whole all of them are
    repaired (tests/steps/test_normalize_encoding.py); a document that also holds well-formed text outside the
    codepage cannot be that, and is fixed line by line."""
    if len(text) <= FTFY_CONFIG.max_decode_length and _single_byte_decodable(text):
        return ftfy.fix_and_explain(text, FTFY_CONFIG).text
    return ftfy.fix_text(text, FTFY_CONFIG)


class NormalizeParams(StrictModel):
    """Mojibake repair (optional), Unicode normalization, control-character removal, whitespace cleanup and optional
    OpenCC conversion."""

    fix_encoding: bool = Field(
        False,
        description="Repair mojibake with ftfy: UTF-8 that was read as Windows-1252 or Latin-1 (`Ã©` → `é`, "
        "`æ—¥æœ¬` → `日本`), the usual damage of web text. Encoding repair only: full-width punctuation, curly quotes, "
        "HTML entities and ligatures are left as they are. Runs first (the C1 controls of mangled CJK are the bytes "
        "it needs). Off by default: clean sources do not need it; turn it on for web crawls.",
    )
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
        if p.fix_encoding:
            fixed = fix_encoding(text)
            if fixed != text:
                self.stat_update("count_fixed_encoding")
            text = fixed
        if p.control_chars:
            cleaned = _CONTROL.sub("", text)
            if len(cleaned) != len(text):
                self.stat_update("count_removed_control_chars")
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
