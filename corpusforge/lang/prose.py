"""Which part of a text is natural language: the text outside its fenced code blocks, and the words of Latin prose
among placeholders, options, identifiers and markup."""

from __future__ import annotations

import re

# A fenced code block (``` … ```, or ``` to the end when the answer was cut off inside one): code is in no
# natural language, LID reads identifiers as anything (SmolLM2's TypeScript answer came out Ukrainian), and code
# repeats itself by nature (not a loop).
CODE_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)

# a word of Latin prose: a run of printable ASCII that is a lower-case or capitalised word, maybe quoted or followed
# by punctuation. Runs with digits, `_ . / : = % { } < >`, inner capitals or all capitals are code, names or markup.
ASCII_RUN = re.compile(r"[!-~]+")
PROSE_WORD = re.compile(r"[\"'(\[]?[A-Z]?[a-z]+(?:'[a-z]+)?[\"'.,;:!?)\]]*")


def prose(text: str) -> str:
    """``text`` without its fenced code blocks: what language ID should read."""
    return CODE_FENCE.sub(" ", text)


def letters(text: str) -> int:
    """Letters of any script in ``text``."""
    return sum(ch.isalpha() for ch in text)


def prose_words(text: str, cap: int | None = None) -> int:
    """Words of Latin prose in ``text`` (see PROSE_WORD), counted up to ``cap``: past it the count decides nothing."""
    n = 0
    for run in ASCII_RUN.finditer(text):
        if PROSE_WORD.fullmatch(run.group()):
            n += 1
            if n == cap:
                break
    return n
