"""The configuration machinery every config shares (recipe, steps' parameters, KD, trainer, eval): strict models —
an unknown key is an error, never silently ignored."""

from corpusforge.config.strict import StrictModel

__all__ = ["StrictModel"]
