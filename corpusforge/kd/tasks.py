"""KD tasks as small generator functions: each yields the model calls it needs, one at a time, and returns its
rows. The driver (step.py) runs many of them side by side, so every phase is one batched backend call (all query
translations, then all English answers, then all answer translations).

A call carries the language its output must be in; the output checks verify it (a preference pair's rows are
judged by the task itself, kd/preference.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field

from corpusforge.kd.config import GenerateConfig, PreferenceTask, RecoveryTask, TCoTTask, TranslationTask
from corpusforge.kd.preference import Score, pick, score
from corpusforge.lang.fidelity import default_identifier
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
    sample: int | None = None  # the sample it draws (its seed and cache key); None: its job's


@dataclass(frozen=True)
class Row:
    """One output row: its id suffix and the columns the task fills (`messages`; a pair's `prompt`, `chosen`, …)."""

    suffix: str
    columns: dict
    text: str  # the document's text: what the row teaches (the assistant turn; a pair's chosen answer)
    finish_reason: str | None = None  # None: from the row's calls
    checked: bool = True  # False: the output checks do not apply (a pair's rejected answer is bad on purpose)


@dataclass
class Outcome:
    rows: list[Row]
    dropped: str | None = None  # why the prompt gave no row (preference: `no_margin`, `no_chosen`)
    counts: Counter = field(default_factory=Counter)  # tallies for the funnel (`count_<key>`)


Conversation = list[dict]
TaskRun = Generator[Call, Completion, Outcome]


def chat(user: str, system: str | None = None) -> tuple[tuple[str, str], ...]:
    return ((("system", system),) if system else ()) + (("user", user),)


def turns(messages: tuple[tuple[str, str], ...]) -> Conversation:
    return [{"role": role, "content": content} for role, content in messages]


def conversation(messages: tuple[tuple[str, str], ...], answer: str) -> Conversation:
    return turns(messages) + [{"role": "assistant", "content": answer}]


def sft_row(suffix: str, messages: Conversation) -> Row:
    return Row(suffix, {"messages": messages}, messages[-1]["content"])


def supplied(prompt: Prompt, name: str | None) -> str:
    """The row's field ``name``, stripped ("" when there is none)."""
    return (prompt.fields.get(name) or "").strip() if name else ""


def _translate(template: str, text: str, source: str, target: str) -> str:
    return template.format(source_language=language_name(source), target_language=language_name(target), text=text)


def english_answer(task: TCoTTask | PreferenceTask, prompt: Prompt, system: str | None):
    """TransLLM's way through English: the query in English (supplied, or the model's translation), then the
    model's English answer to it. Returns (query_en, answer_en)."""
    query_en = supplied(prompt, task.query_en_field)
    if not query_en:
        ask = _translate(task.translate_prompt, prompt.user, task.language, "en")
        query_en = (yield Call("query_en", chat(ask), "en")).text.strip()
    answer_en = (yield Call("answer_en", chat(query_en, system), "en")).text.strip()
    return query_en, answer_en


def back_to_target(task: TCoTTask | PreferenceTask, answer_en: str):
    """The model's translation of its English answer into the task's language (the whole completion)."""
    ask = _translate(task.translate_prompt, answer_en, "en", task.language)
    return (yield Call("answer_target", chat(ask), task.language))


def recovery(task: RecoveryTask, prompt: Prompt, config: GenerateConfig) -> TaskRun:
    messages = chat(prompt.user, config.prompts.system)
    answer = yield Call("answer", messages, task.language)
    return Outcome([sft_row("", conversation(messages, answer.text.strip()))])


def tcot(task: TCoTTask, prompt: Prompt, config: GenerateConfig) -> TaskRun:
    """User: the target-language query. Assistant: `<EN> query_en <RESPONSE> answer_en <TH> answer`."""
    system = config.prompts.system
    query_en, answer_en = yield from english_answer(task, prompt, system)
    answer = supplied(prompt, task.answer_field) or (yield from back_to_target(task, answer_en)).text.strip()
    m = task.markers
    content = f"{m.en} {query_en} {m.response} {answer_en} {m.target} {answer}"
    return Outcome([sft_row("", conversation(chat(prompt.user, system), content))])


def translation(task: TranslationTask, prompt: Prompt, config: GenerateConfig) -> TaskRun:
    """Both directions of one pair; the pair's missing side is the model's own translation."""
    source, target, system = task.source_language, task.target_language, config.prompts.system
    text = prompt.text.strip()
    pair = supplied(prompt, task.pair_field)
    if not pair:
        pair = (yield Call("translation", chat(_translate(task.instruction, text, source, target)), target)).text
        pair = pair.strip()
    rows = []
    if task.directions in ("both", "forward"):
        rows.append(("fwd", conversation(chat(_translate(task.instruction, text, source, target), system), pair)))
    if task.directions in ("both", "backward"):
        rows.append(("bwd", conversation(chat(_translate(task.instruction, pair, target, source), system), text)))
    return Outcome([sft_row(suffix, messages) for suffix, messages in rows])


def preference(task: PreferenceTask, prompt: Prompt, config: GenerateConfig) -> TaskRun:
    """`sampling.n` answers to one prompt, scored; the best that passes the bar against the worst (kd/preference.py).
    Sample k is drawn as a recovery job's sample k is: the same seed, the same cache key."""
    messages = chat(prompt.user, config.prompts.system)
    answers = []
    for k in range(config.sampling.n):
        answers.append((yield Call("answer", messages, task.language, sample=k)))
    texts = [answer.text.strip() for answer in answers]

    def judge(text: str, finish_reason: str) -> Score:
        lid, letters = default_identifier(), config.checks.min_language_chars
        return score(text, finish_reason, task.language, prompt.user, task.weights, lid, letters)

    scores = [judge(text, answer.finish_reason) for text, answer in zip(texts, answers)]
    counts = Counter(reason.split(":")[0] for s in scores for reason in s.reasons)
    best, worst = pick(scores)
    if best is not None:
        chosen = (texts[best], scores[best], "sample", answers[best].finish_reason)
    else:
        chosen = yield from _fallback(task, prompt, config, judge)
    if chosen is None or not chosen[1].passes:
        return Outcome([], "no_chosen", counts)
    text, chosen_score, source, finish = chosen
    margin = round(chosen_score.value - scores[worst].value, 4)
    if margin < task.min_margin:
        return Outcome([], "no_margin", counts)
    counts[f"chosen_from_{source}"] += 1
    columns = {
        "prompt": turns(messages),
        "chosen": [{"role": "assistant", "content": text}],
        "rejected": [{"role": "assistant", "content": texts[worst]}],
        "chosen_score": chosen_score.value,
        "rejected_score": scores[worst].value,
        "margin": margin,
        "chosen_reasons": list(chosen_score.reasons),
        "rejected_reasons": list(scores[worst].reasons),
        "chosen_from": source,
        "chosen_sample": best,
        "rejected_sample": worst,
        "samples": len(answers),
        "sample_scores": [s.value for s in scores],
        "sample_reasons": [list(s.reasons) for s in scores],
    }
    return Outcome([Row("", columns, text, finish_reason=finish, checked=False)], counts=counts)


def _fallback(task: PreferenceTask, prompt: Prompt, config: GenerateConfig, judge):
    """When no sample passes the bar: (text, score, chosen_from, finish reason) of the row's reference answer, or of
    the model's translation of its own English answer; None when there is none."""
    if task.fallback == "reference":
        text = supplied(prompt, task.answer_field)
        return (text, judge(text, "stop"), "reference", "supplied") if text else None
    if task.fallback == "translate":
        _, answer_en = yield from english_answer(task, prompt, config.prompts.system)
        translated = yield from back_to_target(task, answer_en)
        text = translated.text.strip()
        return text, judge(text, translated.finish_reason), "translation", translated.finish_reason
    return None


RUNNERS = {"recovery": recovery, "tcot": tcot, "translation": translation, "preference": preference}


def start(task, prompt: Prompt, config: GenerateConfig) -> TaskRun:
    return RUNNERS[task.kind](task, prompt, config)
