"""`tag`: InsCP tagging — wrap each document in the model's own chat template.

The document becomes the assistant turn after an empty user turn, with no system prompt, exactly as
``tokenizer.apply_chat_template([{"role": "user", "content": ""}, {"role": "assistant", "content": text}],
tokenize=False)`` renders it — BOS and the closing end-of-turn token included. The trainer must then tokenize with
``add_special_tokens=False`` so BOS is not doubled.

Deterministic by construction: a template's ``strftime_now`` formats the step's fixed ``date``, never the clock,
and a Hub template is fetched at ``revision`` (``corpusforge.pinning.pin_step_revisions`` pins it to a commit sha).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from pydantic import Field, field_validator, model_validator

from corpusforge.config import StrictModel
from corpusforge.errors import did_you_mean
from corpusforge.pinning import is_hub_id
from corpusforge.templates import DEFAULT_DATE, PRESETS, ChatTemplate, load_template


class TagParams(StrictModel):
    """InsCP: render each document as the assistant turn of the model's chat template (empty user turn)."""

    template: str = Field(
        "llama3",
        description=f"Preset ({', '.join(PRESETS)}), a local model/tokenizer folder, or a Hub model id (online).",
    )
    user: str = Field("", description="User turn content (InsCP: empty).")
    system: str | None = Field(
        None,
        description="Unset: no system message, so the template renders as `apply_chat_template` does — with its "
        "default system prompt if it has one (SmolLM2, Qwen2.5, Llama 3.1's date block). `none`: no system turn at "
        "all (InsCP), the template's default block removed. Any other text: that system prompt.",
    )
    role: str = Field("assistant", description="Role of the turn that carries the document.")
    split_qa: str | None = Field(
        None,
        description="Instruction data: name of the field (listed in the source's `fields`) holding the answer. "
        "The document text is the question; question and answer become two tagged data points (`<id>/q`, `<id>/a`).",
    )
    date: str = Field(
        DEFAULT_DATE.isoformat(),
        description="ISO date (YYYY-MM-DD) that the template's `strftime_now` formats, e.g. Llama 3.2's "
        '"Today Date: …" line: a fixed date, never the build\'s clock, so every rerun renders the same text. '
        'The default is the date Llama 3.1\'s own template falls back to ("26 Jul 2024").',
        json_schema_extra={"format": "date"},
    )
    revision: str | None = Field(
        None,
        description="Hub template only: the branch, tag or commit sha to fetch. Unset, the build pins the Hub "
        "id to the commit its main branch points at when the build is planned, so every worker renders with the "
        "same files.",
    )

    @field_validator("template")
    @classmethod
    def _findable(cls, spec: str) -> str:
        if spec in PRESETS or Path(spec).expanduser().is_dir():
            return spec
        if "/" in spec and not spec.startswith((".", "/", "~")):
            return spec  # a Hub id: fetched when the step first runs
        hint = did_you_mean(spec, PRESETS, otherwise=f" (presets: {', '.join(PRESETS)})")
        raise ValueError(f"unknown chat template '{spec}': not a preset nor an existing folder{hint}")

    @field_validator("date", mode="before")
    @classmethod
    def _iso_date(cls, value) -> str:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):  # YAML reads 2024-07-26 as a date
            return value.isoformat()
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            try:
                return dt.date.fromisoformat(value).isoformat()
            except ValueError:
                pass
        raise ValueError(f"date must be an ISO date like '2024-07-26', got {value!r}")

    @model_validator(mode="after")
    def _revision_needs_hub_id(self):
        spec = self.template
        if self.revision is not None and (spec in PRESETS or not is_hub_id(spec)):
            what = "a preset" if spec in PRESETS else "a local folder" if Path(spec).expanduser().exists() else ""
            raise ValueError(
                f"revision '{self.revision}' applies to a Hub template only; '{spec}' is "
                f"{what or 'not a Hub model id'}: remove `revision`"
            )
        return self


class InsCPTag(PipelineStep):
    type = "✂️ - MAP"
    name = "tag"

    def __init__(self, params: TagParams):
        super().__init__()
        self.params = params
        self._template: ChatTemplate | None = None

    @property
    def template(self) -> ChatTemplate:
        if self._template is None:
            p = self.params
            self._template = load_template(p.template, p.revision, dt.date.fromisoformat(p.date))
        return self._template

    def __getstate__(self):
        return {**self.__dict__, "_template": None}

    def tag(self, text: str) -> str:
        p = self.params
        turns = [{"role": "user", "content": p.user}, {"role": p.role, "content": text}]
        if p.system == "none":
            return self.template.render_without_system(turns)
        system = [{"role": "system", "content": p.system}] if p.system is not None else []
        return self.template.render(system + turns)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        answer_field = self.params.split_qa
        for doc in data:
            self.stat_update("total")
            if answer_field is None:
                doc.text = self.tag(doc.text)
                self.stat_update("forwarded")
                yield doc
                continue
            answer = doc.metadata.pop(answer_field, None)
            if not isinstance(answer, str) or not answer.strip():
                self.stat_update("dropped", "dropped_missing_answer")
                continue
            for suffix, text in (("q", doc.text), ("a", answer)):
                self.stat_update("forwarded")
                yield Document(text=self.tag(text), id=f"{doc.id}/{suffix}", metadata=dict(doc.metadata))
