"""Is a generated answer degenerate? A loop, an echo of the prompt, or empty.

A transfer is judged by what the model does, not by which language its bytes are in: a model broken by continual
pretraining often writes the target language fluently — in a loop, or by repeating the question. The scorecard
(`eval scorecard`) and the KD output checks both ask ``degeneration(answer, prompt)`` and count a degenerate answer
as such, never as an answer in some language.

Length is not degeneration: an answer cut off at the token limit is measured like one that ended (it may loop —
a loop is most often what runs into the limit — or it may be a long, genuine answer). Whether a turn ended is a fact
of its own, which each caller reports or filters on by the finish reason (the scorecard's `cut_off` share, KD's
``checks.truncated``).

Units: words in space-separated scripts, single characters in Han, kana, Hangul syllables, Thai, Lao, Khmer,
Myanmar (scripts written without spaces between words), so one measure serves English, Chinese and Thai.
"""

from __future__ import annotations

import re
from collections import Counter
from difflib import SequenceMatcher

from corpusforge.lang.prose import prose
from corpusforge.lang.scripts import UNSPACED_RANGES, char_ranges

# one unit per character of the scripts written without spaces; a word (letters and digits) elsewhere
_UNSPACED = char_ranges(*UNSPACED_RANGES)
_UNIT = re.compile(f"[{_UNSPACED}]|[^\\W_{_UNSPACED}]+")

LOOP_NGRAM = 5  # units per n-gram
LOOP_MIN_UNITS = 12  # shorter answers cannot be told to loop
LOOP_DUPLICATE_SHARE = 0.3  # share of units inside an n-gram seen earlier in the same answer
LOOP_LINE_REPEATS = 3  # the same non-trivial line this many times is a loop whatever its share
ECHO_MIN_UNITS = 8  # a shorter prompt may be answered in its own words ("Hello" → "Hello!") …
ECHO_EXACT_UNITS = 3  # … but not repeated back whole and alone ("你會死" → "你會死？"): that is an echo from 3 units
ECHO_PROMPT_SHARE = 0.9  # the answer holds this much of the prompt in one piece (all of a short one) …
ECHO_ANSWER_SHARE = 0.5  # … and that copy is at least this much of the answer


def units(text: str) -> list[str]:
    return [u.casefold() for u in _UNIT.findall(text)]


def duplicate_share(seq: list[str], n: int = LOOP_NGRAM) -> float:
    """Share of units covered by an n-gram that already occurred earlier in ``seq`` (0 for short sequences)."""
    if len(seq) < n * 2:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    covered = [False] * len(seq)
    for i in range(len(seq) - n + 1):
        gram = tuple(seq[i : i + n])
        if gram in seen:
            for j in range(i, i + n):
                covered[j] = True
        else:
            seen.add(gram)
    return sum(covered) / len(seq)


def _repeated_line(text: str) -> bool:
    lines = [units(line) for line in text.splitlines()]
    counts = Counter(" ".join(line) for line in lines if len(line) >= 4)  # not "algorithm" wrapped three times
    return bool(counts) and counts.most_common(1)[0][1] >= LOOP_LINE_REPEATS


# the same 1–8 characters over and over ("－－－－…", "？？？？…", "!!!!…"): punctuation has no units, so this is
# measured on the characters themselves; long and most of the answer, so a Markdown rule or table is not one
_CHAR_RUN = re.compile(r"(\S{1,8}?)\1{39,}")
CHAR_RUN_SHARE = 0.3


def _character_run(text: str) -> bool:
    dense = "".join(text.split())
    return any(len(m.group(0)) >= CHAR_RUN_SHARE * len(dense) for m in _CHAR_RUN.finditer(dense))


def is_loop(text: str) -> bool:
    text = prose(text)  # code repeats itself by nature: not measured for loops
    if _character_run(text):
        return True
    seq = units(text)
    if len(seq) < LOOP_MIN_UNITS:
        return False
    return _repeated_line(text) or duplicate_share(seq) >= LOOP_DUPLICATE_SHARE


def is_echo(answer: str, prompt: str) -> bool:
    """The answer is mostly the prompt, copied in one piece (the whole question repeated back)."""
    a, p = units(answer), units(prompt)
    if a == p and len(p) >= ECHO_EXACT_UNITS:
        return True
    if not a or len(p) < ECHO_MIN_UNITS:
        return False
    block = SequenceMatcher(None, p, a, autojunk=False).find_longest_match(0, len(p), 0, len(a))
    # an answer in the prompt's own pattern ("What is it like to be a robot?" → "… to be a human?") is not an echo
    whole = block.size == len(p) if len(p) < 20 else block.size >= ECHO_PROMPT_SHARE * len(p)
    return whole and block.size >= ECHO_ANSWER_SHARE * len(a)


DEGENERATIONS = ("loop", "echo", "empty")


def degeneration(answer: str, prompt: str | None = None) -> str | None:
    """The reason an answer is degenerate — ``empty``, ``loop``, ``echo`` — or None for a real answer, whether it
    ended or was cut off at the token limit (the same text is judged the same either way)."""
    if not units(answer):
        return "empty"
    if is_loop(answer):
        return "loop"
    if prompt and is_echo(answer, prompt):
        return "echo"
    return None
