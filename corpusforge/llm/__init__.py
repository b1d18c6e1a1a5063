"""Loading language models: one policy for device, dtype, revision and trust_remote_code, used by the KD
transformers backend, the perplexity step, the scorecard's likelihoods and the trainer.

    model = load_causal_lm("HuggingFaceTB/SmolLM2-135M-Instruct", dtype="bfloat16", device="auto", revision=sha)

torch and transformers are imported when a model is loaded, never at import time.
"""

from corpusforge.llm.loading import DTYPES, compute_dtype, load_causal_lm, load_tokenizer, resolve_device

__all__ = ["DTYPES", "compute_dtype", "load_causal_lm", "load_tokenizer", "resolve_device"]
