"""Model side: load, extend the vocabulary, wrap with LoRA, and merge an adapter back into its base model."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
from pathlib import Path

from corpusforge import llm
from corpusforge.errors import CorpusforgeError

logger = logging.getLogger(__name__)

RUN_INFO = "corpusforge_train.json"  # written beside the adapter: what `merge` needs to rebuild the base


class ModelError(CorpusforgeError):
    """A model, tokenizer or adapter that cannot be used as asked."""


def require(*modules: str, extra: str = "train") -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ModelError(
            f"the trainer needs {', '.join(missing)}: pip install 'corpusforge[{extra}]' "
            f"(or pip install {' '.join(missing)})"
        )


def load_tokenizer(spec: str, revision: str | None = None, trust_remote_code: bool = False):
    try:
        return llm.load_tokenizer(spec, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot load a tokenizer from '{spec}': {err}") from None


def load_base_model(path: str, dtype: str, attn_implementation: str = "sdpa", **kwargs):
    try:
        return llm.load_causal_lm(path, dtype=dtype, attn_implementation=attn_implementation, **kwargs)
    except (OSError, ValueError, ImportError) as err:
        raise ModelError(f"cannot load a causal LM from '{path}': {err}") from None


def _gathered(params):
    """Under DeepSpeed ZeRO-3 the weights are partitioned; gather them to edit rows in place."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    if is_deepspeed_zero3_enabled():
        import deepspeed

        return deepspeed.zero.GatheredParameters(params, modifier_rank=0)
    return contextlib.nullcontext()


def new_token_ids(tokenizer, base_tokenizer) -> list[int]:
    """Ids of tokens the base tokenizer does not have; the base tokens must keep their ids."""
    base_vocab, vocab = base_tokenizer.get_vocab(), tokenizer.get_vocab()
    moved = [(t, i, vocab.get(t)) for t, i in base_vocab.items() if vocab.get(t) != i]
    if moved:
        t, old, new = moved[0]
        raise ModelError(
            f"the tokenizer renumbers or drops {len(moved)} token(s) of the base tokenizer (e.g. {t!r}: {old} → "
            f"{new}); an extended tokenizer must keep every base id and append new tokens after them"
        )
    return sorted(i for t, i in vocab.items() if t not in base_vocab)


def base_pieces(tokenizer, base_tokenizer, token_id: int) -> list[int]:
    """The base ids the original tokenizer splits a new token into.

    A new vocabulary piece (e.g. from `corpusforge vocab extend`) is split by the base model's own algorithm on the
    piece string itself: byte-level pieces are often partial UTF-8 characters, which have no text to re-encode. An
    added token (``add_tokens``) holds plain text, which the base tokenizer encodes.
    """
    added = tokenizer.added_tokens_decoder.get(token_id)
    backend = getattr(base_tokenizer, "backend_tokenizer", None)
    if added is None and backend is not None:
        piece = tokenizer.convert_ids_to_tokens(token_id)
        ids = [t.id for t in backend.model.tokenize(piece) if t.id < len(base_tokenizer)]
        if ids:
            return ids
    text = added.content if added is not None else tokenizer.decode([token_id])
    return base_tokenizer(text, add_special_tokens=False)["input_ids"]


def init_new_embeddings(model, tokenizer, base_tokenizer) -> list[int]:
    """Resize the embeddings to fit ``tokenizer`` and set each new token's row (input and output embeddings) to
    the mean of the rows of the pieces ``base_tokenizer`` splits that token's text into. Returns the new ids."""
    import torch

    new = new_token_ids(tokenizer, base_tokenizer)
    rows = model.get_input_embeddings().weight.shape[0]
    size = max(rows, len(tokenizer))
    if not new and size == rows:
        return []
    if size > rows:
        # pad_to_multiple_of=None keeps the row count = len(tokenizer); mean_resizing is ours, per token below.
        model.resize_token_embeddings(size, mean_resizing=False)
    matrices = [model.get_input_embeddings().weight]
    output = model.get_output_embeddings()
    if output is not None and output.weight is not matrices[0]:
        matrices.append(output.weight)
    pieces = {i: base_pieces(tokenizer, base_tokenizer, i) for i in new}
    with _gathered(matrices), torch.no_grad():
        for weight in matrices:
            fallback = weight[: len(base_tokenizer)].mean(0)
            for i, ids in pieces.items():
                weight[i] = weight[ids].mean(0) if ids else fallback
    empty = [i for i, ids in pieces.items() if not ids]
    if empty:
        logger.warning(
            "%d new token(s) have no base pieces (e.g. id %d); their rows are the mean row", len(empty), empty[0]
        )
    logger.info("vocabulary extended: %d new token(s), embeddings %d → %d rows", len(new), rows, size)
    return new


def module_names(model) -> set[str]:
    return {name.rsplit(".", 1)[-1] for name, _ in model.named_modules() if name}


def apply_lora(model, lora, error=None):
    """Wrap ``model`` with a peft LoRA adapter from a ``LoraConfig`` section; unknown module names are an error."""
    from peft import LoraConfig, get_peft_model

    names = module_names(model)
    targets = lora.target_modules
    for key, wanted in (
        ("target_modules", [] if targets == "all-linear" else targets),
        ("modules_to_save", lora.modules_to_save),
    ):
        unknown = [w for w in wanted if w not in names]
        if unknown:
            message = f"no module named {unknown} in this model; its module names: {sorted(names)}"
            raise error(("lora", key), message) if error else ModelError(f"lora.{key}: {message}")
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        modules_to_save=lora.modules_to_save or None,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def trainable_in_float32(model) -> None:
    """Keep trainable weights in float32 when the base is half precision: AdamW on bf16 weights loses small
    updates, and the fp16 gradient scaler refuses fp16 parameters."""
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype in (torch.float16, torch.bfloat16):
            param.data = param.data.float()


def read_run_info(folder: Path) -> dict | None:
    for where in (folder, folder.parent):
        if (where / RUN_INFO).is_file():
            return json.loads((where / RUN_INFO).read_text(encoding="utf-8"))
    return None


def merge(adapter_dir: str | Path, output: str | Path, dtype: str = "auto") -> Path:
    """Load the base model of a LoRA run (a run's output dir or one of its checkpoints), rebuild its vocabulary
    extension, apply the adapter, merge it into the weights and save model + tokenizer to ``output``."""
    require("torch", "transformers", "peft")
    from peft import PeftModel

    adapter_dir, output = Path(adapter_dir), Path(output)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ModelError(
            f"{adapter_dir} holds no adapter_config.json: merge takes the output_dir (or a checkpoint) of a "
            "`method: lora` run; a full fine-tuning run is already a complete model"
        )
    info = read_run_info(adapter_dir) or {}
    adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    model_cfg = info.get("config", {}).get("model", {})
    base_path = model_cfg.get("path") or adapter_config.get("base_model_name_or_path")
    if not base_path:
        raise ModelError(f"{adapter_dir}: cannot tell the base model (no {RUN_INFO}, no base_model_name_or_path)")
    if dtype == "auto":
        dtype = info.get("dtype", "float32")
    tokenizer = load_tokenizer(str(adapter_dir) if (adapter_dir / "tokenizer_config.json").is_file() else base_path)
    model = load_base_model(base_path, dtype, trust_remote_code=model_cfg.get("trust_remote_code", False))
    vocab = info.get("vocabulary") or {}
    if vocab.get("new_tokens") or len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        base_tokenizer = load_tokenizer(vocab.get("base_tokenizer") or base_path)
        init_new_embeddings(model, tokenizer, base_tokenizer)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    output.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(output)
    tokenizer.save_pretrained(output)
    return output
