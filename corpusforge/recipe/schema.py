"""JSON Schema of the recipe language (for editors: `corpusforge schema > recipe.schema.json`).

The `steps` items are generated from the step registry: one `{name: params}` alternative per built-in step, plus
an open alternative for `@corpusforge.filter` plugins; `generate.tasks` items take their one-key YAML form too.
"""

from __future__ import annotations

from corpusforge.kd.config import TASK_KINDS
from corpusforge.recipe.models import Recipe
from corpusforge.steps.registry import builtin_specs


def _task_items(defs: dict) -> None:
    """`generate.tasks` items as written in YAML: `{recovery: {...}}`, `{kind: recovery, ...}` or `recovery`."""
    generate = defs.get("GenerateConfig")
    if generate is None:
        return
    alternatives: list[dict] = [{"enum": list(TASK_KINDS)}]
    for kind in TASK_KINDS:
        ref = {"$ref": f"#/$defs/{_TASK_MODELS[kind]}"}
        alternatives.append(ref)
        alternatives.append(
            {
                "type": "object",
                "properties": {kind: {"anyOf": [ref, {"type": "null"}]}},
                "required": [kind],
                "additionalProperties": False,
            }
        )
    generate["properties"]["tasks"]["items"] = {"anyOf": alternatives}


_TASK_MODELS = {
    "recovery": "RecoveryTask",
    "tcot": "TCoTTask",
    "translation": "TranslationTask",
    "preference": "PreferenceTask",
}


def json_schema() -> dict:
    schema = Recipe.model_json_schema()
    defs = schema.setdefault("$defs", {})
    alternatives = []
    for name, spec in sorted(builtin_specs().items()):
        params_schema = spec.params_model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(params_schema.pop("$defs", {}))
        defs[spec.params_model.__name__] = params_schema
        alternatives.append(
            {
                "type": "object",
                "description": spec.doc,
                "properties": {name: {"$ref": f"#/$defs/{spec.params_model.__name__}"}},
                "required": [name],
                "additionalProperties": False,
            }
        )
    alternatives.append(
        {
            "type": "object",
            "description": "A plugin step registered with @corpusforge.filter / @corpusforge.step, or `module:function`.",
            "minProperties": 1,
            "maxProperties": 1,
            "propertyNames": {"not": {"enum": sorted(builtin_specs())}},
            "additionalProperties": {"type": ["object", "null"]},
        }
    )
    schema["properties"]["steps"] = {
        "type": "array",
        "description": "Steps in order; each is a one-key mapping `{step_name: {params}}`.",
        "items": {"anyOf": alternatives},
    }
    defs.pop("StepCall", None)
    _task_items(defs)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "corpusforge recipe"
    return schema
