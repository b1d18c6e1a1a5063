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
import ipaddress
import json
import string
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator

from corpusforge.config import StrictModel
from corpusforge.errors import did_you_mean
from corpusforge.lang.names import base_language
from corpusforge.redact import redact


def default_marker(code: str) -> str:
    """TransLLM's markers: `<EN>`, `<TH>`; for `zh_Hant` → `<ZH>`."""
    return f"<{base_language(code).upper()}>"


# --------------------------------------------------------------------------------------------- sampling
class Sampling(StrictModel):
    """Sampling parameters. All are explicit: a KD dataset must say how it was sampled."""

    temperature: float = Field(..., ge=0.0, description="0 = greedy.")
    top_p: float = Field(..., gt=0.0, le=1.0)
    max_tokens: int = Field(..., ge=1, description="Generated tokens per request; longer outputs end `length`.")
    n: int = Field(..., ge=1, description="Samples per prompt (each its own request and seed).")
    seed: int = Field(..., description="Base seed; each request's seed derives from it, the prompt id and the sample.")


# --------------------------------------------------------------------------------------------- backends
class VLLMBackendConfig(StrictModel):
    """Offline `vllm.LLM(...).chat(...)`. Data parallel: run `executor.workers` engines, one per GPU group."""

    type: Literal["vllm"] = "vllm"
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per engine.")
    dtype: str = Field("auto", description="Model dtype (auto, bfloat16, float16, float32).")
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0)
    max_model_len: int | None = Field(None, ge=16, description="Context length; default: the model's.")
    enforce_eager: bool = Field(False, description="Skip CUDA graph capture (faster start, slower decode).")
    batch_size: int = Field(512, ge=1, description="Requests per engine call (and per replay-cache chunk).")
    engine_args: dict[str, Any] = Field(default_factory=dict, description="More keyword arguments for `vllm.LLM`.")


class TransformersBackendConfig(StrictModel):
    """Batched `generate()` with left padding, on CPU or GPU; per-request seeds (Gumbel-max sampling)."""

    type: Literal["transformers"] = "transformers"
    device: str = Field("auto", description="`auto` (CUDA when available), `cpu`, `cuda`, `cuda:1`…")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_size: int = Field(32, ge=1, description="Requests per `generate()` call.")


def is_loopback(host: str | None) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1): traffic to it never leaves this machine."""
    if not host:
        return False
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


class OpenAIBackendConfig(StrictModel):
    """Any OpenAI-compatible chat endpoint, e.g. a running `vllm serve MODEL`."""

    type: Literal["openai"] = "openai"
    # Declared before base_url: the base_url check reads it.
    allow_insecure_http: bool = Field(
        False,
        description="Allow a plain `http://` base_url on a host other than this machine. The API key is then sent in "
        "clear text; by default only `https://` or `http://` to localhost/127.0.0.1/::1 is accepted.",
    )
    base_url: str = Field(
        ...,
        description="Endpoint root, e.g. `http://localhost:8000/v1`: `https://`, or `http://` to a loopback host "
        "unless `allow_insecure_http`.",
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        description="Environment variable holding the API key (the key itself never goes in a recipe).",
    )
    concurrency: int = Field(16, ge=1, description="Requests in flight at once.")
    timeout: float = Field(300.0, gt=0, description="Seconds per request.")
    batch_size: int = Field(256, ge=1, description="Requests per round (and per replay-cache chunk).")
    tokenizer: str | None = Field(
        None, description="Tokenizer folder or Hub id for `prompts.max_tokens` (the endpoint does not expose one)."
    )

    @field_validator("base_url")
    @classmethod
    def _http(cls, url: str, info: ValidationInfo) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got '{url}'")
        if url.startswith("http://") and not info.data.get("allow_insecure_http"):
            try:
                host = urlsplit(url).hostname
            except ValueError as err:
                raise ValueError(f"'{url}' is not a valid URL: {err}") from None
            if not is_loopback(host):
                raise ValueError(
                    f"'{url}' is plain http to '{host}', which is not this machine: the API key would cross the "
                    "network in clear text. Use https://, or http:// to localhost/127.0.0.1/::1 (e.g. through an "
                    "SSH tunnel), or set `allow_insecure_http: true` in this backend to accept the risk"
                )
        return url.rstrip("/")

    def __repr_args__(self):
        # The config's text (a log line, datatrove's executor.json) shows the base_url without its credentials.
        for name, value in super().__repr_args__():
            yield name, redact(value) if name == "base_url" else value


def _backend_kind(value: Any) -> str | None:
    # tags in <> are left out of error paths: `generate.backend.base_url`, not `generate.backend.openai.base_url`
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return f"<{kind}>" if isinstance(kind, str) else None


BackendConfig = Annotated[
    Annotated[VLLMBackendConfig, Tag("<vllm>")]
    | Annotated[TransformersBackendConfig, Tag("<transformers>")]
    | Annotated[OpenAIBackendConfig, Tag("<openai>")],
    Discriminator(
        _backend_kind,
        custom_error_type="backend_type",
        custom_error_message="`type` must be one of vllm, transformers, openai",
    ),
]


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
            "sampling": self.sampling.model_dump(exclude={"n"}),
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]
