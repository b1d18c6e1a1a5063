"""The transfer scorecard: per model, what it does (the response-language matrix with degenerate answers counted
apart), whether it still ends its turns (chat format), what it kept (retention: NLL of the reference's own English
answers; perplexity on held-out text), and one verdict against the reference model that a user can act on.

A change counts only when it is large enough (``verdict.min_change``) *and* a two-proportion z-test (shares) or a
paired test (retention) says it is not noise at ``verdict.alpha``; otherwise the verdict says how far the figures
moved and that the prompts are too few to tell.

Verdicts, most severe first: ``broken`` (more degenerate answers, or turns no longer ended), ``english_degraded``
(fewer English answers to English prompts, the reference's answers less likely, English perplexity up),
``target_fell``, ``transferred`` (more answers in the target language, nothing above), ``no_change``; the
reference model itself is ``reference``.
"""

from __future__ import annotations

import base64
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from corpusforge.eval.scorecard.likelihood import Scored, mean_per_char, mean_per_token, perplexity
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


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.0f}%"


def _p(p: float | None) -> str:
    return "p=?" if p is None else ("p<0.001" if p < 0.001 else f"p={p:.3f}")


# --------------------------------------------------------------------------------------------- measures
def _share(model, prompt_set: str, cls: str) -> tuple[int, int]:
    """Responses of class ``cls`` (or ``switched``: answered in a language other than English, the target language
    or another), of the classified responses to ``prompt_set``."""
    cell = model.cells[prompt_set]
    k = cell.counts["target"] + cell.counts["other"] if cls == "switched" else cell.counts[cls]
    return k, cell.determined


def _chat_format(model, prompt_set: str) -> tuple[int, int]:
    """Answers that ended with the end-of-turn token within max_tokens, of the answers received."""
    answered = [r for r in model.responses if r.prompt_set == prompt_set and r.finish_reason != "error"]
    return sum(r.finish_reason == "stop" for r in answered), len(answered)


def _ratio(k: int, n: int) -> float | None:
    return k / n if n else None


def measures(model, likelihood: Likelihood | None) -> dict:
    out: dict = {"language": {}, "degenerate": {}, "chat_format": {}}
    for s in SETS:
        out["language"][s] = {c: v for c, v in model.cells[s].shares.items()}
        out["degenerate"][s] = _ratio(*_share(model, s, "degenerate"))
        out["chat_format"][s] = _ratio(*_chat_format(model, s))
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


def _compare_share(
    model, ref, measure: str, prompt_set: str, worse_if: str, kind: str, what: str, v
) -> Finding | None:
    """A share of ``model`` against the reference's; ``worse_if`` 'up' or 'down' is the direction named ``kind``."""
    if measure == "chat_format":
        (k1, n1), (k2, n2) = _chat_format(model, prompt_set), _chat_format(ref, prompt_set)
    else:
        (k1, n1), (k2, n2) = _share(model, prompt_set, measure), _share(ref, prompt_set, measure)
    if not n1 or not n2:
        return None
    a, b = k1 / n1, k2 / n2
    change = a - b if worse_if == "up" else b - a
    if change < v.min_change:
        return None
    p = two_proportion_p(k1, n1, k2, n2)
    figures = f"{what} {_pct(a)} (reference {_pct(b)}, {_p(p)}, n={n1}/{n2})"
    if p is not None and p < v.alpha:
        return Finding(kind, figures)
    return Finding("unclear", figures + " — too few prompts to tell")


def verdict(model, ref, target_name: str, lk: Likelihood | None, ref_lk: Likelihood | None, v) -> list[Finding]:
    """Every finding of ``model`` against the reference ``ref``, most severe first."""
    found: list[Finding | None] = []
    for s, name in SETS.items():
        label = name or target_name
        found.append(
            _compare_share(model, ref, "degenerate", s, "up", "broken", f"degenerate answers to {label} prompts", v)
        )
        found.append(
            _compare_share(
                model, ref, "chat_format", s, "down", "broken", f"turns ended (end-of-turn) on {label} prompts", v
            )
        )
    found.append(
        _compare_share(model, ref, "en", "en", "down", "english_degraded", "English answers to English prompts", v)
    )
    # language confusion: a model that stopped looping can gain English answers and still answer English in Chinese
    found.append(
        _compare_share(
            model, ref, "switched", "en", "up", "english_degraded", "English prompts answered in another language", v
        )
    )
    found.append(_retention_finding(lk, ref_lk, v))
    found.append(_english_ppl_finding(lk, ref_lk, v))
    target = f"{target_name} answers to {target_name} prompts"
    found.append(_compare_share(model, ref, "target", "target", "up", "transferred", target, v))
    found.append(_compare_share(model, ref, "target", "target", "down", "target_fell", target, v))
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
        deg = measures_["degenerate"]
        return (
            f"{name}: reference — {language}→{language} {_pct(measures_['language']['target']['target'])}, "
            f"en→en {_pct(measures_['language']['en']['en'])}, degenerate {_pct(deg['en'])} en / "
            f"{_pct(deg['target'])} {language}"
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
    ref_measures = measures(ref, ref_lk)
    models = []
    for m in result.models:
        lk = likelihoods.get(m.name)
        mine = measures(m, lk)
        if m.name == ref.name:
            kind, findings = "reference", []
        else:
            findings = verdict(m, ref, target_name, lk, ref_lk, config.verdict)
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
        "prompts": {s: ref.cells[s].prompts for s in SETS},
        "models": models,
    }


# --------------------------------------------------------------------------------------------- HTML
def render_html(card: dict, result, png: Path | None) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = _pct
    env.filters["num"] = lambda x, digits=3: "—" if x is None else f"{x:.{digits}f}"
    examples = {}
    for m in result.models:
        bad = [r for r in m.responses if r.answered_in == "degenerate"][:3]
        good = [r for r in m.responses if r.answered_in == "target" and r.prompt_set == "target"][:2]
        examples[m.name] = [(r, r.degeneration or "") for r in bad + good]
    chart = base64.b64encode(png.read_bytes()).decode() if png and png.is_file() else None
    return env.get_template("scorecard.html.jinja").render(card=card, examples=examples, chart=chart)
