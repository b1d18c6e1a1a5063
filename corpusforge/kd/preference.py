"""Preference pairs by language adherence: the score of one answer, the bar a `chosen` answer must pass, and which
two of a prompt's answers make its pair. The findings are the scorecard's (``lang/fidelity.py``,
``lang/degeneration.py``); this module only weighs them.

**Score** (``score``): ``-Σ weight × measure`` over the answer's findings, each measure between 0 and 1, so 0 is an
answer with no finding. Each finding is also written as a reason:

- ``loop``, ``echo``, ``empty`` — degenerate: the answer's only finding, measure 1, so it scores
  ``-weights.degenerate``, which the configuration keeps above the sum of the other weights (always the worst);
- ``cut_off`` — the answer ran into ``max_tokens``; measure 1;
- ``language:X`` — LID reads the prose as a whole as X, not the language asked for; measure 1;
- ``lines:a/b`` — a of the b determined lines are in another language; full at ``LINES_FULL`` lines;
- ``script:n`` — zh_Hant: n Simplified-only characters (zh_Hans: Traditional-only); full at ``SCRIPT_FULL``;
- ``region:n`` — zh_Hant: n places of mainland vocabulary (zh_Hans: Taiwan's); full at ``REGION_FULL``;
- ``english:n`` — n English words, in a language not written in Latin letters; full at ``ENGLISH_FULL``.

Counts, not shares: one Simplified character or one English line is a slip whatever the answer's length, and with
the default weights it alone makes a pair (margin 1).

**Bar** (``Score.passes``): what the KD output checks keep with ``checks.lines: true`` — not degenerate, not cut off
(a cut-off `chosen` would teach truncation), in the language as a whole (or too short for LID: fewer than
``checks.min_language_chars`` letters), no line in another language, no character of the other Chinese script.
Mainland words and English words lower the score but do not bar an answer: they are evidence (a word both regions
use, a library's name), not a verdict.

**Pair** (``pick``): `chosen` is the highest-scoring answer that passes the bar, `rejected` the lowest-scoring
answer, ties to the lower sample index; the task writes the pair when ``chosen − rejected ≥ min_margin``.
"""

from __future__ import annotations

from dataclasses import dataclass

from corpusforge.kd.config import Weights
from corpusforge.lang.degeneration import degeneration
from corpusforge.lang.fidelity import answer_language, fidelity
from corpusforge.lang.lid import LanguageIdentifier
from corpusforge.lang.names import languages_agree

LINES_FULL = 2  # lines in another language
SCRIPT_FULL = 3  # characters of the other script
REGION_FULL = 3  # places of the other region's vocabulary
ENGLISH_FULL = 10  # English words


@dataclass(frozen=True)
class Score:
    value: float  # 0 at best; -weights.degenerate for a degenerate answer
    reasons: tuple[str, ...]  # its findings, e.g. ("lines:1/4", "english:3")
    passes: bool  # may be `chosen`


def score(
    text: str,
    finish_reason: str,
    language: str,
    prompt: str,
    weights: Weights,
    lid: LanguageIdentifier,
    min_letters: int,
) -> Score:
    """The score of one answer to ``prompt`` that must be in ``language`` (see the module docstring)."""
    kind = degeneration(text, prompt)
    if kind is not None:
        return Score(-weights.degenerate, (kind,), False)
    found: list[tuple[str, float, float, bool]] = []  # reason, weight, measure, whether it bars the answer
    if finish_reason == "length":
        found.append(("cut_off", weights.cut_off, 1.0, True))
    detected = answer_language(text, lid, min_letters)
    if detected is not None and not languages_agree(detected[0], language):
        found.append((f"language:{detected[0]}", weights.language, 1.0, True))
    measured = fidelity(text, language, lid)
    judged = [line.ok for line in measured.lines if line.ok is not None]
    if off := judged.count(False):
        found.append((f"lines:{off}/{len(judged)}", weights.lines, min(1.0, off / LINES_FULL), True))
    if n := measured.other_script:
        found.append((f"script:{n}", weights.script, min(1.0, n / SCRIPT_FULL), True))
    if n := measured.region_hits:
        found.append((f"region:{n}", weights.region, min(1.0, n / REGION_FULL), False))
    if n := len(measured.english_words or ()):
        found.append((f"english:{n}", weights.english, min(1.0, n / ENGLISH_FULL), False))
    value = round(-sum(weight * measure for _, weight, measure, _ in found), 4) + 0.0  # + 0.0: never -0.0
    return Score(value, tuple(reason for reason, *_ in found), not any(bars for *_, bars in found))


def pick(scores: list[Score]) -> tuple[int | None, int]:
    """(chosen, rejected): the index of the highest-scoring answer that passes the bar (None when none does) and
    that of the lowest-scoring answer; ties go to the lower index."""
    passing = [k for k, s in enumerate(scores) if s.passes]
    chosen = max(passing, key=lambda k: (scores[k].value, -k), default=None)
    rejected = min(range(len(scores)), key=lambda k: (scores[k].value, k))
    return chosen, rejected
