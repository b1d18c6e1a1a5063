"""Chat templates for InsCP tagging: built-in presets (offline), a local model folder, or a Hub id (online).

Rendering mirrors ``transformers``' ``apply_chat_template(..., tokenize=False)``: a sandboxed Jinja environment
with ``trim_blocks`` and ``lstrip_blocks``, the loop-controls extension, ``raise_exception``, ``strftime_now``,
a ``tojson`` that does not escape HTML, a no-op ``{% generation %}`` block, and the tokenizer's special tokens
(``bos_token``, ``eos_token`` …) as variables — so the text is byte-identical to what the tokenizer renders.

One deliberate difference: ``strftime_now`` formats a fixed date (``ChatTemplate.date``, the `tag` step's ``date``)
instead of the clock, so a template that writes "Today Date: …" (Llama 3.2's does) renders the same text on every
day and every worker. The output is what ``apply_chat_template`` renders on that date (at midnight).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib import resources
from pathlib import Path

import jinja2
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

from corpusforge.errors import CorpusforgeError
from corpusforge.storage import hub_endpoint

# name → special tokens the template refers to. The .jinja files beside this module are the templates exactly as
# the models' tokenizer_config.json carries them (see SOURCES.md).
PRESETS: dict[str, dict[str, str]] = {
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama3_1": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama2": {"bos_token": "<s>", "eos_token": "</s>"},
    "chatml": {"bos_token": "", "eos_token": "<|im_end|>"},
    "gemma": {"bos_token": "<bos>", "eos_token": "<eos>"},
    "mistral": {"bos_token": "<s>", "eos_token": "</s>"},
}
# The date `strftime_now` formats unless the recipe sets one: the date Llama 3.1's own template falls back to
# ("26 Jul 2024") when strftime_now is undefined, so a model-folder Llama 3.1/3.2 template renders the same text
# whether or not the renderer provides strftime_now, and the text never depends on the day of the build.
DEFAULT_DATE = dt.date(2024, 7, 26)
SPECIAL_TOKEN_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


_PROBE = ("cfprobeuserzero", "cfprobeanswerzero", "cfprobeuserone", "cfprobeanswerone")


class TemplateError(CorpusforgeError):
    """A chat template that cannot be found or rendered."""


@dataclass
class ChatTemplate:
    template: str
    special_tokens: dict[str, str] = field(default_factory=dict)
    source: str = ""
    date: dt.date = DEFAULT_DATE  # what strftime_now formats

    @cached_property
    def _compiled(self):
        return _environment(self.date).from_string(self.template)

    def render(self, messages: list[dict], add_generation_prompt: bool = False, **kwargs) -> str:
        try:
            return self._compiled.render(
                messages=messages, add_generation_prompt=add_generation_prompt, **self.special_tokens, **kwargs
            )
        except jinja2.TemplateError as err:
            raise TemplateError(f"chat template from {self.source} failed: {err}") from None

    def __getstate__(self):
        state = dict(self.__dict__)
        for derived in ("_compiled", "default_system"):
            state.pop(derived, None)
        return state

    @cached_property
    def default_system(self) -> tuple[int, str] | None:
        """(offset, text) of the system block the template writes by itself when a conversation has none —
        SmolLM2's "You are a helpful AI assistant named SmolLM…", Qwen2.5's, Llama 3.1's dates — or None.

        Found by rendering a two-exchange probe: the user-turn opening is what follows the first answer's closing,
        and a system block opens like a user turn with `system` for `user`. Templates that fold a system prompt into
        the first user turn (Llama 2, Mistral, Gemma) have no block of their own, so None."""
        u0, a0, u1, a1 = _PROBE
        roles = ("user", "assistant", "user", "assistant")
        rendered = self.render([{"role": r, "content": c} for r, c in zip(roles, _PROBE)])
        at = [rendered.find(x) for x in _PROBE]
        if -1 in at or at != sorted(at):
            return None
        closing_and_open = rendered[at[1] + len(a0) : at[2]]
        tail = rendered[at[3] + len(a1) :]
        user_open = closing_and_open[len(os.path.commonprefix([closing_and_open, tail])) :]
        head = rendered[: at[0]]
        if "user" not in user_open or not head.endswith(user_open):
            return None
        head = head[: len(head) - len(user_open)]
        start = head.find(user_open.replace("user", "system", 1))
        return None if start < 0 else (start, head[start:])

    def render_without_system(self, messages: list[dict], **kwargs) -> str:
        """The conversation (no system message) with the template's own default system block removed."""
        if messages and messages[0].get("role") == "system":
            raise TemplateError("render_without_system: the conversation already has a system message")
        rendered = self.render(messages, **kwargs)
        block = self.default_system
        if block is None:
            return rendered
        start, text = block
        if rendered[start : start + len(text)] != text:
            raise TemplateError(
                f"chat template from {self.source}: its default system block is not where the probe found it; "
                "set `system` to a prompt of your own instead of `none`"
            )
        return rendered[:start] + rendered[start + len(text) :]


def _environment(date: dt.date):
    class GenerationBlock(Extension):
        """Accept ``{% generation %}…{% endgeneration %}`` (used for assistant masks) and render its body."""

        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    # a fixed moment, not the clock: reruns and resumes must render the same bytes (time fields read midnight)
    moment = dt.datetime(date.year, date.month, date.day)
    env.globals["strftime_now"] = lambda fmt: moment.strftime(fmt)
    return env


def preset(name: str) -> ChatTemplate:
    text = resources.files(__package__).joinpath(f"{name}.jinja").read_text(encoding="utf-8")
    return ChatTemplate(text, dict(PRESETS[name]), source=f"preset '{name}'")


def _token_content(value) -> str | None:
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def from_model_dir(path: Path) -> ChatTemplate:
    """Template and special tokens from a local model/tokenizer folder (as saved by ``save_pretrained``)."""
    config_file = path / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.exists() else {}
    template = None
    if (path / "chat_template.jinja").exists():
        template = (path / "chat_template.jinja").read_text(encoding="utf-8")
    elif (path / "chat_template.json").exists():
        template = json.loads((path / "chat_template.json").read_text(encoding="utf-8")).get("chat_template")
    else:
        template = config.get("chat_template")
    if isinstance(template, list):  # named templates: take the default one
        named = {t["name"]: t["template"] for t in template}
        template = named.get("default") or next(iter(named.values()))
    if not template:
        raise TemplateError(
            f"no chat template in {path} (looked for chat_template.jinja, chat_template.json and "
            f"tokenizer_config.json 'chat_template'); use a preset: {', '.join(PRESETS)}"
        )
    tokens = {}
    special_map = path / "special_tokens_map.json"
    sources = [json.loads(special_map.read_text(encoding="utf-8"))] if special_map.exists() else []
    sources.append(config)
    for source in sources:
        for key in SPECIAL_TOKEN_KEYS:
            if key not in tokens and (content := _token_content(source.get(key))) is not None:
                tokens[key] = content
    return ChatTemplate(template, tokens, source=str(path))


def load_template(spec: str, revision: str | None = None, date: dt.date = DEFAULT_DATE) -> ChatTemplate:
    """``spec`` is a preset name, a local model folder, or a Hub model id (needs the network; ``revision``: a branch,
    tag or commit sha, default the main branch). ``date`` is what the template's ``strftime_now`` formats."""
    if spec in PRESETS:
        return replace(preset(spec), date=date)
    path = Path(spec).expanduser()
    if path.is_dir():
        return replace(from_model_dir(path), date=date)
    if "/" in spec and not spec.startswith((".", "/")):
        at = f"@{revision}" if revision else ""
        try:
            from huggingface_hub import snapshot_download  # heavy (about 0.5 s): only a Hub template needs it

            folder = snapshot_download(
                spec,
                revision=revision,
                endpoint=hub_endpoint(),
                allow_patterns=[
                    "tokenizer_config.json",
                    "special_tokens_map.json",
                    "chat_template.json*",
                    "chat_template.jinja",
                ],
            )
        except Exception as err:
            raise TemplateError(
                f"cannot fetch the chat template of '{spec}{at}' from the Hub ({type(err).__name__}: {err}). "
                f"Offline, use a local model folder or a preset: {', '.join(PRESETS)}"
            ) from None
        template = from_model_dir(Path(folder))
        return replace(template, source=f"{spec}{at}", date=date)
    raise TemplateError(f"'{spec}' is neither a preset ({', '.join(PRESETS)}), a folder, nor a Hub model id")
