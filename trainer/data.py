"""Shards → tokenized documents: CP text without a doubled BOS, SFT messages with a loss mask on assistant tokens,
DPO pairs as prompt+chosen followed by prompt+rejected with a loss mask on each completion.

Tokenized documents are cached as Arrow files (``input_ids``, ``loss_mask``, ``length``; pairs also
``chosen_length``) keyed by the shard files, the tokenizer and the settings, so a second run — or the other ranks of
a multi-GPU launch — reads them back instead of tokenizing again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

from corpusforge import storage
from corpusforge.corpus.layout import MANIFEST, STATE
from corpusforge.errors import CorpusforgeError

logger = logging.getLogger(__name__)

# Bump when the tokenized layout or the masking rules change, so old caches are not reused.
_CACHE_VERSION = 1
_GENERATION_BLOCK = re.compile(r"\{%-?\s*generation\s*-?%\}")
_NEEDS = {"cp": ("text",), "sft": ("messages",), "dpo": ("prompt", "chosen", "rejected")}


class DataError(CorpusforgeError):
    """A shard row the trainer cannot use; the message names the row id and the shard folder."""


def open_shards(config) -> list:
    """Each ``data.sources[i].path`` opened memory-mapped with ``datasets.load_from_disk``, columns checked."""
    import datasets

    opened = []
    for i, source in enumerate(config.data.sources):
        mode = source.mode or config.mode
        columns = _NEEDS[mode]
        loc = ("data", "sources", i, "path")
        if storage.is_url(source.path):  # a corpus built to an object store: datasets downloads it once
            path = source.path
            try:
                dataset = datasets.load_from_disk(path)
            except FileNotFoundError as err:
                raise config.error(loc, f"'{path}' is not a shard folder ({err})") from None
        else:
            path = Path(source.path).expanduser()
            if not (path / STATE).is_file():
                what = "does not exist" if not path.exists() else "is not a shard folder (no state.json)"
                raise config.error(loc, f"'{path}' {what} (cwd={Path.cwd()}); build it with `corpusforge run RECIPE`")
            dataset = datasets.load_from_disk(str(path))
        missing = [c for c in columns if c not in dataset.column_names]
        if missing:
            other = next((m for m, c in _NEEDS.items() if set(c) <= set(dataset.column_names)), None)
            hint = f" — it looks like {other} data: set `mode: {other}`" if other else ""
            if other and "dpo" not in (mode, other):  # a dpo run is its own stage: no per-source mode
                hint += " (here or on the source)"
            if len(columns) == 1:
                what = f"the '{columns[0]}' column"
            else:
                what = f"the {', '.join(repr(c) for c in columns)} columns (no {', '.join(repr(c) for c in missing)})"
            raise config.error(loc, f"mode {mode} reads {what}; '{path}' has {dataset.column_names}{hint}")
        opened.append(dataset)
    return opened


def source_is_tagged(path: str | Path) -> bool:
    """Whether the recipe that built this shard folder ran the InsCP `tag` step (its manifest says so)."""
    manifest = f"{str(path).rstrip('/')}/manifest.json"
    try:
        with storage.open_file(manifest, "rb") as f:
            steps = json.loads(f.read()).get("recipe", {}).get("steps", [])
    except FileNotFoundError:
        return False
    return any(isinstance(step, dict) and "tag" in step for step in steps)


DOCUMENT_SEPARATORS = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|end|>")


def chat_turn_tokens(tokenizer) -> set[str]:
    """Special tokens the chat template writes inside a conversation (turn openers and closers), not only at its
    very start: a document wrapped in them reads as a chat turn."""
    if not getattr(tokenizer, "chat_template", None):
        return set()
    probe = [{"role": "user", "content": "cfprobe question"}, {"role": "assistant", "content": "cfprobe answer"}]
    try:
        rendered = tokenizer.apply_chat_template(probe, tokenize=False)
    except Exception:  # noqa: BLE001 — a template that needs more than this probe: nothing to learn from it
        return set()
    out = set()
    for token in {tokenizer.bos_token, tokenizer.eos_token, *tokenizer.all_special_tokens} - {None, ""}:
        first = rendered.find(token)
        if first > 0 or (first == 0 and rendered.find(token, len(token)) > 0):
            out.add(token)
    return out


def plain_bounds(tokenizer, separator: str = "auto", add_eos: bool = True) -> tuple[list[int], list[int], str | None]:
    """(ids before, ids after) each plain-text document, and a warning to log (or None)."""
    bos, eos = tokenizer.bos_token, tokenizer.eos_token
    if separator == "none":
        return [], [], None
    if separator == "bos_eos":
        return _ids(tokenizer, [bos]), _ids(tokenizer, [eos] if add_eos else []), None
    if separator != "auto":
        ids = tokenizer.convert_tokens_to_ids(separator)
        if not isinstance(ids, int) or ids == tokenizer.unk_token_id or separator not in tokenizer.get_vocab():
            raise DataError(f"data.separator: '{separator}' is not a token of this tokenizer")
        return [], [ids], None
    turn = chat_turn_tokens(tokenizer)
    if not ({bos, eos} & turn):
        return _ids(tokenizer, [bos]), _ids(tokenizer, [eos] if add_eos else []), None
    vocab = tokenizer.get_vocab()
    doc_sep = next((t for t in DOCUMENT_SEPARATORS if t in vocab and t not in turn), None)
    if doc_sep is None:
        raise DataError(
            f"plain cp text: this tokenizer's BOS {bos!r} / EOS {eos!r} are chat-turn tokens of its template and it "
            "has no document separator token; set data.separator (a token, `none`, or `bos_eos`)"
        )
    head = [] if bos in turn else _ids(tokenizer, [bos])
    named = [f"{what} {token!r}" for what, token in (("BOS", bos), ("EOS", eos)) if token in turn]
    verb = "is a chat-turn token" if len(named) == 1 else "are chat-turn tokens"
    kept = f"BOS {bos!r} before and " if head else ""
    note = (
        f"plain cp text: the tokenizer's {' and '.join(named)} {verb} of its template; documents get {kept}"
        f"{doc_sep!r} after instead (data.separator chooses)"
    )
    return head, [vocab[doc_sep]] if add_eos else [], note


def _ids(tokenizer, tokens: list[str | None]) -> list[int]:
    return [tokenizer.convert_tokens_to_ids(t) for t in tokens if t]


class TokenizeText:
    """cp rows: formatted text (InsCP) is tokenized as is — it carries its own BOS; plain text gets the document
    bounds of ``plain_bounds`` (BOS + EOS, or the document separator when those are chat-turn tokens)."""

    def __init__(
        self,
        tokenizer,
        text_format: str = "auto",
        tagged_source: bool = False,
        add_eos: bool = True,
        separator: str = "auto",
    ):
        self.tokenizer = tokenizer
        self.text_format = text_format
        self.tagged_source = tagged_source
        self.add_eos = add_eos
        self.head, self.tail, self.note = plain_bounds(tokenizer, separator, add_eos)

    def formatted(self, text: str) -> bool:
        if self.text_format != "auto":
            return self.text_format == "formatted"
        bos = self.tokenizer.bos_token
        return self.tagged_source or bool(bos and text.startswith(bos))

    def __call__(self, batch: dict) -> dict:
        # add_special_tokens=False always: formatted text already has BOS, and plain text gets the bounds chosen
        # above because post-processors differ (some add EOS, some add nothing).
        encoded = self.tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
        rows = [
            ids if self.formatted(text) else self.head + ids + self.tail for text, ids in zip(batch["text"], encoded)
        ]
        return {"input_ids": rows, "loss_mask": [[1] * len(r) for r in rows], "length": [len(r) for r in rows]}


def render_with_mask(
    tokenizer, messages: list[dict], row_id: str = "?", first_trained: int = 0
) -> tuple[list[int], list[int]]:
    """Token ids of the conversation rendered by the chat template, and 1 on every assistant token (of the assistant
    turns from message ``first_trained`` on: a DPO completion after a prompt that may hold earlier answers).

    With ``{% generation %}`` blocks in the template, transformers' own assistant masks are used. Otherwise each
    assistant turn is located by rendering the conversation up to it (with the generation prompt) and through it:
    the characters between are the turn's content and its end-of-turn token, and every token overlapping them is
    trained. That needs the template to be prefix-stable (rendering a prefix of the conversation gives a prefix
    of the text); templates that rewrite earlier turns fail loudly.
    """
    template = tokenizer.chat_template
    if not template:
        raise DataError(f"row '{row_id}': the tokenizer has no chat template to render `messages` with")
    try:
        if _GENERATION_BLOCK.search(template):
            out = tokenizer.apply_chat_template(
                messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
            )
            mask = list(out["assistant_masks"])
            if first_trained:
                head = tokenizer.apply_chat_template(
                    messages[:first_trained], tokenize=True, return_dict=True, add_generation_prompt=True
                )
                mask[: len(head["input_ids"])] = [0] * min(len(head["input_ids"]), len(mask))
            return list(out["input_ids"]), mask
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        spans = []
        for i, message in enumerate(messages):
            if message["role"] != "assistant" or i < first_trained:
                continue
            start = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
            end = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
            if not (end.startswith(start) and text.startswith(end)):
                raise DataError(
                    f"row '{row_id}': the chat template is not prefix-stable at message {i} (rendering the "
                    "conversation up to this turn is not a prefix of the whole), so assistant tokens cannot be "
                    "located; use a template with {% generation %} blocks"
                )
            spans.append((len(start), len(end)))
    except DataError:
        raise
    except Exception as err:  # jinja raise_exception(), missing keys in a message...
        raise DataError(f"row '{row_id}': the chat template failed on this conversation: {err}") from None
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [0] * len(encoded["input_ids"])
    for t, (s, e) in enumerate(encoded["offset_mapping"]):
        for lo, hi in spans:
            # A token overlapping the span is trained; a zero-width one (trimmed whitespace) if it sits inside.
            if (s < hi and e > lo) if e > s else (lo <= s < hi):
                mask[t] = 1
                break
    return list(encoded["input_ids"]), mask


class TokenizeMessages:
    """sft rows: the chat template renders `messages`; the loss mask is 1 exactly on assistant tokens."""

    def __init__(self, tokenizer, source: str = ""):
        self.tokenizer = tokenizer
        self.source = source

    def __call__(self, batch: dict) -> dict:
        out = {"input_ids": [], "loss_mask": [], "length": []}
        ids_column = batch.get("id") or [f"#{i}" for i in range(len(batch["messages"]))]
        for row_id, messages in zip(ids_column, batch["messages"]):
            if not messages:
                raise DataError(f"row '{row_id}' in {self.source}: `messages` is empty")
            ids, mask = render_with_mask(self.tokenizer, messages, row_id)
            if not any(mask):
                roles = ", ".join(m.get("role", "?") for m in messages)
                raise DataError(
                    f"row '{row_id}' in {self.source}: no assistant token to train on (roles: {roles}); every sft "
                    "row needs at least one assistant turn"
                )
            out["input_ids"].append(ids)
            out["loss_mask"].append(mask)
            out["length"].append(len(ids))
        return out


class TokenizePairs:
    """dpo rows: ``prompt`` + ``chosen`` and ``prompt`` + ``rejected``, one after the other in ``input_ids``
    (``chosen_length`` says where the second starts), 1 in the loss mask on each completion.

    Conversational rows (TRL's format: lists of messages) go through ``render_with_mask``, as sft rows do: the prompt
    rendered with the generation prompt, the completion is what the template writes after it (the answer and its
    end-of-turn token). Plain strings are tokenized as TRL tokenizes them: ``tokenizer(prompt)`` and
    ``tokenizer(prompt + completion + EOS)``, the completion starting where the two diverge."""

    def __init__(self, tokenizer, source: str = ""):
        self.tokenizer = tokenizer
        self.source = source

    def __call__(self, batch: dict) -> dict:
        out = {"input_ids": [], "loss_mask": [], "length": [], "chosen_length": []}
        ids_column = batch.get("id") or [f"#{i}" for i in range(len(batch["prompt"]))]
        for row_id, prompt, chosen, rejected in zip(ids_column, batch["prompt"], batch["chosen"], batch["rejected"]):
            c_ids, c_mask = self.one(prompt, chosen, row_id, "chosen")
            r_ids, r_mask = self.one(prompt, rejected, row_id, "rejected")
            out["input_ids"].append(c_ids + r_ids)
            out["loss_mask"].append(c_mask + r_mask)
            out["length"].append(len(c_ids) + len(r_ids))
            out["chosen_length"].append(len(c_ids))
        return out

    def one(self, prompt, completion, row_id: str = "?", column: str = "chosen") -> tuple[list[int], list[int]]:
        """Token ids of prompt + completion and the completion's loss mask."""
        if isinstance(prompt, str) and isinstance(completion, str):
            return self._text(prompt, completion)
        where = f"row '{row_id}' in {self.source}"
        if not (isinstance(prompt, list) and isinstance(completion, list)) or not prompt or not completion:
            raise DataError(
                f"{where}: `prompt` and `{column}` must both be lists of messages (conversational) or both strings, "
                f"got {type(prompt).__name__} and {type(completion).__name__}" + (" (empty)" if not completion else "")
            )
        ids, mask = render_with_mask(self.tokenizer, [*prompt, *completion], row_id, first_trained=len(prompt))
        if not any(mask):
            roles = ", ".join(m.get("role", "?") for m in completion)
            raise DataError(f"{where}: `{column}` has no assistant turn to train on (roles: {roles})")
        return ids, mask

    def _text(self, prompt: str, completion: str) -> tuple[list[int], list[int]]:
        eos = self.tokenizer.eos_token or ""
        head = self.tokenizer(prompt)["input_ids"]
        ids = self.tokenizer(prompt + (completion if completion.endswith(eos) else completion + eos))["input_ids"]
        shared = next((i for i, (a, b) in enumerate(zip(head, ids)) if a != b), min(len(head), len(ids)))
        return list(ids), [0] * shared + [1] * (len(ids) - shared)


def _cache_root(config) -> Path:
    if config.data.cache_dir:
        return Path(config.data.cache_dir).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "corpusforge" / "tokenized"


def _tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        body = backend.to_str()
    else:  # a slow (sentencepiece) tokenizer
        from datasets.fingerprint import Hasher

        body = Hasher.hash(tokenizer)
    parts = [body, str(tokenizer.chat_template), str(tokenizer.bos_token), str(tokenizer.eos_token)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _shard_fingerprint(path: Path | str) -> list:
    """The shard files as they are now: a rebuilt shard folder gets a new cache entry (one at a URL: its manifest,
    rewritten by every build, and state.json)."""
    if storage.is_url(path):
        texts = []
        for name in (MANIFEST, STATE):
            with storage.open_file(f"{path}/{name}", "rb") as f:
                texts.append(f.read().decode("utf-8"))
        return texts
    return [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(path.glob("*.arrow"))] + [
        (path / STATE).read_text(encoding="utf-8")
    ]


def tokenize_sources(config, tokenizer, shards: list) -> list:
    """Each opened shard tokenized (cached, ``data.num_proc`` processes) into input_ids / loss_mask / length."""
    from datasets import Features, Sequence, Value

    columns = {"input_ids": Sequence(Value("int32")), "loss_mask": Sequence(Value("int8")), "length": Value("int32")}
    root = _cache_root(config)
    root.mkdir(parents=True, exist_ok=True)
    tokenizer_key = _tokenizer_fingerprint(tokenizer)
    out = []
    for source, dataset in zip(config.data.sources, shards):
        path = source.path.rstrip("/") if storage.is_url(source.path) else Path(source.path).expanduser().resolve()
        mode = source.mode or config.mode
        if mode == "cp":
            tagged = source_is_tagged(path)
            fn = TokenizeText(tokenizer, source.text_format, tagged, config.data.add_eos, config.data.separator)
            _warn_on_foreign_template(fn, dataset, tokenizer, path)
            if fn.note and not tagged and source.text_format != "formatted":
                logger.warning("%s: %s", path, fn.note)
            settings = [source.text_format, tagged, config.data.add_eos, fn.head, fn.tail]
        elif mode == "sft":
            fn = TokenizeMessages(tokenizer, str(path))
            settings = []
        else:
            fn = TokenizePairs(tokenizer, str(path))
            settings = []
        features = Features({**columns, **({"chosen_length": Value("int32")} if mode == "dpo" else {})})
        key_parts = [_CACHE_VERSION, mode, str(path), _shard_fingerprint(path), tokenizer_key, settings]
        key = hashlib.sha256(json.dumps(key_parts, default=str).encode()).hexdigest()[:24]
        tokenized = dataset.map(
            fn,
            batched=True,
            batch_size=256,
            remove_columns=dataset.column_names,
            features=features,
            num_proc=config.data.num_proc if len(dataset) > 1 else None,
            cache_file_name=str(root / f"{key}.arrow"),
            load_from_cache_file=True,
            new_fingerprint=key,
            desc=f"tokenizing {storage.basename(path)}",
        )
        out.append(tokenized)
    return out


def _warn_on_foreign_template(fn: TokenizeText, dataset, tokenizer, path: Path) -> None:
    """Tagged text rendered for another model's template would be trained on as literal characters."""
    if not fn.tagged_source or not tokenizer.bos_token or not len(dataset):
        return
    first = dataset[0]["text"]
    if not first.startswith(tokenizer.bos_token):
        logger.warning(
            "%s was InsCP-tagged but its first row does not start with this tokenizer's BOS %r (starts with %r): "
            "was it tagged with another model's chat template?",
            path,
            tokenizer.bos_token,
            first[:40],
        )
