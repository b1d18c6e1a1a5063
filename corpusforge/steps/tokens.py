"""`tokens`: count tokens with the target model's tokenizer and store `n_tokens`.

Counting uses the `tokenizers` library directly (the model folder's `tokenizer.json`), in batches through
``encode_batch`` — the same fast path as raw `tokenizers`, with no `transformers` import. InsCP-tagged text already
carries BOS and the chat tags, so special tokens are not added by default: the count is what the trainer will see.
The recipe-level `budget:` uses these counts to stop the corpus at a token total and to mix sources by ratio.
A Hub tokenizer is downloaded (``tokenizer.json`` only) at ``revision``, which the build pins to a commit sha
(``corpusforge.pinning.pin_step_revisions``) so every worker counts with the same file.
"""

from __future__ import annotations

from pathlib import Path

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.batching import batched
from pydantic import Field, field_validator, model_validator

from corpusforge.config import StrictModel
from corpusforge.errors import SourceError
from corpusforge.pinning import is_hub_id
from corpusforge.storage import hub_endpoint


def load_fast_tokenizer(spec: str, revision: str | None = None):
    """A `tokenizers.Tokenizer` from a model folder, a tokenizer.json file, or a Hub id (online; at ``revision``, a
    branch, tag or commit sha, default the main branch)."""
    from tokenizers import Tokenizer

    path = Path(spec).expanduser()
    if path.is_file():
        return Tokenizer.from_file(str(path))
    if path.is_dir():
        if not (path / "tokenizer.json").exists():
            raise FileNotFoundError(
                f"{path} has no tokenizer.json (a fast tokenizer); save one with "
                "`AutoTokenizer.from_pretrained(path).save_pretrained(path)`"
            )
        return Tokenizer.from_file(str(path / "tokenizer.json"))
    # huggingface_hub, not Tokenizer.from_pretrained: the same client (cache, HF_ENDPOINT, HF_HUB_OFFLINE, token)
    # that pinned the revision
    from huggingface_hub import hf_hub_download

    try:
        file = hf_hub_download(spec, "tokenizer.json", revision=revision, endpoint=hub_endpoint())
    except Exception as err:
        at = f"@{revision}" if revision else ""
        raise SourceError(
            f"cannot fetch tokenizer.json of '{spec}{at}' from the Hub ({type(err).__name__}: {err}); offline, "
            "give a local model folder or tokenizer.json file"
        ) from None
    return Tokenizer.from_file(file)


class TokensParams(StrictModel):
    """Count tokens with the target model's tokenizer; writes `n_tokens` (used by `budget:`)."""

    tokenizer: str = Field(..., description="Model folder (with tokenizer.json), a tokenizer.json file, or a Hub id.")
    add_special_tokens: bool = Field(
        False, description="Add the tokenizer's special tokens (BOS…) when counting; InsCP text already has them."
    )
    batch_size: int = Field(1000, ge=1, description="Documents per encode_batch call.")
    revision: str | None = Field(
        None,
        description="Hub tokenizer only: the branch, tag or commit sha to fetch. Unset, the build pins the Hub id "
        "to the commit its main branch points at when the build is planned, so every worker counts alike.",
    )

    @field_validator("tokenizer")
    @classmethod
    def _exists_if_local(cls, spec: str) -> str:
        path = Path(spec).expanduser()
        looks_local = spec.startswith((".", "/", "~")) or path.suffix == ".json" or spec.count("/") != 1
        if looks_local and not path.exists():
            raise ValueError(f"tokenizer '{spec}' does not exist (cwd={Path.cwd()})")
        return spec

    @model_validator(mode="after")
    def _revision_needs_hub_id(self):
        if self.revision is not None and not is_hub_id(self.tokenizer):
            raise ValueError(
                f"revision '{self.revision}' applies to a Hub tokenizer only; '{self.tokenizer}' is not a Hub "
                "model id: remove `revision`"
            )
        return self


class TokenCounter(PipelineStep):
    type = "🔢 - TOKENIZER"
    name = "tokens"

    def __init__(self, params: TokensParams):
        super().__init__()
        self.params = params
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_fast_tokenizer(self.params.tokenizer, self.params.revision)
        return self._tokenizer

    def __getstate__(self):
        return {**self.__dict__, "_tokenizer": None}

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        total_docs = total_tokens = 0
        for batch in batched(data, self.params.batch_size):
            with self.track_time("batch"):
                encodings = self.tokenizer.encode_batch(
                    [doc.text for doc in batch], add_special_tokens=self.params.add_special_tokens
                )
            for doc, enc in zip(batch, encodings):
                doc.metadata["n_tokens"] = len(enc.ids)
                total_tokens += len(enc.ids)
            total_docs += len(batch)
            yield from batch
        self.stat_update("total", "forwarded", value=total_docs)
        self.stat_update("tokens", value=total_tokens)
