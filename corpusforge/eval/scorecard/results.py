"""What `corpusforge eval scorecard` produces, and what its stages share: the classes of the matrix, the result types
(`Response`, `Cell`, `ModelResult`, `ScorecardResult`), shares with their confidence intervals (`Proportion`,
`proportion`), and the per-model helpers that generation (`evaluate`) and likelihood scoring (`retention`) both use
— the fingerprint of a model's files and the slug of its name that key the caches in ``OUT/responses/``, the check
that a LoRA adapter folder can load, and freeing memory between models.

**Several answers per prompt.** With ``samples: K`` every prompt is answered K times. Those K answers are not K
independent observations: a prompt that makes a model loop makes most of its samples loop. A share is therefore
computed over all the answers, but its uncertainty is that of a cluster sample, one cluster per prompt: the
design effect ``d = Σ (k_i − p·n_i)² / (n·p·(1−p))`` (``k_i`` of the ``n_i`` answers to prompt ``i`` hit, ``n``
answers in all; Rao & Scott 1992's ratio-estimator variance over the binomial one, without their ``m/(m−1)``
small-sample factor so that one answer per prompt gives exactly ``d = 1``) divides the counts, and intervals and
tests run on the effective counts ``k/d`` of ``n/d``. Never below 1: answers to one prompt are never taken to be
more informative than independent ones. With K = 1 every figure is the plain binomial one."""

from __future__ import annotations

import gc
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path

from corpusforge.errors import SourceError
from corpusforge.eval.scorecard.config import ScorecardConfig, ScorecardModel
from corpusforge.lang.degeneration import DEGENERATIONS
from corpusforge.lang.fidelity import Fidelity

PROMPT_SETS = ("en", "target")  # English prompts, target-language prompts
# the matrix columns; shares are over these. `degenerate`: a loop, an echo of the prompt or empty (`degeneration`)
# — whatever language its bytes are in, never an answer in that language. Whether the answer ended or was cut off
# at the token limit is apart from its class (`cut_off`): a cut-off answer is classified like any other.
CLASSES = ("en", "target", "other", "degenerate")
APART = ("undetermined", "failed")  # counted, never in the shares
RESPONSES_DIR = "responses"
Z95 = 1.959963984540054  # two-sided 95%

Progress = Callable[[str, int, int], None]  # (model name, responses done, total)


@dataclass
class Response:
    prompt_set: str  # "en" | "target"
    prompt: str
    response: str
    finish_reason: str  # "stop" | "length" | "error"
    n_tokens: int
    detected: str | None  # LID label; None when undetermined or failed
    score: float | None
    answered_in: str  # "en" | "target" | "other" | "degenerate" | "undetermined" | "failed"
    degeneration: str | None = None  # loop | echo | empty, for a degenerate response
    sample: int = 0  # which of the prompt's `samples` answers (0 … K-1)
    # its fidelity to the language asked for, line by line and character by character (`lang.fidelity`); None for
    # an answer that does not count (failed, or a loop, an echo, empty: see `fidelity.measured`)
    fidelity: Fidelity | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """The response as align.json lists it: its fidelity as the verdicts of each measure, not its lines."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "fidelity"}
        f = self.fidelity
        out["fidelity"] = None
        if f is not None:
            out["fidelity"] = {
                "line_pass": f.line_pass,
                "word_pass": f.word_pass,
                "other_script": f.other_script,
                "han": f.han,
                "region_hits": f.region_hits,
                "thai_share": None if f.thai_share is None else round(f.thai_share, 4),
            }
        return out

    @property
    def answered(self) -> bool:
        """A reply came back (the request did not fail)."""
        return self.finish_reason != "error"

    @property
    def cut_off(self) -> bool:
        """It reached max_tokens without ending its turn."""
        return self.finish_reason == "length"

    @property
    def classified(self) -> bool:
        return self.answered_in in CLASSES


# --------------------------------------------------------------------------------------------- shares
def wilson(k: float, n: float, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of k successes in n trials (k and n may be effective, non-integer counts)."""
    if n <= 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(max(p * (1 - p) / n + z * z / (4 * n * n), 0.0))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Proportion:
    """``k`` of ``n`` answers, from ``prompts`` prompts; ``design_effect`` ≥ 1 when prompts were answered more than
    once (see the module docstring)."""

    k: int
    n: int
    prompts: int
    design_effect: float = 1.0

    @property
    def share(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def effective(self) -> tuple[float, float]:
        """(k, n) divided by the design effect: what the intervals and tests count."""
        return self.k / self.design_effect, self.n / self.design_effect

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(*self.effective)

    def to_dict(self) -> dict:
        ci = self.interval
        return {
            "k": self.k,
            "n": self.n,
            "share": None if self.share is None else round(self.share, 6),
            "ci95": None if ci is None else [round(ci[0], 6), round(ci[1], 6)],
            "design_effect": round(self.design_effect, 4),
        }


def proportion(
    groups: Iterable[list[Response]], hit: Callable[[Response], bool], among: Callable[[Response], bool]
) -> Proportion:
    """The share of the responses ``among`` counts that ``hit`` counts, ``groups`` being the answers of one prompt
    each: any per-answer measure becomes a share with its interval this way."""
    per_prompt = []
    for answers in groups:
        mine = [r for r in answers if among(r)]
        if mine:
            per_prompt.append((sum(1 for r in mine if hit(r)), len(mine)))
    k, n = sum(a for a, _ in per_prompt), sum(b for _, b in per_prompt)
    d = 1.0
    if n and 0 < k < n and any(b > 1 for _, b in per_prompt):
        p = k / n
        d = max(1.0, sum((a - p * b) ** 2 for a, b in per_prompt) / (n * p * (1 - p)))
    return Proportion(k, n, len(per_prompt), d)


def by_prompt(responses: Iterable[Response]) -> list[list[Response]]:
    """The responses grouped by prompt, in first-seen order."""
    groups: dict[str, list[Response]] = {}
    for r in responses:
        groups.setdefault(r.prompt, []).append(r)
    return list(groups.values())


def classified(r: Response) -> bool:
    return r.classified


def answered(r: Response) -> bool:
    return r.answered


@dataclass
class Cell:
    """One row of the matrix: the responses to one prompt set."""

    prompts: int  # distinct prompts
    counts: dict[str, int]  # en, target, other, degenerate, undetermined, failed
    other_languages: dict[str, int]  # what "other" was, most frequent first
    degenerations: dict[str, int] = field(default_factory=dict)  # what "degenerate" was: loop, echo, empty
    responses: list[Response] = field(default_factory=list, repr=False)

    @property
    def answers(self) -> int:
        """Every response, failed ones included (prompts × samples)."""
        return sum(self.counts.values())

    @property
    def determined(self) -> int:
        return sum(self.counts[c] for c in CLASSES)

    @property
    def shares(self) -> dict[str, float | None]:
        """Share of each class among the classified responses (undetermined and failed left out)."""
        n = self.determined
        return {c: (self.counts[c] / n if n else None) for c in CLASSES}

    def share(self, hit: Callable[[Response], bool], among: Callable[[Response], bool] = classified) -> Proportion:
        return proportion(by_prompt(self.responses), hit, among)

    def of_class(self, cls: str) -> Proportion:
        return self.share(lambda r: r.answered_in == cls)

    @property
    def cut_off(self) -> Proportion:
        """Answers that reached max_tokens without ending, of the answers received (whatever their class)."""
        return self.share(lambda r: r.cut_off, answered)

    @property
    def cut_off_by_class(self) -> dict[str, int]:
        """What the cut-off answers were: e.g. ``{"degenerate": 13, "en": 4}`` — 4 long, genuine English answers."""
        counts = Counter(r.answered_in for r in self.responses if r.cut_off)
        return {c: counts[c] for c in (*CLASSES, "undetermined") if counts[c]}

    def to_dict(self) -> dict:
        cut = self.cut_off
        return {
            "prompts": self.prompts,
            "answers": self.answers,
            "counts": self.counts,
            "shares": {c: None if v is None else round(v, 6) for c, v in self.shares.items()},
            "ci95": {c: self.of_class(c).to_dict()["ci95"] for c in CLASSES},
            "design_effect": {c: round(self.of_class(c).design_effect, 4) for c in CLASSES},
            "undetermined_share": round(self.counts["undetermined"] / self.answers, 6) if self.answers else None,
            "other_languages": self.other_languages,
            "degenerations": self.degenerations,
            "cut_off": {**cut.to_dict(), "by_class": self.cut_off_by_class},
        }


def tabulate(prompt_set: str, responses: list[Response]) -> Cell:
    mine = [r for r in responses if r.prompt_set == prompt_set]
    counts = Counter(r.answered_in for r in mine)
    others = Counter(r.detected for r in mine if r.answered_in == "other")
    degenerations = Counter(r.degeneration for r in mine if r.answered_in == "degenerate")
    return Cell(
        prompts=len({r.prompt for r in mine}),
        counts={c: counts.get(c, 0) for c in CLASSES + APART},
        other_languages=dict(sorted(others.items(), key=lambda kv: (-kv[1], kv[0]))),
        degenerations={d: degenerations[d] for d in sorted(DEGENERATIONS, key=lambda d: (-degenerations[d], d))
                       if degenerations[d]},
        responses=mine,
    )  # fmt: skip


@dataclass
class ModelResult:
    name: str
    model: str
    backend: dict
    cells: dict[str, Cell]  # keyed by prompt set
    responses: list[Response] = field(repr=False)
    reused: bool = False  # every response read back from OUT/responses (nothing generated)
    sampling: dict = field(default_factory=dict)  # how this model was sampled (config.ModelSampling.to_dict)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "model": self.model,
            "backend": self.backend,
            "sampling": self.sampling,
            "matrix": {s: self.cells[s].to_dict() for s in PROMPT_SETS},
            "responses": [r.to_dict() for r in self.responses],
        }


@dataclass
class ScorecardResult:
    language: str
    config: ScorecardConfig
    models: list[ModelResult]
    output: Path
    likelihoods: dict = field(default_factory=dict)  # model name → scorecard.Likelihood (None: not measured)
    scorecard: dict = field(default_factory=dict)  # scorecard.build_scorecard: measures and a verdict per model
    prompt_sources: dict = field(default_factory=dict)  # prompt set → (files, text field) they were read from

    @property
    def json_path(self) -> Path:
        return self.output / "align.json"

    @property
    def png_path(self) -> Path:
        return self.output / "align.png"

    @property
    def scorecard_json(self) -> Path:
        return self.output / "scorecard.json"

    @property
    def scorecard_html(self) -> Path:
        return self.output / "scorecard.html"

    def to_dict(self) -> dict:
        return {
            "language": self.language,
            "classes": {
                "en": "English",
                "target": self.language,
                "other": "any other language",
                "degenerate": "a loop, an echo of the prompt, or empty (whether it ended or was cut off)",
            },
            "cut_off": "reached max_tokens without ending its turn (finish_reason length); counted apart from the "
            "class, a share of the answers received",
            "min_letters": self.config.min_letters,
            "lid_model": self.config.lid_model or "lid.176.ftz",
            "sampling": self.config.sampling.model_dump(),
            "samples": self.config.samples,
            "system": self.config.system,
            "prompts": {
                **{s: [str(p) for p in self.prompt_sources.get(s, ((), None))[0]] for s in PROMPT_SETS},
                "text_field": self.config.prompts.text_field,
                "limit": self.config.prompts.limit,
            },
            "models": [m.to_dict() for m in self.models],
        }


# --------------------------------------------------------------------------------------------- per model
def model_fingerprint(model: str) -> list | None:
    """Names, sizes and modification times of a local model folder's files: a retrained model in the same folder
    must not reuse the old responses. None for a Hub id or a served name."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return None
    return sorted([p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in folder.iterdir() if p.is_file())


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


def check_loadable(model: ScorecardModel) -> None:
    """Fail before loading anything when a LoRA adapter folder cannot work with the chosen backend."""
    folder = Path(model.model).expanduser()
    if not (folder / "adapter_config.json").is_file():
        return
    where = f"model '{model.name}' ({model.model})"
    if model.backend.type == "vllm":
        raise SourceError(
            f"{where} is a LoRA adapter folder: the vllm backend needs a full model. Merge it first "
            f"(`corpusforge train merge {model.model} --output DIR`) or use `backend: {{type: transformers}}`"
        )
    if model.backend.type != "transformers":
        return
    try:
        import peft  # noqa: F401 — heavy, the train extra: transformers loads base + adapter through it
    except ImportError as err:
        raise SourceError(
            f"{where} is a LoRA adapter folder: loading it needs peft: pip install 'corpusforge[train]'"
        ) from err
    if not (folder / "tokenizer_config.json").is_file():
        raise SourceError(
            f"{where} is a LoRA adapter folder without a tokenizer: save the base model's tokenizer beside the "
            "adapter (`AutoTokenizer.from_pretrained(BASE).save_pretrained(ADAPTER_DIR)`; corpusforge train does), "
            "or merge it (`corpusforge train merge`)"
        )


def free_memory() -> None:
    """Collect what the last model left and give CUDA's cached blocks back, so the next model loads into them."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
