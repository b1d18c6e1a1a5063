"""One vLLM engine builder (``llm.backends.vllm_engine``) for the KD backend and the perplexity scorer: the same GPU
claim before vllm is imported, the same CPU chunked-prefill rule, the model and tokenizer at one revision. Runs without
vllm: a stand-in module records what ``vllm.LLM`` is given."""

from __future__ import annotations

import os
import sys
import types

import pytest

from corpusforge.llm import backends
from corpusforge.llm.config import VLLMBackendConfig
from corpusforge.steps.perplexity import PerplexityParams, VLLMScorer
from tests.kd.test_trust_kd import two_gpu_groups  # noqa: F401 — a fixture: a node with two GPUs

REPO, SHA = "org/model", "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def engines(monkeypatch):
    """What each ``vllm.LLM`` was built with, and CUDA_VISIBLE_DEVICES at that moment."""
    built = []

    class LLM:
        def __init__(self, **kwargs):
            built.append((kwargs, os.environ.get("CUDA_VISIBLE_DEVICES")))

        def get_tokenizer(self):
            return None

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=lambda **kw: kw))
    return built


def perplexity_scorer(**params) -> VLLMScorer:
    return VLLMScorer(PerplexityParams(model=REPO, backend="vllm", **params))


def test_both_callers_get_the_same_engine_policy(engines, monkeypatch):
    claimed = []
    monkeypatch.setattr(backends, "claim_gpu_group", lambda size: claimed.append((size, len(engines))))
    monkeypatch.setattr(backends, "_vllm_on_cpu", lambda: True)
    backends.VLLMBackend(REPO, VLLMBackendConfig())
    perplexity_scorer(revision=SHA, dtype="float16", max_length=64, engine_args={"tensor_parallel_size": 2})
    assert claimed == [(1, 0), (2, 1)]  # each before its engine, with the engine's own tensor_parallel_size
    common = {"enforce_eager": False, "trust_remote_code": False, "enable_chunked_prefill": False}
    assert engines[0][0] == {
        "model": REPO, "tensor_parallel_size": 1, "dtype": "auto", "gpu_memory_utilization": 0.9, **common
    }  # fmt: skip
    assert engines[1][0] == {
        "model": REPO, "tensor_parallel_size": 2, "dtype": "float16", "max_model_len": 65,
        "revision": SHA, "tokenizer_revision": SHA, **common,
    }  # fmt: skip


def test_engine_args_have_the_last_word_and_the_cpu_rule_is_for_cpu_only(engines, monkeypatch):
    monkeypatch.setattr(backends, "claim_gpu_group", lambda size: None)
    monkeypatch.setattr(backends, "_vllm_on_cpu", lambda: True)
    chosen = {"enable_chunked_prefill": True, "dtype": "bfloat16", "gpu_memory_utilization": 0.5}
    backends.VLLMBackend(REPO, VLLMBackendConfig(dtype="float32", engine_args=chosen))
    assert engines[-1][0].items() >= chosen.items()
    monkeypatch.setattr(backends, "_vllm_on_cpu", lambda: False)
    perplexity_scorer()
    backends.VLLMBackend(REPO, VLLMBackendConfig())
    assert all("enable_chunked_prefill" not in kwargs for kwargs, _ in engines[1:])
    assert "gpu_memory_utilization" not in engines[1][0]  # unset: vLLM's default, as before


@pytest.mark.usefixtures("two_gpu_groups")
def test_the_perplexity_scorer_takes_its_gpu_group_before_vllm_starts(engines):
    perplexity_scorer()
    assert engines[-1][1] == "0" == os.environ["CUDA_VISIBLE_DEVICES"]
