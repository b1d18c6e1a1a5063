"""The configuration machinery every config shares (recipe, steps' parameters, KD, trainer, eval):

* `strict` — ``StrictModel``, the base of every config model: an unknown key is an error, never silently ignored;
* `yaml` — YAML files read with a key path → line map, within a node and nesting budget, duplicate keys refused;
* `overrides` — ``--set key.path=value`` applied to the data before it is validated;
* `problems` — pydantic errors as (key path, message) problems with "did you mean", and each one's YAML line.
"""

from corpusforge.config.strict import StrictModel

__all__ = ["StrictModel"]
