"""The script census: which writing systems a text uses, counted once, before any model is asked.

A document with no Han character cannot be Chinese, one that is mostly Thai (or Greek, Tamil, Khmer… letters of a
script only one language writes) is that language, and Chinese written
with a few Latin identifiers (`只使用 IPv4 位址`, `setfscreatecon () 失敗`) is still Chinese. The census counts the
letters of each script that settles a language (Han, kana, Hangul, Thai) against the words of Latin *prose*:
placeholders (`%s`, `%(name)s`, `{0}`), options (`--full`), identifiers (`snake_case`, `camelCase`, `a.b`, `f()`),
acronyms (`HTML`), paths, URLs, markup and anything with a digit are not prose, and do not count.

Chinese is split by the characters only one script writes (CC-CEDICT character sets, via hanzidentifier), then,
where none does, by OpenCC's phrase tables (`什么` is Simplified usage, `什麼` Traditional): `zh_Hant`, `zh_Hans`, or
`zh` when the text is written identically in both.

Also here: the scripts written without spaces between words (`unspaced`: Han, kana, Hangul, Thai, Lao, Khmer,
Myanmar), and OpenCC's converters (`opencc_converter`, one per configuration and process).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np

from corpusforge.lang.prose import prose_words

# code-point ranges of the scripts the census counts
HAN_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))
KANA_RANGES = ((0x3005, 0x3005), (0x3040, 0x309F), (0x30A0, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F))
HANGUL_RANGES = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF))
# scripts that only one lid.176 language writes: a text mostly in one of them is that language
ALPHABETS = {
    "th": ((0x0E01, 0x0E5B),),  # Thai
    "el": ((0x0370, 0x03FF), (0x1F00, 0x1FFF)),  # Greek
    "hy": ((0x0531, 0x058A),),  # Armenian
    "lo": ((0x0E81, 0x0EDF),),  # Lao
    "km": ((0x1780, 0x17FF),),  # Khmer
    "my": ((0x1000, 0x109F),),  # Myanmar
    "si": ((0x0D80, 0x0DFF),),  # Sinhala
    "ta": ((0x0B80, 0x0BFF),),  # Tamil
    "te": ((0x0C00, 0x0C7F),),  # Telugu
    "kn": ((0x0C80, 0x0CFF),),  # Kannada
    "ml": ((0x0D00, 0x0D7F),),  # Malayalam
    "gu": ((0x0A80, 0x0AFF),),  # Gujarati
    "pa": ((0x0A00, 0x0A7F),),  # Gurmukhi
    "or": ((0x0B00, 0x0B7F),),  # Oriya
}
THAI_RANGES = ALPHABETS["th"]
# letters of scripts that several languages write (fastText decides): a few Han or Greek letters in them settle nothing
OTHER_LETTER_RANGES = (
    (0x00C0, 0x024F),  # Latin-1 and Latin Extended letters (a few signs in there too)
    (0x1E00, 0x1EFF),
    (0x0400, 0x052F),  # Cyrillic
    (0x0590, 0x05FF),  # Hebrew
    (0x0600, 0x06FF),  # Arabic
    (0x0750, 0x077F),
    (0x08A0, 0x08FF),
    (0xFB50, 0xFDFF),
    (0xFE70, 0xFEFF),
    (0x0900, 0x09FF),  # Devanagari, Bengali
    (0x0F00, 0x0FFF),  # Tibetan
    (0x10A0, 0x10FF),  # Georgian
    (0x1200, 0x137F),  # Ethiopic
)
SCRIPT_NAMES = {
    "th": "thai",
    "el": "greek",
    "hy": "armenian",
    "lo": "lao",
    "km": "khmer",
    "my": "myanmar",
    "si": "sinhala",
    "ta": "tamil",
    "te": "telugu",
    "kn": "kannada",
    "ml": "malayalam",
    "gu": "gujarati",
    "pa": "gurmukhi",
    "or": "oriya",
}


def char_ranges(*ranges: tuple[int, int]) -> str:
    """The inside of a regex character class holding these code-point ranges (`lo-hi` each)."""
    return "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in ranges)


def char_class(*ranges: tuple[int, int]) -> re.Pattern:
    return re.compile(f"[{char_ranges(*ranges)}]")


HAN, KANA = char_class(*HAN_RANGES), char_class(*KANA_RANGES)
HANGUL, THAI = char_class(*HANGUL_RANGES), char_class(*THAI_RANGES)
# any character of a script the census settles: the one search a document without any of them costs
SETTLING = char_class(*HAN_RANGES, *KANA_RANGES, *HANGUL_RANGES, *(r for rs in ALPHABETS.values() for r in rs))
# scripts written without spaces between words, where a unit of text is a character: Thai, Lao, Khmer, Myanmar, kana,
# Han (Extension A, the unified and the compatibility ideographs), Hangul syllables
UNSPACED_RANGES = (
    (0x0E00, 0x0E7F),
    (0x0E80, 0x0EFF),
    (0x1780, 0x17FF),
    (0x1000, 0x109F),
    (0x3040, 0x30FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xAC00, 0xD7AF),
)
UNSPACED = char_class(*UNSPACED_RANGES)

# languages the census alone can settle, and the script each needs
SCRIPT_LANGUAGES = {"zh_Hant": "han", "zh_Hans": "han", "zh": "han", "ja": "han/kana", "ko": "hangul"}
SCRIPT_LANGUAGES.update({lang: lang for lang in ALPHABETS})

# the census's classes of code points, counted in one pass through a lookup table: then one per alphabet
OTHER, LATIN, OTHER_LETTER, HANGUL_LETTER, KANA_LETTER, HAN_SHARED, HAN_TRAD, HAN_SIMP = range(8)
ALPHABET_CLASS = {lang: 8 + i for i, lang in enumerate(ALPHABETS)}
N_CLASSES = 8 + len(ALPHABETS)
_TABLE_SIZE = 0x31350  # up to the end of CJK Extension G; anything above is OTHER


@dataclass(frozen=True)
class Census:
    han: int = 0
    kana: int = 0
    hangul: int = 0
    prose_words: int = 0
    traditional_only: int = 0  # Han characters only Traditional Chinese writes
    simplified_only: int = 0
    alphabet: str | None = None  # the single-language script with most letters, and their count
    alphabet_letters: int = 0
    other_letters: int = 0  # of Cyrillic, Arabic, Devanagari, accented Latin… (see OTHER_LETTER_RANGES)

    @property
    def cjk(self) -> int:
        return self.han + self.kana + self.hangul


EMPTY = Census()


@cache
def _table() -> np.ndarray:
    # imported with the first table: a corpus without Han, kana, Hangul or Thai never needs its character sets
    from hanzidentifier import helpers

    table = np.zeros(_TABLE_SIZE + 1, dtype=np.uint8)
    for cls, ranges in (
        (OTHER_LETTER, OTHER_LETTER_RANGES),
        *((ALPHABET_CLASS[lang], ranges) for lang, ranges in ALPHABETS.items()),
        (HAN_SHARED, HAN_RANGES),
        (KANA_LETTER, KANA_RANGES),
        (HANGUL_LETTER, HANGUL_RANGES),
    ):
        for lo, hi in ranges:
            table[lo : hi + 1] = cls
    table[ord("A") : ord("Z") + 1] = table[ord("a") : ord("z") + 1] = LATIN
    for chars, cls in (
        (helpers.TRADITIONAL_CHARACTERS - helpers.SIMPLIFIED_CHARACTERS, HAN_TRAD),
        (helpers.SIMPLIFIED_CHARACTERS - helpers.TRADITIONAL_CHARACTERS, HAN_SIMP),
    ):
        points = np.fromiter((ord(c) for c in chars if len(c) == 1 and ord(c) < _TABLE_SIZE), dtype=np.int64)
        table[points[table[points] == HAN_SHARED]] = cls
    table[_TABLE_SIZE] = OTHER
    return table


def _class_counts(text: str) -> np.ndarray:
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    return np.bincount(_table()[np.minimum(points, _TABLE_SIZE)], minlength=N_CLASSES)


def census(text: str) -> Census:
    """Counts of the settling scripts' letters and of Latin prose words, in one pass over the text (all zero, at
    the cost of one search, when it has no Han, kana, Hangul or Thai character)."""
    if SETTLING.search(text) is None:
        return EMPTY
    counts = _class_counts(text)
    trad, simp = int(counts[HAN_TRAD]), int(counts[HAN_SIMP])
    han = int(counts[HAN_SHARED]) + trad + simp
    kana, hangul = int(counts[KANA_LETTER]), int(counts[HANGUL_LETTER])
    top = 8 + int(np.argmax(counts[8:]))
    alphabet, letters = (list(ALPHABETS)[top - 8], int(counts[top])) if counts[top] else (None, 0)
    # prose words matter up to the count that would outweigh the settling letters (see `settle`)
    cap = max(han + kana + hangul, letters // 2) + 1
    return Census(
        han=han,
        kana=kana,
        hangul=hangul,
        prose_words=prose_words(text, cap) if counts[LATIN] else 0,
        traditional_only=trad,
        simplified_only=simp,
        alphabet=alphabet,
        alphabet_letters=letters,
        other_letters=int(counts[OTHER_LETTER]),
    )


def chinese_script_counts(text: str) -> tuple[int, int]:
    """(Traditional-only, Simplified-only) characters of ``text``."""
    counts = _class_counts(text)
    return int(counts[HAN_TRAD]), int(counts[HAN_SIMP])


def other_script_chars(text: str, script: str) -> list[str]:
    """Characters of ``text`` that only the other Chinese script uses (Simplified-only ones in a zh_Hant text)."""
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    other = HAN_SIMP if script == "zh_Hant" else HAN_TRAD
    return [chr(p) for p in points[_table()[np.minimum(points, _TABLE_SIZE)] == other]]


# the OpenCC conversions a recipe may name (each `<name>.json` in OpenCC)
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


@cache
def opencc_converter(config: str):
    """One OpenCC converter per configuration (`s2t`, `tw2sp`, …), built once per process."""
    import opencc  # a native library, needed only where Chinese is converted or its usage counted

    return opencc.OpenCC(f"{config}.json")


def _changed(text: str, converted: str) -> int:
    if len(text) == len(converted):
        return sum(a != b for a, b in zip(text, converted))
    return abs(len(text) - len(converted)) + 1


def chinese_usage_counts(text: str) -> tuple[int, int]:
    """(Traditional, Simplified) usage by OpenCC's phrase-aware conversion: characters that Traditional → Simplified
    changes, and that Simplified → Traditional changes. Catches what single characters cannot: `什么` is two
    characters both scripts have, but Traditional writes `什麼`."""
    return _changed(text, opencc_converter("t2s").convert(text)), _changed(text, opencc_converter("s2t").convert(text))


def chinese_label(traditional_only: int, simplified_only: int) -> str:
    """The label of Chinese text with these counts of Traditional-only and Simplified-only characters: the majority's
    script, or `zh` on a tie (none of either, most often)."""
    if traditional_only > simplified_only:
        return "zh_Hant"
    return "zh_Hans" if simplified_only > traditional_only else "zh"


def chinese_script(text: str) -> str:
    """`zh_Hant`, `zh_Hans`, or `zh` when the text has no character that only one script uses."""
    return chinese_label(*chinese_script_counts(text))


def unspaced(text: str) -> bool:
    """Whether most letters of ``text`` are of a script written without spaces between words."""
    letters = text.replace(" ", "")
    return bool(letters) and len(UNSPACED.findall(letters)) * 2 >= len(letters)


def settle(text: str, counts: Census) -> tuple[str, float, str] | None:
    """(language, score, reason) where the script settles it, else None (fastText must decide).

    The settling script with more letters leads: Han, kana and Hangul together, or the alphabet with most letters
    (Thai, Greek, Tamil… one language each). CJK letters decide when they are at least as many as the Latin prose
    words and half the letters of other scripts (a CJK letter carries about a word); an alphabet's letters
    when they are at least twice the prose words and more than the other scripts' letters. Hangul → ko; kana that is at least
    10% of the Han and kana → ja; Han → Chinese, split by script. Some kana below 10% is left to fastText. The score
    is the share of the settling letters among them and the prose words; for Chinese with characters of both scripts,
    times 1 − minority / majority (2 Traditional-only and 1 Simplified-only: halved, below the default `min_score`)."""
    words = counts.prose_words
    letters, others = counts.alphabet_letters, counts.other_letters
    if letters > counts.cjk:  # the script with more letters leads (Thai navigation with a `中文` link is Thai)
        if letters >= 2 * words and letters > others:
            return counts.alphabet, letters / (letters + words), f"script: {SCRIPT_NAMES[counts.alphabet]}"
        return None
    if counts.cjk and counts.cjk >= words + others / 2:
        score = counts.cjk / (counts.cjk + words)
        if counts.hangul > counts.han + counts.kana:
            return "ko", score, "script: hangul"
        if counts.kana >= 0.1 * (counts.han + counts.kana) and counts.kana:
            return "ja", score, "script: kana"
        if counts.kana:
            return None
        trad, simp = counts.traditional_only, counts.simplified_only
        # characters of both scripts: the majority's label, its score cut by the minority's share of it
        if trad > simp:
            return "zh_Hant", score * (1 - simp / trad), f"script: traditional-only {trad} > simplified-only {simp}"
        if simp > trad:
            return "zh_Hans", score * (1 - trad / simp), f"script: simplified-only {simp} > traditional-only {trad}"
        trad, simp = chinese_usage_counts(text)  # no character decides: ask the phrase tables
        if trad > simp:
            return "zh_Hant", score * (1 - simp / trad), f"script: traditional usage {trad} > simplified {simp}"
        if simp > trad:
            return "zh_Hans", score * (1 - trad / simp), f"script: simplified usage {simp} > traditional {trad}"
        return "zh", score, "script: han, written alike in both scripts"
    return None


def can_hold(counts: Census, languages: frozenset[str]) -> bool:
    """Whether a text with these counts could be one of ``languages`` (all of them script languages)."""
    needs = {SCRIPT_LANGUAGES[lang] for lang in languages}
    return (
        ("han" in needs and counts.han > 0)
        or ("han/kana" in needs and counts.han + counts.kana > 0)
        or ("hangul" in needs and counts.hangul > 0)
        or counts.alphabet in needs
    )
