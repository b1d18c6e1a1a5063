"""Loading and calling language models. ``loading``: one policy for device, dtype, revision and trust_remote_code,
used by the transformers backend, the perplexity step, the scorecard's likelihoods and the trainer. ``backends``: the
generation backends (vllm, transformers, an OpenAI-compatible endpoint) that KD and the scorecard call, and the one
vLLM engine builder (``vllm_engine``: the GPU group claim, the CPU prefill rule) that the vllm backend and the
perplexity step use. ``config``: the settings those backends take (sampling; ``vllm``, ``transformers``,
``openai``), the models of a recipe's ``generate.backend`` and ``generate.sampling`` and of the scorecard's models.

    model = load_causal_lm("HuggingFaceTB/SmolLM2-135M-Instruct", dtype="bfloat16", device="auto", revision=sha)

torch, transformers and vllm are imported when a model is loaded, never at import time.
"""

from corpusforge.llm.loading import DTYPES, compute_dtype, load_causal_lm, load_tokenizer, resolve_device

__all__ = ["DTYPES", "compute_dtype", "load_causal_lm", "load_tokenizer", "resolve_device"]
