"""Language fidelity per model and prompt set, from each answer's `lang.fidelity.Fidelity`: the Language Confusion
Benchmark's line- and word-level pass rates, the other Chinese script's characters per 1,000 Han characters and the
share of answers with any, mainland (for zh_Hans: Taiwan) vocabulary per answer, the Thai letters' share — each with
its counts, and a few answers with their offending spans for the HTML page.

Which answers count: every answer received (not ``failed``), cut-off ones included (a cut-off answer still has a
language), degenerate ones left out (a loop, an echo, an empty answer: the matrix counts them, and an echo of a
Chinese prompt would pass every Chinese measure). The language asked for is English for the English prompts and the
target language for the target prompts; the script, region and Thai measures apply to the target prompts only.

Denominators, as LCB's: the line pass rate is over the answers with a determined line (the others are counted as
``undetermined``); the word pass rate over the answers that passed the line level (an answer with an English line
already failed; the word level asks about English words inside lines in the language). The script and region shares
are over the answers with a Han character, the Thai share over the letters of the answers.

A share here is a `Rate` (k of n answers), so the scorecard's significance rule applies as for the matrix:
``verdicts.two_proportion_p(mine.k, mine.n, ref.k, ref.n)``. The per-1,000 and per-answer figures are pooled
(characters and places over all answers) and come with their counts; they are reported, not tested (one answer's
characters are not independent draws).

    summaries = model_fidelity(model_result.responses, "zh_Hant", lid)
    summaries["target"].line.share, summaries["target"].script.share, summaries["target"].script_per_1000
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from corpusforge.lang.fidelity import FOREIGN_REGION, NON_LATIN, Fidelity, Span, fidelity
from corpusforge.lang.lid import LanguageIdentifier

DEGENERATE = ("loop", "echo", "empty")  # left out; `cut_off` is a length, not a failure of language
EXAMPLES = 3  # example answers per measure and prompt set


class Answer(Protocol):
    """What is read of a scorecard response (`results.Response`)."""

    prompt_set: str
    prompt: str
    response: str
    answered_in: str
    degeneration: str | None


@dataclass(frozen=True)
class Rate:
    """``k`` of ``n`` answers."""

    k: int
    n: int

    @property
    def share(self) -> float | None:
        return self.k / self.n if self.n else None

    def to_dict(self) -> dict:
        return {"k": self.k, "n": self.n, "share": None if self.share is None else round(self.share, 6)}


@dataclass(frozen=True)
class Example:
    """One answer that failed a measure, with the spans to highlight (offsets into ``response``)."""

    measure: str  # line | word | script | region | thai
    prompt: str
    response: str
    spans: list[Span]
    labels: list[str] = field(default_factory=list)  # for `line`: the LID label of each span

    def to_dict(self) -> dict:
        return {
            "measure": self.measure,
            "prompt": self.prompt,
            "response": self.response,
            "spans": [list(s) for s in self.spans],
            "labels": self.labels,
        }


@dataclass
class FidelitySummary:
    """The fidelity of one model's answers to one prompt set; a measure that does not apply is None."""

    prompt_set: str
    language: str  # the language asked for
    answers: int  # answers measured (received, not degenerate)
    line: Rate  # answers with every determined line in the language, of those with a determined line
    line_undetermined: int  # answers without a determined line
    word: Rate | None = None  # of the line-passing answers, those without an English word (NON_LATIN languages)
    script: Rate | None = None  # answers with any character of the other Chinese script, of those with Han
    script_chars: int | None = None
    han_chars: int | None = None
    region: str | None = None  # whose vocabulary is foreign: CN for zh_Hant, TW for zh_Hans
    region_answers: Rate | None = None  # answers with any place of it, of those with Han
    region_hits: int | None = None
    thai_letters: int | None = None
    letters: int | None = None
    examples: list[Example] = field(default_factory=list)

    @property
    def script_per_1000(self) -> float | None:
        """Characters of the other script per 1,000 Han characters, over all answers."""
        return 1000 * self.script_chars / self.han_chars if self.han_chars else None

    @property
    def region_per_answer(self) -> float | None:
        """Places of foreign vocabulary per answer with Han."""
        return self.region_hits / self.region_answers.n if self.region_answers and self.region_answers.n else None

    @property
    def thai_share(self) -> float | None:
        """Thai letters among the letters of all answers."""
        return self.thai_letters / self.letters if self.letters else None

    def to_dict(self) -> dict:
        def rate(r: Rate | None):
            return None if r is None else r.to_dict()

        def num(x: float | None):
            return None if x is None else round(x, 6)

        return {
            "prompt_set": self.prompt_set,
            "language": self.language,
            "answers": self.answers,
            "line": rate(self.line),
            "line_undetermined": self.line_undetermined,
            "word": rate(self.word),
            "script": rate(self.script),
            "script_chars": self.script_chars,
            "han_chars": self.han_chars,
            "script_per_1000": num(self.script_per_1000),
            "region": self.region,
            "region_answers": rate(self.region_answers),
            "region_hits": self.region_hits,
            "region_per_answer": num(self.region_per_answer),
            "thai_letters": self.thai_letters,
            "letters": self.letters,
            "thai_share": num(self.thai_share),
            "examples": [e.to_dict() for e in self.examples],
        }


def wanted_language(prompt_set: str, language: str) -> str:
    """The language an answer to ``prompt_set`` should be in: English for the English prompts."""
    return "en" if prompt_set == "en" else language


def measured(response: Answer) -> bool:
    """Whether an answer counts (see the module docstring): received, and not a loop, an echo or empty."""
    return response.answered_in != "failed" and response.degeneration not in DEGENERATE


def answer_fidelities(
    responses: Sequence[Answer], language: str, lid: LanguageIdentifier | None = None
) -> list[Fidelity | None]:
    """Each response's `Fidelity` to the language its prompt set asks for (the one the scorecard attached to it, if
    any); None for one that does not count."""
    out = []
    for r in responses:
        known = getattr(r, "fidelity", None)
        if known is None and measured(r):
            known = fidelity(r.response, wanted_language(r.prompt_set, language), lid)
        out.append(known if measured(r) else None)
    return out


def summarize(
    responses: Sequence[Answer],
    fidelities: Sequence[Fidelity | None],
    prompt_set: str,
    language: str,
    examples: int = EXAMPLES,
) -> FidelitySummary:
    """The summary of one prompt set from the responses and their fidelities (parallel lists, as
    ``answer_fidelities`` returns them). ``language``: the target language of the scorecard."""
    pairs = [(r, f) for r, f in zip(responses, fidelities) if r.prompt_set == prompt_set and f is not None]
    wanted = wanted_language(prompt_set, language)
    fids = [f for _, f in pairs]
    judged = [f for f in fids if f.line_pass is not None]
    out = FidelitySummary(
        prompt_set=prompt_set,
        language=wanted,
        answers=len(fids),
        line=Rate(sum(f.line_pass for f in judged), len(judged)),
        line_undetermined=len(fids) - len(judged),
    )
    shown: list[Example] = []

    def show(measure: str, chosen: list[tuple[Answer, Fidelity]], spans, labels=None) -> None:
        for r, f in chosen[:examples]:
            shown.append(Example(measure, r.prompt, r.response, spans(f), labels(f) if labels else []))

    def bad_lines(f: Fidelity):
        return [line for line in f.lines if line.ok is False]

    show(
        "line",
        [(r, f) for r, f in pairs if f.line_pass is False],
        lambda f: [(line.start, line.end) for line in bad_lines(f)],
        lambda f: [line.label for line in bad_lines(f)],
    )
    if wanted in NON_LATIN:
        passed = [(r, f) for r, f in pairs if f.line_pass]
        out.word = Rate(sum(bool(f.word_pass) for _, f in passed), len(passed))
        show("word", [(r, f) for r, f in passed if not f.word_pass], lambda f: f.english_words or [])
    if prompt_set != "en" and wanted in FOREIGN_REGION:
        han = [(r, f) for r, f in pairs if f.han]
        out.script = Rate(sum(bool(f.other_script) for _, f in han), len(han))
        out.script_chars = sum(f.other_script or 0 for _, f in han)
        out.han_chars = sum(f.han for _, f in han)
        show("script", [(r, f) for r, f in han if f.other_script], lambda f: f.other_script_spans)
        out.region = FOREIGN_REGION[wanted]
        out.region_answers = Rate(sum(bool(f.region_hits) for _, f in han), len(han))
        out.region_hits = sum(f.region_hits or 0 for _, f in han)
        show("region", [(r, f) for r, f in han if f.region_hits], lambda f: f.region_spans)
    if prompt_set != "en" and wanted == "th":
        out.thai_letters = sum(f.thai_letters or 0 for f in fids)
        out.letters = sum(f.letters or 0 for f in fids)
        below = sorted((f.thai_share, i) for i, (_, f) in enumerate(pairs) if f.thai_share is not None)
        chosen = [pairs[i] for share, i in below if share < 1.0]
        show("thai", chosen, lambda f: f.other_letter_spans)
    out.examples = shown
    return out


def model_fidelity(
    responses: Sequence[Answer], language: str, lid: LanguageIdentifier | None = None, examples: int = EXAMPLES
) -> dict[str, FidelitySummary]:
    """One model's fidelity per prompt set (`en`, `target`), keyed by prompt set, in the order they first occur."""
    fids = answer_fidelities(responses, language, lid)
    sets = list(dict.fromkeys(r.prompt_set for r in responses))
    return {s: summarize(responses, fids, s, language, examples) for s in sets}
