"""How a language model is asked to generate: the sampling parameters and each generation backend's settings
(``vllm``, ``transformers``, an OpenAI-compatible endpoint), chosen by their ``type``. A recipe's ``generate.sampling``
and ``generate.backend``, and each model of the scorecard's config, are these models; ``llm.backends`` runs them.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Discriminator, Field, Tag, ValidationInfo, field_validator

from corpusforge.config import StrictModel
from corpusforge.redact import redact


# --------------------------------------------------------------------------------------------- sampling
class Sampling(StrictModel):
    """Sampling parameters. All are explicit: a KD dataset must say how it was sampled."""

    temperature: float = Field(..., ge=0.0, description="0 = greedy.")
    top_p: float = Field(..., gt=0.0, le=1.0)
    top_k: int | None = Field(
        None,
        ge=1,
        description="Sample from the k most likely tokens only (none: all of them). Every backend applies it; the "
        "`openai` one sends `top_k`, which vLLM, SGLang and llama.cpp servers read.",
    )
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
