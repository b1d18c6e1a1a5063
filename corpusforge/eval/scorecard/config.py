"""The `corpusforge eval scorecard` configuration: one pydantic model for the YAML file and the command-line flags,
and how each model is sampled (`ModelSampling`: the config's values, or with ``sampling: auto`` the model's own
generation_config.json).

```yaml
language: th                                   # target language (lid.176 code, or zh_Hant / zh_Hans)
prompts:
  target: [data/prompts-th.jsonl]              # jsonl (`text` field), txt (a prompt per line), corpusforge outputs
  en: [data/prompts-en.jsonl]                  # default: the shipped set (corpusforge/data/prompts/en.jsonl)
  limit: 200                                   # first N prompts of each set
sampling: {temperature: 0.0, max_tokens: 256, seed: 0}   # or `sampling: auto`, or {auto: true, max_tokens: 256}
samples: 1                                     # answers per prompt (each with its own seed)
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

import json
import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from corpusforge.config import StrictModel
from corpusforge.config.overrides import apply_overrides
from corpusforge.config.problems import lines_for, model_keys, pydantic_problems
from corpusforge.config.yaml import read_yaml
from corpusforge.data import SHIPPED_PROMPT_FIELD, shipped_languages, shipped_prompts
from corpusforge.errors import RecipeError, SourceError, did_you_mean
from corpusforge.lang.names import LANGUAGE_ALIASES, LID176_LABELS, SCRIPT_LABELS
from corpusforge.llm.config import BackendConfig, Sampling, TransformersBackendConfig

log = logging.getLogger("corpusforge.eval")


def _exists(raw: str) -> str:
    if not Path(raw).expanduser().exists():
        raise ValueError(f"'{raw}' does not exist (cwd={Path.cwd()})")
    return raw


ExistingPath = Annotated[str, AfterValidator(_exists)]


class PromptSets(StrictModel):
    target: list[ExistingPath] | None = Field(
        None,
        min_length=1,
        description="Target-language prompts: jsonl / txt files or corpusforge output folders; default: the set "
        "corpusforge ships for the language, where there is one.",
    )
    en: list[ExistingPath] | None = Field(
        None, min_length=1, description="English prompts, same forms; default: the shipped English set (306 prompts)."
    )
    text_field: str = Field("text", description="jsonl field / dataset column holding the prompt (of given files).")
    limit: int | None = Field(None, ge=1, description="Use the first N prompts of each set; default: all.")

    @field_validator("target", "en", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value

    def source(self, prompt_set: str, language: str) -> tuple[list[str], str]:
        """(files, text field) of one prompt set: the files given, or the shipped set for the language."""
        given = self.en if prompt_set == "en" else self.target
        if given:
            return given, self.text_field
        code = "en" if prompt_set == "en" else language
        shipped = shipped_prompts(code)
        if shipped is None:
            raise ValueError(
                f"prompts.{prompt_set}: no prompt file given, and corpusforge ships no prompt set for '{code}' "
                f"(it ships: {', '.join(shipped_languages()) or 'none'}); give prompts.{prompt_set}: [FILE] "
                "(jsonl with a `text` field, or txt with a prompt per line)"
            )
        return [str(shipped)], SHIPPED_PROMPT_FIELD


class AlignSampling(StrictModel):
    """Greedy by default: the matrix should not move between two runs of the same model. ``auto``: sample each model
    the way it is served — the temperature, top_p and top_k of its own generation_config.json (`ModelSampling`)."""

    auto: bool = Field(
        False,
        description="Take temperature, top_p and top_k from each model's generation_config.json (greedy when it "
        "sets none); `sampling: auto` is short for `{auto: true}`.",
    )
    temperature: float = Field(0.0, ge=0.0, description="0 = greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=1, description="Sample from the k most likely tokens only (none: all).")
    max_tokens: int = Field(256, ge=1, description="Generated tokens per response.")
    seed: int = Field(0, description="Base seed; each request's seed derives from it, the prompt text and the sample.")

    @model_validator(mode="before")
    @classmethod
    def _auto_shorthand(cls, value):
        if value == "auto":
            return {"auto": True}
        if isinstance(value, str):
            raise ValueError(f"give `auto` or a mapping (temperature, top_p, top_k, max_tokens, seed), got {value!r}")
        return value

    @model_validator(mode="after")
    def _auto_or_values(self):
        both = sorted({"temperature", "top_p", "top_k"} & self.model_fields_set)
        if self.auto and both:
            raise ValueError(
                f"{' and '.join(both)} set with `auto`, which takes them from each model's generation_config.json: "
                "drop one or the other"
            )
        return self

    def for_model(self, model: ScorecardModel, samples: int) -> ModelSampling:
        """How ``model`` is sampled, ``samples`` answers per prompt (one when the decoding turns out greedy)."""
        if not self.auto:
            return ModelSampling(
                self.temperature, self.top_p, self.max_tokens, self.seed, samples, "config", top_k=self.top_k
            )
        values, where = generation_config(model)
        out = ModelSampling(0.0, 1.0, self.max_tokens, self.seed, samples, where)
        if values is None:
            out.notes.append("greedy (temperature 0): nothing to read the model's sampling from")
        else:
            sampled = {k: values[k] for k in ("temperature", "top_p", "top_k") if values.get(k) is not None}
            # as vLLM serves a model (its default `generation_config: auto`): these values, whatever `do_sample`
            # says; a file with `do_sample: true` alone samples at temperature 1
            if sampled or values.get("do_sample"):
                out.temperature = float(sampled.get("temperature", 1.0))
                out.top_p = float(sampled.get("top_p", 1.0))
                if out.temperature < 0 or not 0 < out.top_p <= 1:
                    raise SourceError(f"{where}: temperature {out.temperature}, top_p {out.top_p} out of range")
                top_k = sampled.get("top_k")
                if top_k is not None and not isinstance(top_k, int):
                    raise SourceError(f"{where}: top_k {top_k!r} is not a whole number")
                out.top_k = top_k if top_k and top_k > 0 else None  # 0 and -1: no top-k, as transformers and vLLM
            else:
                out.notes.append("the file sets no temperature, top_p or top_k: greedy (temperature 0)")
            ignored = {
                "min_p": values.get("min_p") not in (None, 0, 0.0),
                "repetition_penalty": values.get("repetition_penalty") not in (None, 1, 1.0),
            }
            for key in (k for k, set_ in ignored.items() if set_):
                out.not_applied[key] = values[key]
            if out.not_applied and out.temperature > 0:
                shown = ", ".join(f"{k} {v}" for k, v in out.not_applied.items())
                out.notes.append(
                    f"{shown} not applied: the generation backends take temperature, top_p and top_k only, so these "
                    "answers are sampled from a wider distribution than the model's servers use"
                )
        if out.temperature == 0 and samples > 1:
            out.samples = 1
            out.notes.append(f"one answer per prompt, not {samples}: greedy answers do not vary")
        return out


@dataclass
class ModelSampling:
    """The sampling one model's answers are drawn with, and where it came from (``source``: ``config``, or the
    generation_config.json that ``sampling: auto`` read)."""

    temperature: float
    top_p: float
    max_tokens: int
    seed: int
    samples: int  # answers per prompt, each with its own seed
    source: str
    not_applied: dict = field(default_factory=dict)  # what the model's file sets that no backend applies (min_p…)
    notes: list[str] = field(default_factory=list)
    top_k: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def to_backend(self) -> Sampling:
        return Sampling(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_tokens=self.max_tokens,
            n=1,
            seed=self.seed,
        )

    def describe(self) -> str:
        how = "greedy" if self.greedy else f"temperature {self.temperature:g}, top_p {self.top_p:g}"
        if not self.greedy and self.top_k:
            how += f", top_k {self.top_k}"
        return f"{how}, {self.samples} answer(s) per prompt, max_tokens {self.max_tokens} ({self.source})"

    def to_dict(self) -> dict:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "samples": self.samples,
            "source": self.source,
            "not_applied": self.not_applied,
            "notes": self.notes,
        }


GENERATION_CONFIG = "generation_config.json"


def generation_config(model: ScorecardModel) -> tuple[dict | None, str]:
    """The sampling settings a model ships (its generation_config.json as a dict; {} when it has none) and where
    they were read, for ``sampling: auto``. None when there is nothing to read: an endpoint model (`openai`) with
    no local folder — its `backend.tokenizer` folder, when local, is read as the model's own."""
    if model.backend.type == "openai":
        folder = next(
            (
                Path(p).expanduser()
                for p in (model.backend.tokenizer, model.model)
                if p and Path(p).expanduser().is_dir()
            ),
            None,
        )
        if folder is None:
            return None, (
                f"openai endpoint '{model.model}' has no local folder to read {GENERATION_CONFIG} from (set "
                "`backend.tokenizer` to the model's folder, or give sampling.temperature / top_p)"
            )
        return _local_generation_config(folder)
    folder = Path(model.model).expanduser()
    return _local_generation_config(folder) if folder.is_dir() else _hub_generation_config(model.model)


def _local_generation_config(folder: Path) -> tuple[dict, str]:
    path = folder / GENERATION_CONFIG
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8")), str(path)
        except (ValueError, UnicodeDecodeError) as err:
            raise SourceError(f"{path}: not JSON ({err})") from err
    adapter = folder / "adapter_config.json"
    if adapter.is_file():  # a LoRA adapter is served with its base model's settings
        base = json.loads(adapter.read_text(encoding="utf-8")).get("base_model_name_or_path")
        if base:
            base_folder = Path(base).expanduser()
            return _local_generation_config(base_folder) if base_folder.is_dir() else _hub_generation_config(base)
    return {}, f"{folder} (no {GENERATION_CONFIG})"


def _hub_generation_config(repo: str) -> tuple[dict, str]:
    from huggingface_hub import hf_hub_download  # the models it names are loaded from the Hub anyway
    from huggingface_hub.errors import EntryNotFoundError

    try:
        path = hf_hub_download(repo, GENERATION_CONFIG)
    except EntryNotFoundError:
        return {}, f"{repo} on the Hub (no {GENERATION_CONFIG})"
    except Exception as err:  # noqa: BLE001 — offline, unknown repo…: the model itself would not load either
        raise SourceError(f"sampling: auto: cannot read {GENERATION_CONFIG} of '{repo}': {err}") from err
    return json.loads(Path(path).read_text(encoding="utf-8")), f"{repo}/{GENERATION_CONFIG}"


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
    prompts: PromptSets = Field(
        default_factory=PromptSets, description="Prompt files; without them, the sets corpusforge ships."
    )
    sampling: AlignSampling = Field(default_factory=AlignSampling)
    samples: int = Field(
        1,
        ge=1,
        description="Answers per prompt, each with its own seed (needs sampling: temperature > 0, or `auto`). The "
        "significance tests count them as clustered by prompt, not as independent prompts.",
    )
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
    def _prompts_exist(self):
        self.prompts.source("target", self.language)  # no file and nothing shipped: an error naming the key
        return self

    @model_validator(mode="after")
    def _samples_vary(self):
        if self.samples > 1 and not self.sampling.auto and self.sampling.temperature == 0:
            raise ValueError(
                f"samples: {self.samples} with greedy decoding (sampling.temperature 0) would ask each prompt "
                f"{self.samples} times for the same answer; set sampling.temperature > 0, `sampling: auto`, or "
                "samples: 1"
            )
        return self

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
