"""The one place a causal LM and its tokenizer are loaded (see the package docstring)."""

from __future__ import annotations

DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_device(device: str = "auto"):
    """``auto``: the first CUDA GPU when there is one, else the CPU; anything else as torch names it."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def compute_dtype(device) -> str:
    """The dtype to compute in on ``device``: bfloat16 on a GPU that has it, float16 on other GPUs, float32 on CPU."""
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


def _dtype_argument() -> str:
    """transformers >= 4.56 takes ``dtype`` (and warns on ``torch_dtype``); older releases know only ``torch_dtype``
    and would pass an unknown ``dtype`` on to the model's config, loading in float32."""
    from importlib.metadata import version

    from packaging.version import Version

    return "dtype" if Version(version("transformers")) >= Version("4.56") else "torch_dtype"


def load_causal_lm(
    spec: str,
    *,
    dtype: str = "auto",
    device: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    **kwargs,
):
    """A causal LM from a local folder, a LoRA adapter folder (transformers loads base + adapter through peft) or a
    Hub id at ``revision``. ``dtype``: one of DTYPES (``auto``: the checkpoint's own). ``device``: moved there and
    put in eval mode (None: left where transformers loads it, for a trainer). Raises what transformers raises."""
    import torch
    from transformers import AutoModelForCausalLM

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    kwargs[_dtype_argument()] = dtype if dtype == "auto" else getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(
        spec, revision=revision, trust_remote_code=trust_remote_code, **kwargs
    )
    if device is not None:
        model.to(resolve_device(device)).eval()
    return model


def load_tokenizer(spec: str, *, revision: str | None = None, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(spec, revision=revision, trust_remote_code=trust_remote_code)
