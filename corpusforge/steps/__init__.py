"""Built-in pipeline steps, one datatrove PipelineStep per file; importing this package registers them."""

from corpusforge.steps import dedup, language, length, normalize, perplexity, quality, region, tagging, tokens  # noqa: F401
