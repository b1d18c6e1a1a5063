"""`perplexity`: score each document with a causal LM, write `metadata["perplexity"]`, keep by min/max thresholds.

InsCP (Chen et al. 2024) selected its data this way: context data with PPL ≥ 30, instruction data with PPL ≤ 15
(``perplexity: {model: …, min: 30}`` and ``{…, max: 15}``). A document's perplexity is ``exp`` of the mean
next-token negative log-likelihood over its first ``max_length`` tokens: the first token is context only, so a
document of n tokens is scored on n - 1 predictions; a document with fewer than two tokens cannot be scored.

Backends sit behind a small interface (``Scorer.score(texts) -> perplexities``); the step only applies thresholds.
``transformers``: batched forward passes with right padding and an attention mask, documents sorted by token length
inside a window of ``batch_size × SORT_WINDOW`` documents so each batch pads little, output in input order.
``vllm``: prompt log-probabilities, with the engine built as every vLLM engine is (``corpusforge.llm.backends.
vllm_engine``: the worker's GPU group taken first, chunked prefill off on vLLM's CPU platform).

A Hub model is loaded at ``revision`` (both backends, model and tokenizer), which the build pins to a commit sha
(``corpusforge.pinning.pin_step_revisions``) so every worker scores with the same weights.

Needs ``torch`` and ``transformers``: ``pip install 'corpusforge[ppl]'``.
"""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path
from typing import Literal, Protocol

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from pydantic import Field, field_validator, model_validator

from corpusforge.config import StrictModel
from corpusforge.errors import CorpusforgeError
from corpusforge.llm import compute_dtype, load_causal_lm, load_tokenizer, resolve_device
from corpusforge.llm.backends import vllm_engine
from corpusforge.pinning import is_hub_id

INSTALL_HINT = "pip install 'corpusforge[ppl]'"
# Documents are read this many forward batches at a time and sorted by token length, so each batch holds documents
# of about the same length (padding is computed but wasted). Larger windows pad less but hold more documents.
SORT_WINDOW = 16
# Tokenizing a whole multi-megabyte document to keep its first `max_length` tokens wastes time: only this many
# characters per token are tokenized. No tokenizer averages more than a few characters per token on real text.
_CHARS_PER_TOKEN_CAP = 32
_DEVICE = re.compile(r"auto|cpu|mps|(cuda|xpu)(:\d+)?")


class PerplexityModelError(CorpusforgeError):
    """A scoring model that cannot be loaded."""


class PerplexityParams(StrictModel):
    """Score documents with a causal LM: writes `metadata.perplexity`, keeps those within [min, max].

    Perplexity is exp(mean next-token negative log-likelihood) over a document's first `max_length` tokens. Drop
    reasons: `perplexity_low`, `perplexity_high`, `perplexity_no_tokens` (fewer than two tokens: nothing to predict)
    and `perplexity_nan` (the model's numbers overflowed, as float16 can); the last two only when a threshold is set,
    with `metadata.perplexity` empty. Needs torch and transformers: `pip install 'corpusforge[ppl]'`.
    """

    model: str = Field(
        ...,
        description="Causal LM: a local folder (as saved by `save_pretrained`) or a Hub model id (downloaded when "
        "the step first runs).",
    )
    revision: str | None = Field(
        None,
        description="Hub model only: the branch, tag or commit sha to load. Unset, the build pins the Hub id to "
        "the commit its main branch points at when the build is planned, so every worker scores alike.",
    )
    min: float | None = Field(
        None, gt=0, description="Drop documents with perplexity below this (`perplexity_low`). InsCP context data: 30."
    )
    max: float | None = Field(
        None,
        gt=0,
        description="Drop documents with perplexity above this (`perplexity_high`). InsCP instruction data: 15.",
    )
    backend: Literal["transformers", "vllm"] = Field(
        "transformers",
        description="Scoring engine: `transformers` (batched forward passes) or `vllm` (prompt log-probabilities; "
        "extra `[gen]`).",
    )
    engine_args: dict = Field(
        default_factory=dict,
        description="More keyword arguments for `vllm.LLM` (e.g. `gpu_memory_utilization`, `tensor_parallel_size`).",
    )
    batch_size: int = Field(
        8,
        ge=1,
        description="Documents per forward pass. Memory grows with batch_size × max_length × vocabulary size "
        "(the logits).",
    )
    max_length: int = Field(
        1024,
        ge=2,
        description="Tokens scored per document: longer documents are truncated and scored on their first "
        "`max_length` tokens only.",
    )
    device: str = Field(
        "auto",
        description="`auto` (cuda if available, else cpu), `cpu`, `cuda`, `cuda:N`, `mps`. Each worker process "
        "loads its own copy of the model.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Model weights dtype; `auto`: bfloat16 on CUDA (float16 where the GPU lacks bfloat16), float32 "
        "otherwise. NLL is always summed in float32.",
    )
    add_special_tokens: bool | Literal["auto"] = Field(
        "auto",
        description="Let the tokenizer add its special tokens (BOS). `auto`: add them unless the text already starts "
        "with the tokenizer's BOS token — InsCP-tagged text (`tag` step) carries BOS, raw text does not, and "
        "Llama-style models score text without BOS badly.",
    )
    label_only: bool = Field(False, description="Annotate only; never drop.")

    @field_validator("model")
    @classmethod
    def _findable(cls, spec: str) -> str:
        path = Path(spec).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise ValueError(f"model folder '{spec}' has no config.json (save it with `save_pretrained`)")
            return spec
        if path.exists():
            raise ValueError(f"model '{spec}' is a file; give the model folder that holds config.json")
        if spec.startswith((".", "/", "~")) or spec.count("/") > 1 or "\\" in spec:
            raise ValueError(f"model folder '{spec}' does not exist (cwd={Path.cwd()})")
        return spec  # a Hub id (`org/name` or `name`): fetched when the step first runs

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if not _DEVICE.fullmatch(device):
            raise ValueError(f"unknown device '{device}' (auto, cpu, cuda, cuda:N, mps, xpu)")
        return device

    @model_validator(mode="after")
    def _ordered(self):
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be < max ({self.max})")
        if self.revision is not None and not is_hub_id(self.model):
            raise ValueError(
                f"revision '{self.revision}' applies to a Hub model only; '{self.model}' is not a Hub model id: "
                "remove `revision`"
            )
        for key in ("revision", "tokenizer_revision"):
            if key in self.engine_args:
                raise ValueError(f"engine_args.{key}: set the step's `revision` instead (it pins model and tokenizer)")
        return self


class Scorer(Protocol):
    """A perplexity backend."""

    def score(self, texts: list[str]) -> list[float | None]:
        """Perplexity of each text, in input order; None for a text with fewer than two tokens."""
        ...


class TransformersScorer:
    """Batched forward passes of a `transformers` causal LM; loads the model when constructed."""

    def __init__(self, params: PerplexityParams):
        self.params = params
        self.device = resolve_device(params.device)
        dtype = compute_dtype(self.device) if params.dtype == "auto" else params.dtype
        try:
            self.tokenizer = load_tokenizer(params.model, revision=params.revision)
            self.model = load_causal_lm(params.model, dtype=dtype, device=str(self.device), revision=params.revision)
        except OSError as err:
            at = f"@{params.revision}" if params.revision else ""
            raise PerplexityModelError(
                f"cannot load causal LM '{params.model}{at}' ({err}); offline, give a local model folder"
            ) from None

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        return token_ids(self.tokenizer, texts, self.params)

    def score(self, texts: list[str]) -> list[float | None]:
        import torch
        import torch.nn.functional as F

        ids = self.token_ids(texts)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)  # longest first: OOM shows early
        scores: list[float | None] = [None] * len(ids)
        size = self.params.batch_size
        with torch.inference_mode():
            for start in range(0, len(order), size):
                batch = [i for i in order[start : start + size] if len(ids[i]) >= 2]
                if not batch:
                    continue
                width = len(ids[batch[0]])
                input_ids = torch.zeros((len(batch), width), dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):  # right padding: real positions keep positions 0..n-1
                    input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                    mask[row, : len(ids[i])] = 1
                input_ids = input_ids.to(self.device)
                logits = self.model(input_ids=input_ids, attention_mask=mask.to(self.device)).logits
                nlls = []
                for row, i in enumerate(batch):  # one row at a time: a float32 copy of all logits can be GBs
                    n = len(ids[i])
                    nlls.append(F.cross_entropy(logits[row, : n - 1].float(), input_ids[row, 1:n], reduction="mean"))
                for i, nll in zip(batch, torch.stack(nlls).tolist()):  # one device sync per batch
                    scores[i] = math.exp(nll) if nll < 700 else math.inf  # exp overflows a float past ~709
        return scores


def token_ids(tokenizer, texts: list[str], p: PerplexityParams) -> list[list[int]]:
    """Token ids of each text, as many as `max_length`, special tokens added as `add_special_tokens` says."""
    bos = tokenizer.bos_token
    cap = p.max_length * _CHARS_PER_TOKEN_CAP
    out: list[list[int]] = [[] for _ in texts]
    for add in (True, False):
        if p.add_special_tokens == "auto":
            picked = [i for i, t in enumerate(texts) if add != bool(bos and t.startswith(bos))]
        else:
            picked = list(range(len(texts))) if add == p.add_special_tokens else []
        if not picked:
            continue
        encoded = tokenizer(
            [texts[i][:cap] for i in picked], add_special_tokens=add, truncation=True, max_length=p.max_length
        )["input_ids"]
        for i, ids in zip(picked, encoded):
            out[i] = ids
    return out


class VLLMScorer:
    """Prompt log-probabilities from a vLLM engine: each document is a prompt; one token is generated and ignored."""

    def __init__(self, params: PerplexityParams):
        self.params = params
        self.llm = vllm_engine(
            params.model,
            revision=params.revision,
            dtype=params.dtype,
            max_model_len=params.max_length + 1,  # the prompt and the one generated token
            engine_args=params.engine_args,
            needed_by="the perplexity step's vllm backend",
        )
        import vllm  # heavy optional dependency (extra [gen]); vllm_engine has imported it

        self.tokenizer = self.llm.get_tokenizer()
        self.sampling = vllm.SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)

    def score(self, texts: list[str]) -> list[float | None]:
        ids = token_ids(self.tokenizer, texts, self.params)
        scored = [i for i, row in enumerate(ids) if len(row) >= 2]
        prompts = [{"prompt_token_ids": ids[i]} for i in scored]
        outs = self.llm.generate(prompts, self.sampling, use_tqdm=False) if prompts else []
        scores: list[float | None] = [None] * len(ids)
        for i, out in zip(scored, outs):
            # prompt_logprobs[0] is None (nothing predicts the first token); entry k holds token k's log-probability
            logprobs = [entry[token].logprob for token, entry in zip(ids[i][1:], out.prompt_logprobs[1:])]
            nll = -sum(logprobs) / len(logprobs)
            scores[i] = math.exp(nll) if nll < 700 else math.inf
        return scores


SCORERS: dict[str, type] = {"transformers": TransformersScorer, "vllm": VLLMScorer}


class Perplexity(BaseFilter):
    name = "perplexity"

    def __init__(self, params: PerplexityParams):
        missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
        if missing:
            raise ImportError(f"the perplexity step needs {' and '.join(missing)}: {INSTALL_HINT}")
        super().__init__(batch_size=params.batch_size * SORT_WINDOW)
        self.params = params
        self._scorer: Scorer | None = None

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            self._scorer = SCORERS[self.params.backend](self.params)
        return self._scorer

    def __getstate__(self):
        return {**self.__dict__, "_scorer": None}

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        return [self._judge(doc, ppl) for doc, ppl in zip(batch, self.scorer.score([d.text for d in batch]))]

    def _judge(self, doc: Document, ppl: float | None) -> bool | tuple[bool, str]:
        p = self.params
        if ppl is not None and not math.isnan(ppl):
            ppl = float(f"{ppl:.6g}")  # the stored value is the one the thresholds see
        doc.metadata["perplexity"] = None if ppl is None or math.isnan(ppl) else ppl
        if p.label_only or (p.min is None and p.max is None):
            return True
        if ppl is None:
            return False, "perplexity_no_tokens"
        if math.isnan(ppl):  # compares false with everything: it would pass any threshold
            return False, "perplexity_nan"
        if p.min is not None and ppl < p.min:
            return False, "perplexity_low"
        if p.max is not None and ppl > p.max:
            return False, "perplexity_high"
        return True
