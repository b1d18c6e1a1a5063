"""One loading policy for every causal LM corpusforge loads (KD backend, perplexity, the scorecard, the trainer)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from corpusforge import llm  # noqa: E402
from corpusforge.llm import loading  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=1
    )
    folder = tmp_path_factory.mktemp("tiny-llama")
    transformers.LlamaForCausalLM(config).save_pretrained(folder)  # float32 weights
    return folder


@pytest.mark.parametrize(
    ("dtype", "expected"), [("auto", "float32"), ("bfloat16", "bfloat16"), ("float16", "float16")]
)
def test_the_dtype_asked_for_is_the_dtype_loaded(tiny_model_dir, dtype, expected):
    model = llm.load_causal_lm(str(tiny_model_dir), dtype=dtype, device="cpu")
    assert {p.dtype for p in model.parameters()} == {getattr(torch, expected)}
    assert not model.training  # moved to the device and put in eval mode


def test_older_transformers_gets_torch_dtype(tiny_model_dir, monkeypatch):
    """transformers < 4.56 knows only `torch_dtype`: an unknown `dtype` would go to the config and load float32."""
    seen = {}
    real = transformers.AutoModelForCausalLM.from_pretrained

    def spy(spec, **kwargs):
        seen.update(kwargs)
        return real(spec, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    monkeypatch.setattr("importlib.metadata.version", lambda name: "4.50.0" if name == "transformers" else "0")
    llm.load_causal_lm(str(tiny_model_dir), dtype="bfloat16")
    assert seen["torch_dtype"] is torch.bfloat16 and "dtype" not in seen
    monkeypatch.setattr("importlib.metadata.version", lambda name: "4.57.0")
    seen.clear()
    llm.load_causal_lm(str(tiny_model_dir), dtype="bfloat16")
    assert seen["dtype"] is torch.bfloat16 and "torch_dtype" not in seen


def test_bad_dtype_and_the_compute_dtype_policy():
    with pytest.raises(ValueError, match="dtype must be one of"):
        llm.load_causal_lm("unused", dtype="fp8")
    assert loading.compute_dtype(torch.device("cpu")) == "float32"
    assert llm.resolve_device("cpu").type == "cpu"
