"""The transfer scorecard: per model, what it does (the response-language matrix with degenerate answers counted
apart), whether it still ends its turns (chat format; and apart from it, the share cut off at max_tokens), what it
kept (retention: NLL of the reference's own English answers; perplexity on held-out text), and one verdict against
the reference model that a user can act on.

Every share is a `Share` in ``SHARES`` (which answers count, which of them hit), every share that can decide a
verdict a `Comparison` in ``COMPARISONS``: a new per-model measure is an entry there, and it gets its figures, its
confidence interval, its significance test and its finding from the code below.

A change counts only when it is large enough (``verdict.min_change``) *and* a two-proportion z-test (shares; with
several answers per prompt on the counts divided by the design effect, see `results`) or a paired test (retention)
says it is not noise at ``verdict.alpha``; otherwise the verdict says how far the figures moved and that the prompts
are too few to tell. Findings on a share that depends on the token limit (turns ended) say so.

Verdicts, most severe first: ``broken`` (more degenerate answers, or turns no longer ended), ``english_degraded``
(fewer English answers to English prompts, or with every line in English; the reference's answers less likely,
English perplexity up), ``target_fell`` (fewer target answers, or with every line in it, or without English words;
more with the other Chinese script's characters or the other region's vocabulary), ``transferred`` (the reverse of
that, nothing above), ``no_change``; the reference model itself is ``reference``. The fidelity shares read each
response's `lang.fidelity.Fidelity`, which `evaluate` attaches to every answer that counts.
"""

from __future__ import annotations

import base64
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from corpusforge.eval.scorecard.fidelity import model_fidelity
from corpusforge.eval.scorecard.likelihood import Scored, mean_per_char, mean_per_token, perplexity
from corpusforge.eval.scorecard.results import CLASSES, Proportion, Response, answered, classified
from corpusforge.lang.fidelity import NON_LATIN
from corpusforge.lang.names import language_name

SEVERITY = ("broken", "english_degraded", "target_fell", "transferred", "no_change")
VERDICT_WORDS = {
    "reference": "reference",
    "broken": "BROKEN",
    "english_degraded": "ENGLISH DEGRADED",
    "target_fell": "TARGET FELL",
    "transferred": "TRANSFERRED",
    "no_change": "NO SIGNIFICANT CHANGE",
}
SETS = {"en": "English", "target": None}  # None: the target language's name


@dataclass
class Likelihood:
    """What one model's weights say about fixed text; ``note`` says why a measure is missing."""

    retention: list[Scored] | None = None
    perplexity: dict[str, list[Scored]] = field(default_factory=dict)  # "target" / "en" → one per document
    note: str | None = None

    def to_cache(self) -> dict:
        def rows(scored):
            return None if scored is None else [[s.nll, s.tokens, s.chars] for s in scored]

        return {
            "retention": rows(self.retention),
            "perplexity": {k: rows(v) for k, v in self.perplexity.items()},
            "note": self.note,
        }

    @classmethod
    def from_cache(cls, data: dict) -> Likelihood:
        def scored(rows):
            return None if rows is None else [Scored(float(a), int(b), int(c)) for a, b, c in rows]

        return cls(scored(data["retention"]), {k: scored(v) for k, v in data["perplexity"].items()}, data["note"])


# --------------------------------------------------------------------------------------------- statistics
def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """Two-sided p-value of a pooled two-proportion z-test; None when either side has no data."""
    if not n1 or not n2:
        return None
    pooled = (k1 + k2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return 1.0
    z = (k1 / n1 - k2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return math.erfc(abs(z) / math.sqrt(2))


def paired_p(differences: list[float]) -> float | None:
    """Two-sided p-value that the mean of paired differences is 0 (normal approximation)."""
    n = len(differences)
    if n < 2:
        return None
    sd = statistics.stdev(differences)
    mean = statistics.fmean(differences)
    if sd == 0:
        return 0.0 if mean else 1.0
    return math.erfc(abs(mean / (sd / math.sqrt(n))) / math.sqrt(2))


def proportions_p(a: Proportion, b: Proportion) -> float | None:
    """``two_proportion_p`` on the effective counts (the plain counts with one answer per prompt)."""
    return two_proportion_p(*a.effective, *b.effective)


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.0f}%"


def _ci(interval) -> str:
    """A 95% interval in points: ``[78–98]``."""
    return "" if not interval else f"[{100 * interval[0]:.0f}–{100 * interval[1]:.0f}]"


def _p(p: float | None) -> str:
    return "p=?" if p is None else ("p<0.001" if p < 0.001 else f"p={p:.3f}")


# --------------------------------------------------------------------------------------------- measures
@dataclass(frozen=True)
class Share:
    """A per-answer measure of one model on one prompt set: the answers ``among`` counts, and those of them ``hit``
    counts. ``report``: a measure of its own in ``measures`` (with its interval), on ``prompt_sets``; the matrix's
    classes are reported together, under ``language``. ``length``: it depends on the token limit (its findings say
    so)."""

    hit: Callable[[Response], bool]
    among: Callable[[Response], bool] = classified
    report: bool = True
    prompt_sets: tuple[str, ...] = ("en", "target")
    length: bool = False


def _answered_in(*classes: str) -> Callable[[Response], bool]:
    return lambda r: r.answered_in in classes


SHARES: dict[str, Share] = {
    **{c: Share(_answered_in(c), report=c == "degenerate") for c in CLASSES},  # the matrix: of the classified answers
    # language confusion: answered in a language other than English (the target or any other)
    "switched": Share(_answered_in("target", "other"), report=False),
    # of the answers received: ended with the end-of-turn token within max_tokens / reached it without ending
    "chat_format": Share(lambda r: r.finish_reason == "stop", answered, length=True),
    "cut_off": Share(lambda r: r.cut_off, answered, length=True),
    # language fidelity (`fidelity`: the answers that count, cut-off ones included, degenerate ones not), LCB's line
    # level: every determined line in the language asked for (English for the English prompts)
    "line_pass": Share(
        lambda r: r.fidelity.line_pass, lambda r: r.fidelity is not None and r.fidelity.line_pass is not None
    ),
    # LCB's word level, for targets written without Latin letters: of the answers that passed the line level, those
    # without an English word in the prose
    "word_pass": Share(
        lambda r: r.fidelity.word_pass,
        lambda r: r.fidelity is not None and r.fidelity.line_pass is True and r.fidelity.word_pass is not None,
        prompt_sets=("target",),
    ),
    # Chinese targets, of the answers with a Han character: any character only the other script writes (Simplified
    # in zh_Hant), any place of the other region's vocabulary (mainland in zh_Hant)
    "other_script": Share(
        lambda r: bool(r.fidelity.other_script),
        lambda r: r.fidelity is not None and r.fidelity.other_script is not None and r.fidelity.han > 0,
        prompt_sets=("target",),
    ),
    "other_region": Share(
        lambda r: bool(r.fidelity.region_hits),
        lambda r: r.fidelity is not None and r.fidelity.region_hits is not None and r.fidelity.han > 0,
        prompt_sets=("target",),
    ),
}


def share(model, prompt_set: str, name: str) -> Proportion:
    measure = SHARES[name]
    return model.cells[prompt_set].share(measure.hit, measure.among)


def _interval(p: Proportion) -> list[float] | None:
    return p.to_dict()["ci95"]


def fidelity_figures(model, language: str) -> dict:
    """Per prompt set, what the fidelity shares do not say: the pooled figures (other-script characters per 1,000
    Han characters, places of the other region's vocabulary per answer with Han, the Thai letters' share), the
    answers without a determined line, and example answers with their offending spans (`fidelity.summarize`)."""
    out = {}
    for s, summary in model_fidelity(model.responses, language).items():
        out[s] = {
            "language": summary.language,
            "answers": summary.answers,
            "line_undetermined": summary.line_undetermined,
            "script_per_1000": summary.script_per_1000,
            "region": summary.region,
            "region_per_answer": summary.region_per_answer,
            "thai_share": summary.thai_share,
            "examples": [e.to_dict() for e in summary.examples],
        }
    return out


def measures(model, likelihood: Likelihood | None, language: str) -> dict:
    reported = [name for name, m in SHARES.items() if m.report]
    out: dict = {"language": {}, **{name: {} for name in reported}}
    ci: dict = {"language": {}, **{name: {} for name in reported}}
    out["answers"], out["cut_off_by_class"] = {}, {}
    for s in SETS:
        cell = model.cells[s]
        out["language"][s] = {c: v for c, v in cell.shares.items()}
        ci["language"][s] = {c: _interval(share(model, s, c)) for c in CLASSES}
        for name in reported:
            p = share(model, s, name) if s in SHARES[name].prompt_sets else None
            out[name][s], ci[name][s] = (p.share, _interval(p)) if p else (None, None)
        out["answers"][s] = {"prompts": cell.prompts, "answers": cell.answers, "classified": cell.determined}
        out["cut_off_by_class"][s] = cell.cut_off_by_class
    out["ci95"] = ci
    out["fidelity"] = fidelity_figures(model, language)
    out["sampling"] = model.sampling
    lk = likelihood or Likelihood()
    out["retention"] = None
    if lk.retention:
        out["retention"] = {
            "answers": len(lk.retention),
            "tokens": sum(s.tokens for s in lk.retention),
            "nll_per_token": mean_per_token(lk.retention),
            "nll_per_char": mean_per_char(lk.retention),
        }
    out["perplexity"] = {s: perplexity(v) for s, v in lk.perplexity.items() if v}
    out["nll_per_char"] = {s: mean_per_char(v) for s, v in lk.perplexity.items() if v}
    out["note"] = lk.note
    return out


# --------------------------------------------------------------------------------------------- verdict
@dataclass
class Finding:
    kind: str  # one of SEVERITY, or "unclear" (moved, but not significantly)
    text: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text}


@dataclass(frozen=True)
class Comparison:
    """A share of a model against the reference's: a move of ``worse_if`` ('up' or 'down') is a finding of
    ``kind``; ``what`` names it ({label}: the prompt set's language)."""

    share: str  # a key of SHARES
    prompt_set: str
    worse_if: str
    kind: str
    what: str
    # a finding of this comparison of the same prompt set and direction says it already (the answer-level share
    # moved): the line level then adds nothing the reader needs twice
    unless: str | None = None


COMPARISONS: tuple[Comparison, ...] = (
    *(
        c
        for s in SETS
        for c in (
            Comparison("degenerate", s, "up", "broken", "degenerate answers to {label} prompts"),
            Comparison("chat_format", s, "down", "broken", "turns ended (end-of-turn) on {label} prompts"),
        )
    ),
    Comparison("en", "en", "down", "english_degraded", "English answers to English prompts"),
    # language confusion: a model that stopped looping can gain English answers and still answer English in Chinese
    Comparison("switched", "en", "up", "english_degraded", "English prompts answered in another language"),
    Comparison("target", "target", "up", "transferred", "{label} answers to {label} prompts"),
    Comparison("target", "target", "down", "target_fell", "{label} answers to {label} prompts"),
    # language fidelity, down to the line and the character
    Comparison("line_pass", "en", "down", "english_degraded", "English answers with every line in English", "en"),
    Comparison("line_pass", "target", "down", "target_fell", "{label} answers with every line in {label}", "target"),
    Comparison("line_pass", "target", "up", "transferred", "{label} answers with every line in {label}", "target"),
    Comparison("word_pass", "target", "down", "target_fell", "{label} answers without English words"),
    Comparison("word_pass", "target", "up", "transferred", "{label} answers without English words"),
    Comparison("other_script", "target", "up", "target_fell", "{label} answers with {script} characters"),
    Comparison("other_script", "target", "down", "transferred", "{label} answers with {script} characters"),
    Comparison("other_region", "target", "up", "target_fell", "{label} answers with {region} vocabulary"),
    Comparison("other_region", "target", "down", "transferred", "{label} answers with {region} vocabulary"),
)


def _n(a: Proportion, b: Proportion) -> str:
    text = f"n={a.n}/{b.n}"
    if a.n != a.prompts or b.n != b.prompts:  # several answers per prompt: what the test counted
        (_, na), (_, nb) = a.effective, b.effective
        text += f" answers to {a.prompts}/{b.prompts} prompts, effective n={na:.0f}/{nb:.0f}"
    return text


def _length_note(model, prompt_set: str) -> str:
    """Turns ended depends on max_tokens: say which, and how many of the answers cut off were not degenerate."""
    cut = model.cells[prompt_set].cut_off_by_class
    genuine, total = sum(v for c, v in cut.items() if c != "degenerate"), sum(cut.values())
    text = f" — at max_tokens {model.sampling.get('max_tokens', '?')}"
    if genuine:
        text += f", {genuine} of its {total} cut-off answers are not loops or echoes: a longer limit may let them end"
    return text


# what the script and region measures call the other script and the other region's words, per Chinese target
OTHER_WORDS = {
    "zh_Hant": {"script": "Simplified-only", "region": "mainland"},
    "zh_Hans": {"script": "Traditional-only", "region": "Taiwan"},
}


def _compare(model, ref, c: Comparison, label: str, v, language: str = "") -> Finding | None:
    a, b = share(model, c.prompt_set, c.share), share(ref, c.prompt_set, c.share)
    if not a.n or not b.n:
        return None
    change = a.share - b.share if c.worse_if == "up" else b.share - a.share
    if change < v.min_change:
        return None
    p = proportions_p(a, b)
    words = OTHER_WORDS.get(language, {"script": "other-script", "region": "other-region"})
    figures = f"{c.what.format(label=label, **words)} {_pct(a.share)} (reference {_pct(b.share)}, {_p(p)}, {_n(a, b)})"
    if SHARES[c.share].length:
        figures += _length_note(model, c.prompt_set)
    if p is not None and p < v.alpha:
        return Finding(c.kind, figures)
    return Finding("unclear", figures + " — too few prompts to tell")


def verdict(
    model, ref, target_name: str, lk: Likelihood | None, ref_lk: Likelihood | None, v, language: str = ""
) -> list[Finding]:
    """Every finding of ``model`` against the reference ``ref``, most severe first."""
    labels = {s: name or target_name for s, name in SETS.items()}
    found: list[Finding | None] = []
    said = set()  # (share, prompt set, direction) of the comparisons that found something
    for c in COMPARISONS:
        if c.unless and (c.unless, c.prompt_set, c.worse_if) in said:
            continue
        finding = _compare(model, ref, c, labels[c.prompt_set], v, language)
        if finding is not None:
            said.add((c.share, c.prompt_set, c.worse_if))
            found.append(finding)
    found.append(_retention_finding(lk, ref_lk, v))
    found.append(_english_ppl_finding(lk, ref_lk, v))
    order = {k: i for i, k in enumerate((*SEVERITY, "unclear"))}
    return sorted((f for f in found if f is not None), key=lambda f: order[f.kind])


def _retention_finding(lk: Likelihood | None, ref_lk: Likelihood | None, v) -> Finding | None:
    if not (lk and lk.retention and ref_lk and ref_lk.retention) or len(lk.retention) != len(ref_lk.retention):
        return None
    same_tokens = all(a.tokens == b.tokens for a, b in zip(lk.retention, ref_lk.retention))
    if same_tokens:  # same tokenizer: per token, the unit of the threshold
        diffs = [a.per_token - b.per_token for a, b in zip(lk.retention, ref_lk.retention) if a.tokens]
        delta = mean_per_token(lk.retention) - mean_per_token(ref_lk.retention)
        unit, threshold = "nats/token", v.retention_nll
    else:  # another tokenizer (e.g. an extended vocabulary): per character, the threshold scaled to it
        diffs = [(a.nll - b.nll) / a.chars for a, b in zip(lk.retention, ref_lk.retention) if a.chars]
        delta = mean_per_char(lk.retention) - mean_per_char(ref_lk.retention)
        ref_tokens = sum(s.tokens for s in ref_lk.retention)
        ref_chars = sum(s.chars for s in ref_lk.retention)
        unit, threshold = "nats/char", v.retention_nll * ref_tokens / max(ref_chars, 1)
    if delta < threshold:
        return None
    p = paired_p(diffs)
    figures = f"the reference's English answers less likely: +{delta:.3f} {unit} ({_p(p)}, {len(diffs)} answers)"
    if p is not None and p < v.alpha:
        return Finding("english_degraded", figures)
    return Finding("unclear", figures + " — too few answers to tell")


def _english_ppl_finding(lk: Likelihood | None, ref_lk: Likelihood | None, v) -> Finding | None:
    if not (lk and ref_lk and lk.perplexity.get("en") and ref_lk.perplexity.get("en")):
        return None
    mine, ref = lk.perplexity["en"], ref_lk.perplexity["en"]
    if [s.tokens for s in mine] == [s.tokens for s in ref]:  # same tokenizer: the perplexity itself
        ratio, unit = perplexity(mine) / perplexity(ref), ""
    else:  # another tokenizer: per character, the only comparable unit
        ratio, unit = math.exp(mean_per_char(mine) - mean_per_char(ref)), " per character"
    if ratio < v.english_ppl_ratio:
        return None
    return Finding("english_degraded", f"English held-out perplexity ×{ratio:.2f}{unit}")


def verdict_line(name: str, kind: str, findings: list[Finding], measures_: dict, language: str) -> str:
    """One line: the verdict and the (at most three) findings behind it; the JSON and HTML list them all."""
    if kind == "reference":
        deg, cut = measures_["degenerate"], measures_["cut_off"]
        max_tokens = (measures_.get("sampling") or {}).get("max_tokens", "?")
        return (
            f"{name}: reference — {language}→{language} {_pct(measures_['language']['target']['target'])}, "
            f"en→en {_pct(measures_['language']['en']['en'])}, degenerate {_pct(deg['en'])} en / "
            f"{_pct(deg['target'])} {language}, cut off at max_tokens {max_tokens} {_pct(cut['en'])} en / "
            f"{_pct(cut['target'])} {language}, every line in the language {_pct(measures_['line_pass']['en'])} en / "
            f"{_pct(measures_['line_pass']['target'])} {language}"
        )
    shown = [f.text for f in findings if f.kind != "unclear"] or [f.text for f in findings]
    if not shown:
        shown = ["no share moved by the minimum change"]
    more = f" (+{len(shown) - 3} more)" if len(shown) > 3 else ""
    return f"{name}: {VERDICT_WORDS[kind]} — " + "; ".join(shown[:3]) + more


def build_scorecard(result, likelihoods: dict[str, Likelihood | None]) -> dict:
    """The scorecard of an ScorecardResult: measures, findings and a verdict per model, in config order."""
    config = result.config
    target_name = language_name(result.language)
    by_name = {m.name: m for m in result.models}
    ref = by_name[config.reference]
    ref_lk = likelihoods.get(ref.name)
    ref_measures = measures(ref, ref_lk, result.language)
    models = []
    for m in result.models:
        lk = likelihoods.get(m.name)
        mine = measures(m, lk, result.language)
        if m.name == ref.name:
            kind, findings = "reference", []
        else:
            findings = verdict(m, ref, target_name, lk, ref_lk, config.verdict, result.language)
            decisive = [f.kind for f in findings if f.kind in SEVERITY]
            kind = decisive[0] if decisive else "no_change"
            if mine["retention"] and ref_measures["retention"]:
                mine["retention"]["delta_per_token"] = (
                    mine["retention"]["nll_per_token"] - ref_measures["retention"]["nll_per_token"]
                )
        models.append(
            {
                "name": m.name,
                "model": m.model,
                "verdict": kind,
                "verdict_line": verdict_line(m.name, kind, findings, mine, result.language),
                "findings": [f.to_dict() for f in findings],
                "measures": mine,
            }
        )
    return {
        "language": result.language,
        "language_name": target_name,
        "reference": ref.name,
        "verdict_rules": config.verdict.model_dump(),
        "sampling": config.sampling.model_dump(),
        "samples": config.samples,
        "non_latin": result.language in NON_LATIN,
        "other_words": OTHER_WORDS.get(result.language, {}),
        "prompts": {s: ref.cells[s].prompts for s in SETS},
        "answers": {s: ref.cells[s].answers for s in SETS},
        "models": models,
    }


# --------------------------------------------------------------------------------------------- HTML
def highlight(text: str, spans, limit: int = 1200):
    """``text`` (its first ``limit`` characters) HTML-escaped, with each ``(start, end)`` span in ``<mark>``."""
    from markupsafe import Markup, escape

    out, pos = [], 0
    for start, end in sorted(tuple(s) for s in spans):
        start, end = max(start, pos), min(end, limit)
        if start >= end:
            continue
        out += [escape(text[pos:start]), Markup("<mark>"), escape(text[start:end]), Markup("</mark>")]
        pos = end
    out.append(escape(text[pos:limit]) + ("…" if len(text) > limit else ""))
    return Markup("").join(out)


def render_html(card: dict, result, png: Path | None) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = _pct
    env.filters["ci"] = _ci
    env.filters["num"] = lambda x, digits=3: "—" if x is None else f"{x:.{digits}f}"
    env.filters["highlight"] = highlight
    examples = {}
    for m in result.models:
        bad = [r for r in m.responses if r.answered_in == "degenerate"][:3]
        good = [r for r in m.responses if r.answered_in == "target" and r.prompt_set == "target"][:2]
        long = [r for r in m.responses if r.cut_off and r.answered_in != "degenerate" and r not in good][:1]
        examples[m.name] = [
            (r, r.degeneration or ("cut off, not degenerate" if r.cut_off else "")) for r in bad + good + long
        ]
    chart = base64.b64encode(png.read_bytes()).decode() if png and png.is_file() else None
    return env.get_template("scorecard.html.jinja").render(card=card, examples=examples, chart=chart)
