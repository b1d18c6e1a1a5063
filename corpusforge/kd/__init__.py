"""Self-generated KD datasets (TransLLM): recovery KD, translation chain-of-thought and translation data, or
preference pairs that differ in language adherence (PureTC-1B), produced by a chat model through a vLLM,
transformers or OpenAI-compatible backend, resumable."""

from corpusforge.kd.config import GenerateConfig
from corpusforge.kd.step import KDChecks, KDGenerate

__all__ = ["GenerateConfig", "KDGenerate", "KDChecks"]
