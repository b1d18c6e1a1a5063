"""Built-in pipeline steps, one datatrove PipelineStep per file; importing this package registers them."""

from corpusforge.steps import language, length, normalize, tagging  # noqa: F401
