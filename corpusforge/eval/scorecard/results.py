"""What `corpusforge eval align` produces, and what its stages share: the classes of the matrix, the result types
(`Response`, `Cell`, `ModelResult`, `ScorecardResult`), and the per-model helpers that generation (`align`) and likelihood
scoring (`align_retention`) both use — the fingerprint of a model's files and the slug of its name that key the
caches in ``OUT/responses/``, the check that a LoRA adapter folder can load, and freeing memory between models."""

from __future__ import annotations

import gc
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from corpusforge.errors import SourceError
from corpusforge.eval.scorecard.config import ScorecardConfig, ScorecardModel

PROMPT_SETS = ("en", "target")  # English prompts, target-language prompts
# the matrix columns; shares are over these. `degenerate`: a loop, an echo of the prompt, empty or cut off at the
# token limit (`degeneration`) — whatever language its bytes are in, never an answer in that language
CLASSES = ("en", "target", "other", "degenerate")
APART = ("undetermined", "failed")  # counted, never in the shares
RESPONSES_DIR = "responses"

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
    degeneration: str | None = None  # loop | echo | empty | cut_off, for a degenerate response


@dataclass
class Cell:
    """One row of the matrix: the responses to one prompt set."""

    prompts: int
    counts: dict[str, int]  # en, target, other, degenerate, undetermined, failed
    other_languages: dict[str, int]  # what "other" was, most frequent first
    degenerations: dict[str, int] = field(default_factory=dict)  # what "degenerate" was: loop, echo, …

    @property
    def determined(self) -> int:
        return sum(self.counts[c] for c in CLASSES)

    @property
    def shares(self) -> dict[str, float | None]:
        """Share of each class among the classified responses (undetermined and failed left out)."""
        n = self.determined
        return {c: (self.counts[c] / n if n else None) for c in CLASSES}

    def to_dict(self) -> dict:
        return {
            "prompts": self.prompts,
            "counts": self.counts,
            "shares": {c: None if v is None else round(v, 6) for c, v in self.shares.items()},
            "undetermined_share": round(self.counts["undetermined"] / self.prompts, 6) if self.prompts else None,
            "other_languages": self.other_languages,
            "degenerations": self.degenerations,
        }


@dataclass
class ModelResult:
    name: str
    model: str
    backend: dict
    cells: dict[str, Cell]  # keyed by prompt set
    responses: list[Response] = field(repr=False)
    reused: bool = False  # every response read back from OUT/responses (nothing generated)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "model": self.model,
            "backend": self.backend,
            "matrix": {s: self.cells[s].to_dict() for s in PROMPT_SETS},
            "responses": [asdict(r) for r in self.responses],
        }


@dataclass
class ScorecardResult:
    language: str
    config: ScorecardConfig
    models: list[ModelResult]
    output: Path
    likelihoods: dict = field(default_factory=dict)  # model name → scorecard.Likelihood (None: not measured)
    scorecard: dict = field(default_factory=dict)  # scorecard.build_scorecard: measures and a verdict per model

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
                "degenerate": "a loop, an echo of the prompt, empty, or cut off at the token limit",
            },
            "min_letters": self.config.min_letters,
            "lid_model": self.config.lid_model or "lid.176.ftz",
            "sampling": self.config.sampling.model_dump(),
            "system": self.config.system,
            "prompts": {
                "en": self.config.prompts.en,
                "target": self.config.prompts.target,
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
