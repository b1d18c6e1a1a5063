"""A build's inputs, resolved once: every glob matched to its files, checked (fields exist, files readable) and
fingerprinted before anything is written. The build plan records the result; readers, the progress total and the
resume check all read that record, none resolves a glob again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from corpusforge import storage
from corpusforge.errors import RecipeError, SourceError
from corpusforge.recipe.models import FilesSource, HFSource, Recipe, source_name
from corpusforge.sources.files import (
    FileReader,
    builtin_data_dir,
    file_format,
    peek_fields,
    resolve_files,
)
from corpusforge.sources.hf import HFReader, open_dataset


def _glob_root(source: FilesSource, files: list[str]) -> str:
    """Directory that file ids are relative to: the common parent of the matched files."""
    common = storage.common_root(files)
    builtin = str(builtin_data_dir().resolve())
    return builtin if common.startswith(builtin) else common


def _check_files(source: FilesSource, index: int, files: list[str]) -> list[tuple[tuple, str]]:
    loc = ("sources", index)
    problems = []
    wanted = [source.text_field, *source.fields] + ([source.id_field] if source.id_field else [])
    for path in files:
        try:
            fmt = file_format(path, source.format)
            names = peek_fields(path, fmt)
        except SourceError as err:
            problems.append((loc + ("format",), str(err)))
            continue
        except Exception as err:  # unreadable file: corrupt parquet, bad gzip header …
            problems.append((loc + ("glob",), f"{path}: cannot be read as {source.format}: {err}"))
            continue
        if names is None:
            if source.text_field != "text" or source.id_field or source.fields:
                problems.append((loc, f"{path}: txt files have no fields; remove text_field/id_field/fields"))
            continue
        missing = [f for f in wanted if f not in names]
        if names and missing:
            field = (
                "text_field"
                if source.text_field in missing
                else ("id_field" if source.id_field in missing else "fields")
            )
            problems.append(
                (loc + (field,), f"{path}: no field {missing[0]!r} in the first record (fields: {names[:12]})")
            )
    return problems


def _check_hf(source: HFSource, index: int) -> list[tuple[tuple, str]]:
    loc = ("sources", index)
    try:
        ds = open_dataset(source.hf.model_dump(), streaming=True)
        names = list(ds.column_names or next(iter(ds)).keys())
    except StopIteration:
        return [(loc + ("hf",), f"dataset '{source.hf.path}' split '{source.hf.split}' is empty")]
    except Exception as err:
        return [(loc + ("hf", "path"), f"cannot open dataset '{source.hf.path}': {type(err).__name__}: {err}")]
    wanted = [source.text_field, *source.fields] + ([source.id_field] if source.id_field else [])
    missing = [f for f in wanted if f not in names]
    if missing:
        return [
            (loc + ("text_field",), f"no field {missing[0]!r} in dataset '{source.hf.path}' (columns: {names[:12]})")
        ]
    return []


def resolve_inputs(recipe: Recipe) -> list[list[str] | None]:
    """Every source's files (None for a Hub dataset), checked; raises a RecipeError naming every problem."""
    problems, resolved = [], []
    for i, source in enumerate(recipe.sources):
        if isinstance(source, HFSource):
            resolved.append(None)
            problems += _check_hf(source, i)
            continue
        try:
            files = resolve_files(source.glob)
        except SourceError as err:
            resolved.append([])
            problems.append((("sources", i, "glob"), str(err)))
            continue
        resolved.append(files)
        problems += _check_files(source, i, files)
    names = [source_name(s, i) for i, s in enumerate(recipe.sources)]
    for i, name in enumerate(names):
        if names.index(name) != i:
            problems.append((("sources", i, "name"), f"two sources are named '{name}'; give each a distinct `name`"))
    if recipe.generate is not None:
        problems += _check_model(recipe.generate)
    if problems:
        raise RecipeError(problems)
    return resolved


def preflight(recipe: Recipe) -> None:
    """Raise a RecipeError naming every source problem, before anything is written."""
    resolve_inputs(recipe)


def _check_model(generate) -> list[tuple[tuple, str]]:
    """A model given as a path must exist; anything else is a Hub id (or, for `openai`, a served name)."""
    model = generate.model
    if generate.backend.type == "openai" or not model.startswith(("/", "./", "../", "~")):
        return []
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        what = "has no config.json" if path.is_dir() else "does not exist"
        return [(("generate", "model"), f"model folder '{model}' {what} (cwd={Path.cwd()})")]
    return []


def make_readers(recipe: Recipe, resolved: list[list[str] | None], progress_dir: str | None = None) -> list:
    """One reader per source, over the files ``resolve_inputs`` found."""
    readers = []
    ordered = any(call.name == "dedup" for call in recipe.steps)  # its survivors follow the recipe's source order
    for i, (source, files) in enumerate(zip(recipe.sources, resolved)):
        common = dict(
            source_index=i if ordered else None,
            source_name=source_name(source, i),
            text_field=source.text_field,
            id_field=source.id_field,
            fields=source.fields,
            limit=source.limit,
            progress_dir=progress_dir,
        )
        if isinstance(source, HFSource):
            readers.append(HFReader(spec=source.hf.model_dump(), **common))
        else:
            readers.append(
                FileReader(
                    files=list(files),
                    base_dir=_glob_root(source, files),
                    fmt=source.format,
                    txt_unit=source.txt_unit,
                    **common,
                )
            )
    return readers


def fingerprint_inputs(recipe: Recipe, resolved: list[list[str] | None]) -> list[dict]:
    """Size, mtime (a remote file: its version, e.g. the ETag) and a hash of the first MiB of every input file (HF
    sources: their spec)."""
    out = []
    for i, (source, files) in enumerate(zip(recipe.sources, resolved)):
        if files is None:
            out.append({"source": source_name(source, i), "hf": source.hf.model_dump()})
            continue
        for path in files:
            with storage.open_file(path, "rb") as f:
                head = hashlib.sha256(f.read(1 << 20)).hexdigest()
            out.append(
                {"source": source_name(source, i), "path": path, **storage.file_info(path), "head_sha256": head}
            )
    return out


def input_bytes(inputs: list[dict]) -> int | None:
    """Total size of the file inputs, for the progress bar (None when a source has no known size)."""
    if any("hf" in entry for entry in inputs):
        return None
    return sum(entry["bytes"] for entry in inputs)


def changed_inputs(before: list[dict], now: list[dict]) -> list[str]:
    """What differs between two fingerprints of a build's inputs, one phrase per file ([] when they match)."""
    old = {(e["source"], e.get("path") or json.dumps(e.get("hf"), sort_keys=True)): e for e in before}
    new = {(e["source"], e.get("path") or json.dumps(e.get("hf"), sort_keys=True)): e for e in now}
    changes = []
    for key in new.keys() - old.keys():
        changes.append(f"{key[1]} is new")
    for key in old.keys() - new.keys():
        changes.append(f"{key[1]} is gone")
    for key in old.keys() & new.keys():
        a, b = old[key], new[key]
        what = [k for k in ("bytes", "head_sha256", "mtime_ns", "version", "hf") if a.get(k) != b.get(k)]
        if what:
            label = {
                "bytes": "size",
                "head_sha256": "content",
                "mtime_ns": "modification time",
                "version": "version",
                "hf": "spec",
            }
            changes.append(f"{key[1]} changed ({', '.join(label[w] for w in what)})")
    return sorted(changes)
