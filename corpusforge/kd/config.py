"""The `generate:` section of a recipe: model, backend, explicit sampling, KD tasks, prompt guards, output checks.

```yaml
generate:
  model: /models/Meta-Llama-3-8B-Instruct      # local folder or Hub id
  backend: {type: vllm, tensor_parallel_size: 1}
  sampling: {temperature: 0.7, top_p: 0.9, max_tokens: 1024, n: 1, seed: 0}
  tasks:
    - recovery: {sources: [prompts-en]}
    - tcot: {sources: [prompts-th], language: th}
```
"""

from __future__ import annotations

import hashlib
import json
import string
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from corpusforge.config import StrictModel
from corpusforge.errors import did_you_mean
from corpusforge.lang.names import base_language
from corpusforge.llm.config import BackendConfig, Sampling

TRANSLATE_PROMPT = (
    "Translate the following {source_language} text into {target_language}. Reply with the translation only.\n\n{text}"
)


def default_marker(code: str) -> str:
    """TransLLM's markers: `<EN>`, `<TH>`; for `zh_Hant` → `<ZH>`."""
    return f"<{base_language(code).upper()}>"


# --------------------------------------------------------------------------------------------- tasks
class _TaskBase(StrictModel):
    sources: list[str] | None = Field(None, description="Source names this task reads; default: all sources.")
    languages: list[str] | None = Field(
        None, description="Prompt languages this task takes (as a `language` step labelled them); default: all."
    )

    def jobs(self, n: int) -> int:
        """Jobs per prompt for `sampling.n` = ``n``: one per sample, each its own row."""
        return n


class RecoveryTask(_TaskBase):
    """The chat model answers prompts itself: messages [user, assistant] (recovery KD)."""

    kind: Literal["recovery"] = "recovery"
    language: str | None = Field("en", description="Expected language of the answer (checked by LID); null: any.")


class Markers(StrictModel):
    en: str = "<EN>"
    response: str = "<RESPONSE>"
    target: str | None = Field(None, description="Default: from the language, e.g. `<TH>`, `<ZH>`.")


class TCoTTask(_TaskBase):
    """TransLLM's translation chain-of-thought: target query → `<EN> query_en <RESPONSE> answer_en <TH> answer`."""

    kind: Literal["tcot"] = "tcot"
    language: str = Field(..., description="Target language of the queries, e.g. `th`, `zh_Hant`.")
    query_en_field: str | None = Field(
        None, description="Source field with the query's English translation; missing: the model translates."
    )
    answer_field: str | None = Field(
        None,
        description="Source field with a target-language answer to use as is; missing: the model translates its "
        "English answer.",
    )
    markers: Markers = Field(default_factory=Markers, description="Section markers of the assistant turn.")
    translate_prompt: str = Field(
        TRANSLATE_PROMPT,
        description="Prompt for the model's own translations ({source_language}, {target_language}, {text}).",
    )

    @model_validator(mode="after")
    def _target_marker(self):
        if self.markers.target is None:
            self.markers.target = default_marker(self.language)
        return self


class TranslationTask(_TaskBase):
    """Parallel pairs as instruction data: `text` is in `source_language`, `pair_field` holds the translation."""

    kind: Literal["translation"] = "translation"
    source_language: str = Field(..., description="Language of the source's text field.")
    target_language: str = Field(..., description="Language of `pair_field`.")
    pair_field: str | None = Field(
        None, description="Source field with the translation; missing or empty: the model translates."
    )
    directions: Literal["both", "forward", "backward"] = Field(
        "both", description="forward: source→target; backward: target→source."
    )
    instruction: str = Field(
        "Translate the following {source_language} text into {target_language}.\n\n{text}",
        description="User turn ({source_language}, {target_language}, {text}); also the model's prompt when it "
        "translates.",
    )


class Weights(StrictModel):
    """How much each finding lowers an answer's score: score = −Σ weight × measure, each measure between 0 and 1
    (0: an answer with no finding). The findings are the scorecard's (lang/fidelity.py, lang/degeneration.py)."""

    degenerate: float = Field(
        12.0,
        ge=0,
        description="A loop, an echo of the prompt or an empty answer (such an answer has no other finding); above "
        "the sum of the others, so a degenerate answer is always the worst.",
    )
    language: float = Field(4.0, ge=0, description="The answer as a whole is in another language (LID on its prose).")
    lines: float = Field(2.0, ge=0, description="Lines in another language; full at 2.")
    script: float = Field(
        3.0,
        ge=0,
        description="zh_Hant: Simplified-only characters (zh_Hans: Traditional-only); full at 3.",
    )
    region: float = Field(
        1.0, ge=0, description="zh_Hant: places of mainland vocabulary (zh_Hans: Taiwan's); full at 3."
    )
    english: float = Field(
        1.0, ge=0, description="English words, in a language not written in Latin letters; full at 10."
    )
    cut_off: float = Field(0.5, ge=0, description="The answer ran into `max_tokens` (finish reason `length`).")

    @model_validator(mode="after")
    def _degenerate_is_worst(self):
        others = sum(value for key, value in self if key != "degenerate")
        if self.degenerate <= others:
            raise ValueError(
                f"`degenerate` must be above the sum of the other weights ({others:g}) so that a degenerate answer "
                f"is always the worst, got {self.degenerate:g}"
            )
        return self


class PreferenceTask(_TaskBase):
    """Preference pairs that differ in language adherence (PureTC-1B's third stage): the model answers each prompt
    `sampling.n` times; each answer is scored by the scorecard's fidelity measures (`weights`); the best answer that
    passes the bar is `chosen`, the worst `rejected`, when their scores differ by `min_margin` or more. Rows in TRL's
    conversational preference format (`prompt`, `chosen`, `rejected`) with the scores and their reasons."""

    kind: Literal["preference"] = "preference"
    language: str = Field(..., description="Language the answers must be in, e.g. `zh_Hant`.")
    min_margin: float = Field(
        1.0,
        gt=0,
        description="Least score difference between chosen and rejected; a prompt whose answers are closer gives no "
        "pair (`no_margin`).",
    )
    weights: Weights = Field(default_factory=Weights, description="How much each finding lowers a score.")
    fallback: Literal["none", "reference", "translate"] = Field(
        "none",
        description="When no answer passes the bar: `reference`, the row's `answer_field` is chosen; `translate`, "
        "the model answers the query in English and translates its answer (TransLLM's route); `none`, no pair "
        "(`no_chosen`). The fallback's answer must pass the bar too.",
    )
    answer_field: str | None = Field(
        None, description="Source field with a reference answer in `language` (`fallback: reference`)."
    )
    query_en_field: str | None = Field(
        None,
        description="Source field with the query in English (`fallback: translate`); missing: the model translates.",
    )
    translate_prompt: str = Field(
        TRANSLATE_PROMPT,
        description="Prompt for the model's own translations with `fallback: translate` ({source_language}, "
        "{target_language}, {text}).",
    )

    def jobs(self, n: int) -> int:
        """One job per prompt: it draws all ``n`` samples and makes at most one pair."""
        return 1

    @model_validator(mode="after")
    def _fallback_fields(self):
        if self.fallback == "reference" and not self.answer_field:
            raise ValueError("fallback: reference needs `answer_field`, the source field with the reference answer")
        if self.answer_field and self.fallback != "reference":
            raise ValueError(f"answer_field is read only with `fallback: reference` (fallback is {self.fallback})")
        if self.query_en_field and self.fallback != "translate":
            raise ValueError(f"query_en_field is read only with `fallback: translate` (fallback is {self.fallback})")
        return self


def _task_kind(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("kind", "")
    return value.kind


Task = Annotated[
    Annotated[RecoveryTask, Tag("recovery")]
    | Annotated[TCoTTask, Tag("tcot")]
    | Annotated[TranslationTask, Tag("translation")]
    | Annotated[PreferenceTask, Tag("preference")],
    Discriminator(_task_kind),
]
TASK_KINDS = ("recovery", "tcot", "translation", "preference")


# --------------------------------------------------------------------------------------------- prompts, checks
class PromptConfig(StrictModel):
    template: str = Field(
        "{text}", description="User turn built from the source row: `{text}` and the source's `fields`."
    )
    system: str | None = Field(None, description="System prompt for every request (none by default).")
    max_chars: int = Field(16_000, ge=1, description="Prompts longer than this are dropped (`prompt_too_long`).")
    max_tokens: int | None = Field(
        None, ge=1, description="Prompts whose rendered chat exceeds this many tokens are dropped (`prompt_too_long`)."
    )
    dedup: bool = Field(
        True,
        description="Drop repeated prompts within a task (case/spacing-insensitive); a `dedup` step dedups across "
        "all tasks.",
    )


class Checks(StrictModel):
    """Output checks; each dropped row is counted under its reason in the manifest."""

    language: bool = Field(True, description="LID on each generated field (English part English, target part target).")
    min_language_chars: int = Field(
        20, ge=1, description="Fields with fewer letters than this are not language-checked (LID is noise on '42')."
    )
    truncated: Literal["drop", "keep"] = Field("drop", description="Rows with a `finish_reason: length` output.")
    empty: Literal["drop", "keep"] = Field("drop", description="Rows with an empty generated field.")
    degenerate: Literal["drop", "keep"] = Field(
        "drop",
        description="Rows with a generated field that loops or echoes its prompt (counted as `loop_<field>`, "
        "`echo_<field>`; the detector of `eval align`, lang/degeneration.py), whatever its length.",
    )
    script: bool = Field(
        True,
        description="A zh_Hant field with any Simplified-only character (zh_Hans: Traditional-only) is "
        "`wrong_script_<field>`, whatever its length (the language check skips short fields).",
    )
    lines: bool = Field(
        False,
        description="Opt-in: LID on each line of each generated field; a field with a line of 5+ words (characters "
        "in Chinese, Thai…) in another language is `switched_language_<field>` (lang/fidelity.py, as the scorecard).",
    )


class GenerateConfig(StrictModel):
    """Self-generated KD: the recipe's sources become prompts; the output is a KD dataset."""

    model: str = Field(..., description="Local model folder or Hub id (served model name for `openai`).")
    backend: BackendConfig = Field(..., description="`vllm`, `transformers` or `openai` with its settings.")
    sampling: Sampling = Field(..., description="temperature, top_p, max_tokens, n, seed — all explicit.")
    tasks: list[Task] = Field(
        ...,
        min_length=1,
        description="`recovery`, `tcot`, `translation`, each `{kind: {…}}`; or `preference` tasks only (pairs).",
    )
    prompts: PromptConfig = Field(default_factory=PromptConfig, description="Prompt template and guards.")
    checks: Checks = Field(default_factory=Checks, description="Output checks (language, truncated, empty).")
    max_retries: int = Field(3, ge=0, description="Retries of a failed request.")
    retry_backoff: float = Field(1.0, ge=0.0, description="Seconds before the first retry; doubles each retry.")
    on_failure: Literal["fail", "skip"] = Field(
        "fail",
        description="After the retries: `fail` ends the task in error once all other requests are done (a rerun "
        "retries only the failed ones); `skip` drops the row and counts it (`request_failed`).",
    )

    @field_validator("tasks", mode="before")
    @classmethod
    def _one_key_form(cls, raw: Any) -> Any:
        """`- tcot: {language: th}` (the YAML form) → `{kind: tcot, language: th}`."""
        if not isinstance(raw, list):
            return raw
        items = []
        for item in raw:
            if isinstance(item, str) and item in TASK_KINDS:
                item = {"kind": item}
            elif isinstance(item, dict) and "kind" not in item and len(item) == 1:
                ((kind, params),) = item.items()
                if kind not in TASK_KINDS:
                    hint = did_you_mean(kind, TASK_KINDS, otherwise=f" (tasks: {', '.join(TASK_KINDS)})")
                    raise ValueError(f"unknown task '{kind}'{hint}")
                item = {"kind": kind, **(params or {})}
            items.append(item)
        return items

    @field_validator("prompts")
    @classmethod
    def _template_fields(cls, prompts: PromptConfig) -> PromptConfig:
        for _, name, _, _ in string.Formatter().parse(prompts.template):
            if name is not None and not name.isidentifier():
                raise ValueError(f"prompts.template: placeholder '{{{name}}}' is not a field name")
        return prompts

    @model_validator(mode="after")
    def _preference_alone(self):
        kinds = {task.kind for task in self.tasks}
        if "preference" not in kinds:
            return self
        if kinds != {"preference"}:
            others = ", ".join(sorted(kinds - {"preference"}))
            raise ValueError(
                f"tasks: `preference` writes pairs (prompt, chosen, rejected), not conversations: put it in a recipe "
                f"of its own, without {others}"
            )
        if self.sampling.n < 2:
            raise ValueError(
                f"sampling.n: a `preference` task pairs the best of n answers with the worst, so n must be at least "
                f"2, got {self.sampling.n}"
            )
        return self

    @property
    def preference(self) -> bool:
        """A preference dataset: its rows are pairs (`prompt`, `chosen`, `rejected`), not conversations."""
        return all(task.kind == "preference" for task in self.tasks)

    def params_hash(self) -> str:
        """What determines a completion besides its prompt: model, backend kind and dtype, sampling."""
        backend = self.backend
        what = {
            "model": self.model,
            "backend": backend.type,
            "dtype": getattr(backend, "dtype", None),
            # unset top_k left out: the key of a replay cache written before top_k existed is unchanged
            "sampling": self.sampling.model_dump(exclude={"n"}, exclude_none=True),
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]
