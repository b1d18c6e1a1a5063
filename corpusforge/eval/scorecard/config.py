"""The `corpusforge eval align` configuration: one pydantic model for the YAML file and the command-line flags.

```yaml
language: th                                   # target language (lid.176 code, or zh_Hant / zh_Hans)
prompts:
  target: [data/prompts-th.jsonl]              # jsonl (`text` field), txt (a prompt per line), corpusforge outputs
  en: [data/prompts-en.jsonl]
  limit: 200                                   # first N prompts of each set
sampling: {temperature: 0.0, max_tokens: 256, seed: 0}
models:
  - name: base
    model: /models/Meta-Llama-3-8B-Instruct
    backend: {type: vllm}
  - name: inscp-lora
    model: runs/inscp-lora                     # a LoRA adapter folder (transformers backend + peft)
    backend: {type: transformers, dtype: bfloat16}
reference: base                                # the model the others are judged against (default: the first)
retention: {limit: 200}                        # NLL of the reference's own English answers under each model
perplexity:                                    # held-out text, never trained on (optional)
  target: [data/heldout-th.jsonl]
  en: [data/heldout-en.jsonl]
output: out/align-th
```
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from corpusforge.config import StrictModel
from corpusforge.config.overrides import apply_overrides
from corpusforge.config.problems import lines_for, model_keys, pydantic_problems
from corpusforge.config.yaml import read_yaml
from corpusforge.errors import RecipeError, did_you_mean
from corpusforge.lang.names import LANGUAGE_ALIASES, LID176_LABELS, SCRIPT_LABELS
from corpusforge.llm.config import BackendConfig, Sampling, TransformersBackendConfig


def _exists(raw: str) -> str:
    if not Path(raw).expanduser().exists():
        raise ValueError(f"'{raw}' does not exist (cwd={Path.cwd()})")
    return raw


ExistingPath = Annotated[str, AfterValidator(_exists)]


class PromptSets(StrictModel):
    target: list[ExistingPath] = Field(
        ..., min_length=1, description="Target-language prompts: jsonl / txt files or corpusforge output folders."
    )
    en: list[ExistingPath] = Field(..., min_length=1, description="English prompts, same forms.")
    text_field: str = Field("text", description="jsonl field / dataset column holding the prompt.")
    limit: int | None = Field(None, ge=1, description="Use the first N prompts of each set; default: all.")

    @field_validator("target", "en", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value


class AlignSampling(StrictModel):
    """Greedy by default: the matrix should not move between two runs of the same model."""

    temperature: float = Field(0.0, ge=0.0, description="0 = greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1, description="Generated tokens per response.")
    seed: int = Field(0, description="Base seed; each request's seed derives from it and the prompt text.")

    def to_kd(self) -> Sampling:
        return Sampling(
            temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens, n=1, seed=self.seed
        )


class ScorecardModel(StrictModel):
    name: str | None = Field(None, description="Label in the table, JSON and chart; default: the model folder's name.")
    model: str = Field(
        ...,
        description="Local model folder, LoRA adapter folder (transformers backend, needs peft), Hub id, or the "
        "served model name (openai backend).",
    )
    backend: BackendConfig = Field(
        default_factory=TransformersBackendConfig, description="`transformers` (default), `vllm` or `openai`."
    )

    @model_validator(mode="after")
    def _default_name(self):
        if not self.name:
            self.name = Path(self.model.rstrip("/")).name or self.model
        return self


class RetentionConfig(StrictModel):
    """Retention (LLaMA Beyond English; TransLLM's recovery KD): how much less likely each model finds the
    reference model's own English answers. Needs each model's weights (any backend but `openai`)."""

    enabled: bool = Field(True, description="Measure retention.")
    answers: list[ExistingPath] | None = Field(
        None,
        description="A recovery-KD set: corpusforge KD output folders or jsonl files with a `messages` column "
        "(user turn, assistant answer). Default: the reference model's own answers to the English prompts that are "
        "in English and not degenerate.",
    )
    limit: int | None = Field(200, ge=1, description="Use the first N answers; null: all.")

    @field_validator("answers", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value


class PerplexityConfig(StrictModel):
    """Perplexity on held-out plain text in the target language and in English (LLaMA Beyond English)."""

    target: list[ExistingPath] = Field(default_factory=list, description="Held-out target-language text files.")
    en: list[ExistingPath] = Field(default_factory=list, description="Held-out English text files.")
    text_field: str = Field("text", description="jsonl field / dataset column holding the text.")
    limit: int | None = Field(200, ge=1, description="First N documents of each set; null: all.")
    max_tokens: int = Field(512, ge=2, description="Each document is truncated to this many tokens.")

    @field_validator("target", "en", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value


class VerdictConfig(StrictModel):
    """When a difference from the reference counts. A share must change by at least `min_change` *and* pass a
    two-proportion z-test at `alpha`: 20 prompts cannot tell 30% from 45%, and the verdict says so."""

    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="Significance level of every comparison.")
    min_change: float = Field(
        0.10, gt=0.0, le=1.0, description="Smallest change of a share that matters (0.10 = 10 points)."
    )
    retention_nll: float = Field(
        0.10,
        gt=0.0,
        description="Rise of the mean NLL (nats/token) of the reference's answers that counts as forgetting.",
    )
    english_ppl_ratio: float = Field(
        1.20, gt=1.0, description="English perplexity ratio (model / reference) that counts as English degraded."
    )


class ScorecardConfig(StrictModel):
    """Which models answer which prompts, and how the answers are classified."""

    language: str = Field(..., description="Target language: a lid.176 code (`th`, `vi`…) or `zh_Hant` / `zh_Hans`.")
    models: list[ScorecardModel] = Field(..., min_length=1, description="Models compared side by side, in this order.")
    prompts: PromptSets
    sampling: AlignSampling = Field(default_factory=AlignSampling)
    system: str | None = Field(None, description="System prompt for every request (none by default).")
    min_letters: int = Field(
        10, ge=1, description="Responses with fewer letters are `undetermined` (LID is noise on 'OK', '42', '✓')."
    )
    lid_model: str | None = Field(None, description="fastText LID model file; default: lid.176.ftz (bundled).")
    max_retries: int = Field(2, ge=0, description="Retries of a failed request before it counts as `failed`.")
    output: str = Field(..., description="Folder for scorecard.json / .html and align.json / .png.")
    reference: str | None = Field(
        None, description="Name of the model the others are judged against; default: the first."
    )
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    perplexity: PerplexityConfig | None = Field(None, description="Held-out text for perplexity; none by default.")
    verdict: VerdictConfig = Field(default_factory=VerdictConfig)

    @model_validator(mode="after")
    def _known_reference(self):
        names = [m.name for m in self.models]
        if self.reference is None:
            self.reference = names[0]
        elif self.reference not in names:
            raise ValueError(f"reference '{self.reference}' is not the name of a model (models: {', '.join(names)})")
        return self

    @field_validator("language")
    @classmethod
    def _known_language(cls, code: str) -> str:

        if code == "en":
            raise ValueError("the target language must not be English: the matrix compares English with it")
        known = LID176_LABELS | SCRIPT_LABELS
        if code in known:
            return code
        raise ValueError(f"unknown language '{code}'{did_you_mean(code, known, LANGUAGE_ALIASES)}")

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: list[ScorecardModel]) -> list[ScorecardModel]:
        seen: dict[str, int] = {}
        for i, m in enumerate(models):
            if m.name in seen:
                raise ValueError(
                    f"models[{seen[m.name]}] and models[{i}] are both named '{m.name}': give each a distinct `name`"
                )
            seen[m.name] = i
        return models

    @field_validator("lid_model")
    @classmethod
    def _lid_exists(cls, path: str | None) -> str | None:
        if path is not None and not Path(path).expanduser().is_file():
            raise ValueError(f"'{path}' is not a file (cwd={Path.cwd()})")
        return path


def scorecard_config_from_dict(
    data, overrides: list[str] | None = None, source: str | None = None, lines: dict | None = None
) -> ScorecardConfig:
    """Validate; every problem is reported with its key path (and YAML line when ``lines`` has it)."""
    if not isinstance(data, dict):
        raise RecipeError([((), f"an align config is a mapping (language, models, prompts, output), got {data!r}")])
    if overrides:
        data = apply_overrides(data, overrides)
    try:
        return ScorecardConfig.model_validate(data)
    except ValidationError as err:
        problems = pydantic_problems(err, partial(model_keys, ScorecardConfig))
    raise RecipeError(problems, source, lines_for(problems, lines or {}))


def load_scorecard_config(
    path: str | Path, overrides: list[str] | None = None, output: str | None = None
) -> ScorecardConfig:
    """Load and validate a config file; ``output`` replaces its `output` key."""
    data, lines = read_yaml(path, what="config file")
    if output is not None and isinstance(data, dict):
        data["output"] = output
    return scorecard_config_from_dict(data, overrides, str(path), lines)
