"""Built-in pipeline steps, one datatrove PipelineStep per file, each with its parameters model. The recipe finds
them by name through ``corpusforge.steps.registry`` (``BUILTIN_STEPS``), which imports a step's module on first use.
"""
