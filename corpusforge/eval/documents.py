"""Documents for the diagnostics: corpusforge outputs (the `datasets` save_to_disk layout), jsonl and txt files.

Everything streams: a saved dataset is memory-mapped and read in batches of two columns, files line by line, and
reading stops after ``max_docs`` documents, so a diagnostic on a terabyte corpus reads only its head.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from corpusforge.corpus.layout import MANIFEST, STATE
from corpusforge.errors import SourceError
from corpusforge.lang.lid import LanguageIdentifier
from corpusforge.sources.files import COMPRESSIONS, open_binary

log = logging.getLogger("corpusforge.eval")

DEFAULT_MAX_DOCS = 20_000
_SENTINEL = "\x00corpusforge-document\x00"
_SUFFIXES = (".jsonl", ".json", ".ndjson", ".txt")


@dataclass(frozen=True)
class Doc:
    text: str
    language: str | None


def _is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and ((path / STATE).exists() or any(path.glob("data-*-of-*.arrow")))


def _plain_suffix(path: Path) -> str:
    name = path.name.lower()
    for comp in COMPRESSIONS:
        name = name.removesuffix(comp)
    return Path(name).suffix


def corpus_files(paths: list[str | Path]) -> list[Path]:
    """Each path as given: a saved dataset folder, or a jsonl/txt file. Fails on anything else, naming it."""
    out = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise SourceError(f"corpus '{raw}' does not exist (cwd={Path.cwd()})")
        if path.is_dir() and not _is_saved_dataset(path):
            raise SourceError(
                f"corpus '{raw}' is a folder but not a corpusforge output or datasets.save_to_disk folder "
                "(no state.json, no data-*-of-*.arrow); pass the output folder of `corpusforge run` or jsonl/txt files"
            )
        if path.is_file() and _plain_suffix(path) not in _SUFFIXES:
            raise SourceError(
                f"corpus '{raw}': cannot read '{path.suffix}' files here; use jsonl (a `text` field per line), "
                "txt (a document per line) or a corpusforge output folder"
            )
        out.append(path)
    if not out:
        raise SourceError("no corpus given: pass a corpusforge output folder or jsonl/txt files")
    return out


def tag_wrapper(path: Path) -> tuple[str, str] | None:
    """Prefix and suffix the build's InsCP `tag` step wrapped every document in (read from its manifest), or None.

    Fertility is about the language, so the chat-template markup is measured apart from it: the wrapper is the
    same on every document and would flatten the differences between languages.
    """
    manifest = path / MANIFEST
    if not manifest.is_file():
        return None
    steps = (json.loads(manifest.read_text(encoding="utf-8")).get("recipe") or {}).get("steps") or []
    params = next((s["tag"] for s in steps if isinstance(s, dict) and isinstance(s.get("tag"), dict)), None)
    if params is None:
        return None
    from corpusforge.steps.tagging import InsCPTag, TagParams

    try:
        rendered = InsCPTag(TagParams(**params)).tag(_SENTINEL)
    except Exception as err:  # a Hub template while offline, a template folder since moved, ...
        log.warning("%s: cannot render its chat template (%s); measuring the tagged text as is", path, err)
        return None
    prefix, _, suffix = rendered.partition(_SENTINEL)
    return prefix, suffix


def _untag(text: str, wrapper: tuple[str, str] | None) -> str:
    if wrapper and text.startswith(wrapper[0]) and text.endswith(wrapper[1]):
        return text[len(wrapper[0]) : len(text) - len(wrapper[1])]
    return text


def _saved_dataset_docs(path: Path, text_field: str, untag: bool) -> Iterator[Doc]:
    import datasets

    wrapper = tag_wrapper(path) if untag else None

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        raise SourceError(f"corpus '{path}' holds several splits ({list(ds)}); pass one split's folder")
    if text_field not in ds.column_names:
        raise SourceError(f"corpus '{path}' has no '{text_field}' column (columns: {ds.column_names})")
    columns = [text_field] + (["language"] if "language" in ds.column_names else [])
    for batch in ds.select_columns(columns).iter(batch_size=1000):
        languages = batch.get("language") or [None] * len(batch[text_field])
        for text, language in zip(batch[text_field], languages):
            if text:
                yield Doc(_untag(text, wrapper), language or None)


def _jsonl_docs(path: Path, text_field: str) -> Iterator[Doc]:
    with open_binary(path) as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = orjson.loads(raw)
            except orjson.JSONDecodeError as err:
                raise SourceError(f"{path}:{lineno}: not a JSON object ({err}); one JSON object per line") from err
            if not isinstance(row, dict) or not isinstance(row.get(text_field), str):
                raise SourceError(f"{path}:{lineno}: no string field '{text_field}' (pass --text-field NAME)")
            if row[text_field]:
                yield Doc(row[text_field], row.get("language") or None)


def _txt_docs(path: Path) -> Iterator[Doc]:
    with open_binary(path) as f:
        for lineno, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                raise SourceError(f"{path}:{lineno}: invalid UTF-8 at byte {err.start}") from err
            if text.strip():
                yield Doc(text, None)


def iter_docs(
    paths: list[str | Path],
    max_docs: int | None = DEFAULT_MAX_DOCS,
    language: str | None = None,
    text_field: str = "text",
    identify: Callable[[str], str] | None = None,
    untag: bool = True,
) -> Iterator[Doc]:
    """The first ``max_docs`` documents of the corpora, each with a language.

    The language is the row's `language` column, else ``language``, else ``identify(text)`` (e.g. fastText LID),
    else None. With ``untag``, documents of a corpusforge build with an InsCP `tag` step lose the chat-template
    wrapper (see ``tag_wrapper``).
    """
    n = 0
    for path in corpus_files(paths):
        if path.is_dir():
            docs = _saved_dataset_docs(path, text_field, untag)
        elif _plain_suffix(path) == ".txt":
            docs = _txt_docs(path)
        else:
            docs = _jsonl_docs(path, text_field)
        for doc in docs:
            if max_docs is not None and n >= max_docs:
                return
            if doc.language is None and (language or identify):
                doc = Doc(doc.text, language or identify(doc.text))
            n += 1
            yield doc


def lid_identifier() -> Callable[[str], str]:
    """fastText LID (the `language` step with its defaults: lid.176 + script-aware Chinese)."""
    lid = LanguageIdentifier()
    return lambda text: lid.identify(text)[0]
