"""Tokenizer fertility per language: tokens per visible character, tokens per word, byte and unknown-token shares.

A "word" depends on the script, decided per run of text rather than by the language label (mixed text is common):

- whitespace-delimited scripts (unit `spaced`): a whitespace-separated run holding a letter or a digit;
- Han, Hiragana, Katakana (unit `CJK char`): each character is a word (Chinese and Japanese put no space between
  words, and a dictionary segmenter would make the figure depend on its dictionary);
- Thai (unit `newmm`): words from pythainlp's dictionary-based `newmm` segmenter when pythainlp is installed;
- Lao, Khmer, Myanmar (and Thai without pythainlp): no word boundary we can trust. A language whose visible
  characters are more than 1% such runs gets no per-word figure, with the reason in ``note``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import cache

import numpy as np
import regex

from corpusforge.eval.documents import Doc
from corpusforge.eval.vocab.tokenizer import BYTES, N_KINDS, UNK, TokenizerView, tokenizer_view

# One match per CJK character, per Thai run, per run of another unsegmented script.
_RUNS = regex.compile(
    r"(?P<cjk>[\p{Han}\p{Hiragana}\p{Katakana}])|(?P<thai>\p{Thai}+)|(?P<other>[\p{Lao}\p{Khmer}\p{Myanmar}]+)"
)
_WORDLIKE = regex.compile(r"[\p{L}\p{N}]")
_WHITESPACE = regex.compile(r"\s+")
UNSEGMENTED_LIMIT = 0.01
NO_THAI_SEGMENTER = (
    "Thai writes no spaces between words and pythainlp (its newmm word segmenter) is not installed: "
    "pip install 'corpusforge[vocab]'; tokens per character is the figure to compare"
)
NO_SEGMENTER = (
    "Lao, Khmer and Myanmar write no spaces between words and no segmenter is used; compare tokens per character"
)


@cache
def thai_segmenter() -> Callable[[str], list[str]] | None:
    try:
        from pythainlp.tokenize import word_tokenize
    except ImportError:
        return None
    return lambda text: word_tokenize(text, engine="newmm", keep_whitespace=False)


@dataclass
class WordCount:
    spaced: int = 0
    cjk: int = 0
    thai: int = 0
    unsegmented_chars: int = 0
    thai_unsegmented: bool = False

    def add(self, text: str, segment_thai: Callable[[str], list[str]] | None) -> None:
        for chunk in text.split():
            pos = 0
            for m in _RUNS.finditer(chunk):
                if m.start() > pos and _WORDLIKE.search(chunk, pos, m.start()):
                    self.spaced += 1
                pos = m.end()
                if m.group("cjk"):
                    self.cjk += 1
                elif m.group("thai"):
                    if segment_thai is None:
                        self.unsegmented_chars += len(m.group())
                        self.thai_unsegmented = True
                    else:
                        self.thai += sum(1 for w in segment_thai(m.group()) if _WORDLIKE.search(w))
                else:
                    self.unsegmented_chars += len(m.group())
            if pos < len(chunk) and _WORDLIKE.search(chunk, pos):
                self.spaced += 1

    @property
    def total(self) -> int:
        return self.spaced + self.cjk + self.thai

    @property
    def unit(self) -> str:
        counts = {"spaced": self.spaced, "CJK char": self.cjk, "newmm": self.thai}
        return max(counts, key=counts.get)


@dataclass
class LanguageFertility:
    language: str
    docs: int = 0
    chars: int = 0
    tokens: int = 0
    byte_tokens: int = 0
    unk_tokens: int = 0
    words: int | None = None
    word_unit: str = ""
    note: str | None = None
    _words: WordCount = field(default_factory=WordCount, repr=False)

    @property
    def tokens_per_char(self) -> float:
        return self.tokens / self.chars if self.chars else float("nan")

    @property
    def tokens_per_word(self) -> float | None:
        return self.tokens / self.words if self.words else None

    @property
    def byte_share(self) -> float:
        return self.byte_tokens / self.tokens if self.tokens else 0.0

    @property
    def unk_share(self) -> float:
        return self.unk_tokens / self.tokens if self.tokens else 0.0

    def _close(self) -> None:
        words = self._words
        if words.unsegmented_chars > UNSEGMENTED_LIMIT * self.chars:
            self.words, self.word_unit = None, "undefined"
            self.note = NO_THAI_SEGMENTER if words.thai_unsegmented else NO_SEGMENTER
        else:
            self.words, self.word_unit = words.total, words.unit

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        out.update(
            tokens_per_char=round(self.tokens_per_char, 4),
            tokens_per_word=None if self.tokens_per_word is None else round(self.tokens_per_word, 4),
            byte_share=round(self.byte_share, 4),
            unk_share=round(self.unk_share, 4),
        )
        return out


@dataclass
class FertilityReport:
    tokenizer: str
    vocab_size: int
    byte_level: bool
    languages: dict[str, LanguageFertility]

    def to_dict(self) -> dict:
        return {
            "tokenizer": self.tokenizer,
            "vocab_size": self.vocab_size,
            "byte_level": self.byte_level,
            "languages": {k: v.to_dict() for k, v in self.languages.items()},
        }


def measure_fertility(
    tokenizer: TokenizerView | str, docs: Iterable[Doc], batch_size: int = 256, segment_words: bool = True
) -> FertilityReport:
    """Fertility of ``tokenizer`` on ``docs``, grouped by ``Doc.language`` (None → ``unknown``).

    Byte tokens are SentencePiece byte-fallback pieces, or for byte-level BPE tokens that are not whole UTF-8
    characters. ``segment_words=False`` skips word counting (Thai segmentation is the slow part).
    """
    view = tokenizer_view(tokenizer) if isinstance(tokenizer, str) else tokenizer
    segment_thai = thai_segmenter() if segment_words else None
    stats: dict[str, LanguageFertility] = {}
    batch: list[Doc] = []

    def flush() -> None:
        for doc, ids in zip(batch, view.encode_batch([d.text for d in batch])):
            lang = doc.language or "unknown"
            s = stats.get(lang) or stats.setdefault(lang, LanguageFertility(lang))
            kinds = np.bincount(view.kinds[np.asarray(ids, dtype=np.int64)], minlength=N_KINDS) if ids else None
            s.docs += 1
            s.chars += len(_WHITESPACE.sub("", doc.text))
            s.tokens += len(ids)
            if kinds is not None:
                s.byte_tokens += int(kinds[BYTES])
                s.unk_tokens += int(kinds[UNK])
            if segment_words:
                s._words.add(doc.text, segment_thai)
        batch.clear()

    for doc in docs:
        batch.append(doc)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    for s in stats.values():
        if segment_words:
            s._close()
        else:
            s.word_unit, s.note = "not counted", "word counting was switched off"
    ordered = dict(sorted(stats.items(), key=lambda kv: -kv[1].chars))
    return FertilityReport(view.name, len(view), view.byte_level, ordered)
