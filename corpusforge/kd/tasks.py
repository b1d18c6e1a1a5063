"""KD tasks as small generator functions: each yields the model calls it needs, one at a time, and returns its
conversations. The driver (step.py) runs many of them side by side, so every phase is one batched backend call
(all query translations, then all English answers, then all answer translations).

A call carries the language its output must be in; the output checks verify it.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

from corpusforge.kd.config import RecoveryTask, TCoTTask, TranslationTask
from corpusforge.lang.names import language_name
from corpusforge.llm.backends import Completion


@dataclass(frozen=True)
class Prompt:
    """One source row as a prompt."""

    id: str
    text: str  # the row's text as read
    user: str  # the user turn: prompts.template applied to the row
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    name: str  # which field of the task this produces, e.g. `answer_en`
    messages: tuple[tuple[str, str], ...]
    language: str | None  # the language the output must be in (None: not checked)


Conversation = list[dict]
TaskRun = Generator[Call, Completion, list[tuple[str, Conversation]]]  # returns (id suffix, messages) pairs


def chat(user: str, system: str | None = None) -> tuple[tuple[str, str], ...]:
    return ((("system", system),) if system else ()) + (("user", user),)


def conversation(messages: tuple[tuple[str, str], ...], answer: str) -> Conversation:
    return [{"role": role, "content": content} for role, content in messages] + [
        {"role": "assistant", "content": answer}
    ]


def _translate(template: str, text: str, source: str, target: str) -> str:
    return template.format(source_language=language_name(source), target_language=language_name(target), text=text)


def recovery(task: RecoveryTask, prompt: Prompt, system: str | None) -> TaskRun:
    messages = chat(prompt.user, system)
    answer = yield Call("answer", messages, task.language)
    return [("", conversation(messages, answer.text.strip()))]


def tcot(task: TCoTTask, prompt: Prompt, system: str | None) -> TaskRun:
    """User: the target-language query. Assistant: `<EN> query_en <RESPONSE> answer_en <TH> answer`."""
    query_en = (prompt.fields.get(task.query_en_field) or "").strip() if task.query_en_field else ""
    if not query_en:
        ask = _translate(task.translate_prompt, prompt.user, task.language, "en")
        query_en = (yield Call("query_en", chat(ask), "en")).text.strip()
    answer_en = (yield Call("answer_en", chat(query_en, system), "en")).text.strip()
    answer = (prompt.fields.get(task.answer_field) or "").strip() if task.answer_field else ""
    if not answer:
        ask = _translate(task.translate_prompt, answer_en, "en", task.language)
        answer = (yield Call("answer_target", chat(ask), task.language)).text.strip()
    m = task.markers
    content = f"{m.en} {query_en} {m.response} {answer_en} {m.target} {answer}"
    return [("", conversation(chat(prompt.user, system), content))]


def translation(task: TranslationTask, prompt: Prompt, system: str | None) -> TaskRun:
    """Both directions of one pair; the pair's missing side is the model's own translation."""
    source, target = task.source_language, task.target_language
    text = prompt.text.strip()
    pair = (prompt.fields.get(task.pair_field) or "").strip() if task.pair_field else ""
    if not pair:
        pair = (yield Call("translation", chat(_translate(task.instruction, text, source, target)), target)).text
        pair = pair.strip()
    rows = []
    if task.directions in ("both", "forward"):
        rows.append(("fwd", conversation(chat(_translate(task.instruction, text, source, target), system), pair)))
    if task.directions in ("both", "backward"):
        rows.append(("bwd", conversation(chat(_translate(task.instruction, pair, target, source), system), text)))
    return rows


RUNNERS = {"recovery": recovery, "tcot": tcot, "translation": translation}


def start(task, prompt: Prompt, system: str | None) -> TaskRun:
    return RUNNERS[task.kind](task, prompt, system)
