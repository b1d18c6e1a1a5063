"""The perplexity step's vllm backend (prompt log-probabilities) agrees with the transformers backend on the same
tiny model. Runs in the vLLM job (`make test-vllm`)."""

from __future__ import annotations

import pytest

from corpusforge.steps.perplexity import PerplexityParams, TransformersScorer, VLLMScorer
from tests.support import corpus_texts

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")


def test_vllm_scores_equal_transformers_scores(tmp_path):
    from corpusforge.testing import tiny_chat_model

    model = tiny_chat_model(tmp_path / "model", corpus_texts("english") + corpus_texts("thai"))
    texts = list(dict.fromkeys(corpus_texts("english")))[:20] + ["x"]
    params = {"model": str(model), "max_length": 64, "dtype": "float32"}
    expected = TransformersScorer(PerplexityParams(**params, device="cpu")).score(texts)
    engine = {"gpu_memory_utilization": 0.2, "enforce_eager": True}
    got = VLLMScorer(PerplexityParams(**params, backend="vllm", engine_args=engine)).score(texts)
    assert got[-1] is None and expected[-1] is None  # one token: nothing to predict
    for want, have in zip(expected[:-1], got[:-1]):
        assert have == pytest.approx(want, rel=1e-3)
    assert len(set(round(v, 3) for v in expected[:-1])) > 10  # the texts do differ in perplexity
