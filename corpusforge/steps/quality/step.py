"""`QualityFilter`: the `quality` step, a datatrove filter that checks each document with its language's rules."""

from __future__ import annotations

from datatrove.pipeline.filters.base_filter import BaseFilter

from corpusforge.steps.quality.params import QualityParams
from corpusforge.steps.quality.presets import PRESET_ALIASES, PRESETS
from corpusforge.steps.quality.rules import Rules


class QualityFilter(BaseFilter):
    name = "quality"

    def __init__(self, params: QualityParams):
        super().__init__()
        self.params = params
        self._rules: dict[str, Rules] = {}

    def rules(self, language: str | None) -> Rules:
        """The rules for a document in ``language`` (its preset, or the fallback preset)."""
        if self.params.preset != "auto":
            name = self.params.preset
        elif language in PRESETS or language in PRESET_ALIASES:
            name = language
        else:
            name = self.params.fallback
        name = PRESET_ALIASES.get(name, name)
        rules = self._rules.get(name)
        if rules is None:
            rules = self._rules[name] = Rules.from_params(self.params, name)
        return rules

    def filter(self, doc) -> bool | tuple[bool, str]:
        return self.rules(doc.metadata.get("language")).check(doc.text)
