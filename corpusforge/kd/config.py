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


def default_marker(code: str) -> str:
    """TransLLM's markers: `<EN>`, `<TH>`; for `zh_Hant` → `<ZH>`."""
    return f"<{base_language(code).upper()}>"


# --------------------------------------------------------------------------------------------- tasks
class _TaskBase(StrictModel):
    sources: list[str] | None = Field(None, description="Source names this task reads; default: all sources.")
    languages: list[str] | None = Field(
        None, description="Prompt languages this task takes (as a `language` step labelled them); default: all."
    )


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
        "Translate the following {source_language} text into {target_language}. "
        "Reply with the translation only.\n\n{text}",
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


def _task_kind(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("kind", "")
    return value.kind


Task = Annotated[
    Annotated[RecoveryTask, Tag("recovery")]
    | Annotated[TCoTTask, Tag("tcot")]
    | Annotated[TranslationTask, Tag("translation")],
    Discriminator(_task_kind),
]
TASK_KINDS = ("recovery", "tcot", "translation")


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
    tasks: list[Task] = Field(..., min_length=1, description="`recovery`, `tcot`, `translation`, each `{kind: {…}}`.")
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
