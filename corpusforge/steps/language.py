"""`language`: label each document's language (`lang.lid`: the script census first, fastText lid.176 only where the
script does not settle it; Chinese split into `zh_Hant` / `zh_Hans`, `zh` written alike in both) and keep the
languages a recipe asks for.

Each document gets `language`, `language_score` and `language_reason` (what decided: the script and its counts, or
fastText). A document the census settles costs no model call; in a recipe that keeps only such languages, a document
with none of their letters is dropped without one.
"""

from __future__ import annotations

from pathlib import Path

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.filters.base_filter import BaseFilter
from pydantic import Field, field_validator

from corpusforge.config import StrictModel
from corpusforge.lang.lid import LanguageIdentifier
from corpusforge.lang.names import SCRIPT_LABELS, check_language
from corpusforge.lang.scripts import SCRIPT_LANGUAGES, can_hold, census


class LanguageParams(StrictModel):
    """fastText language ID (top-k only) with script-aware CJK: writes `language` and `language_score`."""

    keep: list[str] | None = Field(
        None,
        description="Languages to keep (lid.176 codes, plus `zh_Hant` / `zh_Hans`; `zh` = Chinese with no "
        "script-distinguishing character). Omit to keep all and only annotate.",
    )
    keep_unmarked_chinese: bool = Field(
        True,
        description="With `zh_Hant` or `zh_Hans` in `keep`, also keep `zh`: Chinese written identically in both "
        "scripts (no character only one of them uses; about 1 short line in 10). It holds no character of the other "
        "script; its vocabulary may still be another region's (see the `zh_region` step).",
    )
    min_score: float = Field(0.5, ge=0.0, le=1.0, description="Minimum language score to keep a document.")
    model: str | None = Field(None, description="Path to a fastText LID model; default: lid.176.ftz (bundled).")
    top_k: int = Field(3, ge=1, le=20, description="Labels asked from fastText per document.")
    max_chars: int = Field(
        20_000, ge=100, description="Identify on the first N characters (fastText cost grows with length)."
    )
    label_only: bool = Field(False, description="Annotate only; never drop.")

    @field_validator("keep")
    @classmethod
    def _known_languages(cls, keep: list[str] | None, info) -> list[str] | None:
        if keep is None or info.data.get("model"):  # another model: its own labels
            return keep
        for code in keep:
            check_language(code)
        return keep

    @field_validator("model")
    @classmethod
    def _model_exists(cls, model: str | None) -> str | None:
        if model is not None and not Path(model).expanduser().is_file():
            raise ValueError(f"fastText model file '{model}' does not exist (cwd={Path.cwd()})")
        return model


class LanguageID(BaseFilter, LanguageIdentifier):
    """The `language` step: a datatrove filter that is a `LanguageIdentifier` with the step's model and limits."""

    name = "language"

    def __init__(self, params: LanguageParams):
        BaseFilter.__init__(self)
        LanguageIdentifier.__init__(self, params.model, params.top_k, params.max_chars)
        self.params = params
        keep = set(params.keep or ())
        if params.keep_unmarked_chinese and keep & SCRIPT_LABELS:
            keep.add("zh")
        self.keep = frozenset(keep) if params.keep else None
        # a recipe that keeps only languages the script settles drops a document without their letters unasked
        script_only = self.keep is not None and not params.label_only and self.keep <= SCRIPT_LANGUAGES.keys()
        self.script_only = self.keep if script_only else None

    def filter(self, doc) -> bool | tuple[bool, str]:
        counts = census(doc.text[: self.params.max_chars])
        if self.script_only is not None and not can_hold(counts, self.script_only):
            doc.metadata["language"] = "other"
            doc.metadata["language_score"] = 0.0
            doc.metadata["language_reason"] = "script: none of the kept languages' letters"
            return False, "language_not_kept"
        lang, score, reason = self.explain(doc.text, counts)
        doc.metadata["language"] = lang
        doc.metadata["language_score"] = round(score, 4)
        doc.metadata["language_reason"] = reason
        if self.params.label_only:
            return True
        if self.keep is not None and lang not in self.keep:
            return False, "language_not_kept"
        if score < self.params.min_score:
            return False, "language_score_low"
        return True

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        # Same counts as BaseFilter.run, kept in local counters: per-document stat updates cost more than
        # the fastText call on short texts.
        total = forwarded = 0
        reasons: dict[str, int] = {}
        languages: dict[str, int] = {}
        with self.track_time("run"):
            for doc in data:
                total += 1
                result = self.filter(doc)
                lang = doc.metadata["language"]
                languages[lang] = languages.get(lang, 0) + 1
                if result is True:
                    forwarded += 1
                    yield doc
                else:
                    reasons[result[1]] = reasons.get(result[1], 0) + 1
        self.stat_update("total", value=total)
        self.stat_update("forwarded", value=forwarded)
        self.stat_update("dropped", value=total - forwarded)
        for reason, count in reasons.items():
            self.stat_update(f"dropped_{reason}", value=count)
        for lang, count in languages.items():
            self.stat_update(f"lang_{lang}", value=count)
