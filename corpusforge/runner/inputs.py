"""A build's inputs, resolved once: every source matched to the files it reads, checked (fields exist, files
readable) and fingerprinted before anything is written. The build plan records the result; readers, the progress
total and the resume check all read that record, none resolves a source again.

Every source kind goes through here: a glob's files; an `hf:` source's local files as `datasets` resolves them
(`data_files`, `data_dir`, a folder of data files, the Arrow files of a `save_to_disk` folder), each fingerprinted like
a glob's; a Hub dataset pinned to the commit its revision points at now, which is what the readers load. What cannot
be fingerprinted (a Hub that does not answer, a dataset script, remote data files) is logged as such and recorded, and
a resume over it is refused. Files under the build's own output folder (and its staging folder) are never inputs.
The files a step reads besides its documents (``input_files()`` of its parameters model: an eval set, a term list)
are checked and fingerprinted here too."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from corpusforge import storage
from corpusforge.errors import RecipeError, SourceError
from corpusforge.pinning import HubUnreachable, is_hub_id, pin_dataset_revision
from corpusforge.recipe.models import FilesSource, HFSource, Recipe, source_name
from corpusforge.sources.files import (
    FileReader,
    builtin_data_dir,
    file_format,
    peek_fields,
    resolve_files,
)
from corpusforge.sources.hf import (
    HFReader,
    data_files,
    hf_cache_root,
    is_builder,
    open_dataset,
    saved_files,
    saved_folder,
)
from corpusforge.steps.registry import get_step

log = logging.getLogger("corpusforge.runner")


@dataclass
class ResolvedSource:
    """What one source reads. ``files`` are fingerprinted one by one; ``spec`` is what an `hf:` source's reader
    loads (its Hub revision pinned, or its local data files listed); ``revision`` the commit a Hub dataset is pinned
    to; ``unfingerprinted`` why the source's content cannot be fingerprinted."""

    files: list[str] = field(default_factory=list)
    spec: dict | None = None
    revision: str | None = None
    unfingerprinted: str | None = None


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


def _check_hf(source: HFSource, index: int, spec: dict) -> list[tuple[tuple, str]]:
    loc = ("sources", index)
    try:
        ds = open_dataset(spec, streaming=True)
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


def own_output(recipe: Recipe, out: str | Path | None = None) -> list[str]:
    """The folders the build writes, normalized: its output (a folder or a URL), its staging folder, and ``out``
    (where it runs, from ``plan.with_output``). Nothing under them is ever an input."""
    roots = []
    for root in (recipe.output.path, recipe.output.staging, out):
        if root is None:
            continue
        root = str(root)
        if storage.is_url(root):
            try:
                fs, inner = storage.url_fs(root)
                root = fs.unstrip_protocol(inner.rstrip("/"))  # the form `glob_url` gives matches in
            except SourceError:
                root = root.rstrip("/")
        else:
            root = os.path.realpath(storage.local_path(root))
        roots.append(root)
    return list(dict.fromkeys(roots))


def _under(path: str, root: str) -> bool:
    if storage.is_url(path) != storage.is_url(root):
        return False
    path = path.rstrip("/") if storage.is_url(path) else os.path.realpath(storage.local_path(path))
    sep = "/" if storage.is_url(root) else os.sep
    return path == root or path.startswith(root.rstrip(sep) + sep)


def _without_own_output(files: list[str], roots: list[str], index: int) -> tuple[list[str], list[str]]:
    """``files`` less those under the build's own output folders, and the roots that held the ones left out."""
    kept, held = [], []
    for path in files:
        inside = [root for root in roots if _under(path, root)]
        if inside:
            held += [root for root in inside if root not in held]
        else:
            kept.append(path)
    if len(kept) < len(files):
        log.info(
            "sources[%d]: %d file(s) under the build's own output (%s) left out of its inputs",
            index,
            len(files) - len(kept),
            ", ".join(held),
        )
    return kept, held


def _all_own_output(what, n: int, held: list[str]) -> str:
    where = "" if storage.is_url(held[0]) else f" (cwd={Path.cwd()})"
    return (
        f"no file matches {what!r} outside the build's output folder {', '.join(held)}: its {n} match(es) are "
        f"inside it, and a build's own output is never its input{where}"
    )


def _resolve_glob(source: FilesSource, index: int, roots: list[str]) -> tuple[ResolvedSource, list]:
    loc = ("sources", index, "glob")
    try:
        files = resolve_files(source.glob)
    except SourceError as err:
        return ResolvedSource(), [(loc, str(err))]
    kept, held = _without_own_output(files, roots, index)
    if not kept:
        return ResolvedSource(), [(loc, _all_own_output(source.glob, len(files), held))]
    return ResolvedSource(files=kept), []


def _hub_dataset(path: str) -> str | None:
    """The Hub dataset repo an `hf.path` names (``org/name``, ``hf://datasets/org/name``), None for anything else."""
    repo = path.removeprefix("hf://datasets/")
    if is_builder(path) or (repo == path and storage.is_url(path)):
        return None
    return repo if is_hub_id(repo) else None


def _is_script(path: str) -> bool:
    """Whether `datasets` would run a dataset script for ``path`` (``x.py``, or a folder holding ``<folder>.py``)."""
    parts = [p for p in path.replace(os.sep, "/").split("/") if p]
    return path.endswith(".py") or (bool(parts) and os.path.isfile(os.path.join(path, parts[-1] + ".py")))


def _splits(split: str, by_split: dict[str, list[str]]) -> list[str]:
    """The splits of ``by_split`` that a split expression (``train``, ``train[:10%]+test``) reads; all when it names
    one that is not there (`datasets` then says so when it loads)."""
    names = [part.split("[")[0].strip() for part in split.split("+")]
    return names if all(name in by_split for name in names) else list(by_split)


def _resolve_hf(source: HFSource, index: int, roots: list[str]) -> tuple[ResolvedSource, list]:
    """What an `hf:` source reads: the Arrow files of a `save_to_disk` folder; a Hub dataset at its commit; the local
    data files of a builder (`json`, …) or a folder, as `datasets` resolves them, listed in the spec the reader
    loads so that it reads what was fingerprinted."""
    spec = source.hf.model_dump()
    path, loc = spec["path"], ("sources", index, "hf")
    try:
        folder = saved_folder(spec)
        files = saved_files(folder) if folder is not None else None
    except Exception as err:  # a store that refuses, a state.json that is not JSON
        return ResolvedSource(spec=spec), [
            (loc + ("path",), f"cannot open dataset '{path}': {type(err).__name__}: {err}")
        ]
    if files is not None:
        kept, held = _without_own_output(files, roots, index)
        if held:
            return ResolvedSource(spec=spec), [(loc + ("path",), _all_own_output(path, len(files), held))]
        return ResolvedSource(files=kept, spec=spec), []
    repo = _hub_dataset(path)
    if repo is not None:
        try:
            sha = pin_dataset_revision(repo, spec.get("revision"))
        except HubUnreachable as err:
            return ResolvedSource(spec=spec, unfingerprinted=str(err)), []
        except SourceError as err:
            return ResolvedSource(spec=spec), [(loc + ("path",), str(err))]
        return ResolvedSource(spec={**spec, "revision": sha}, revision=sha), []
    if _is_script(path):
        return ResolvedSource(spec=spec, unfingerprinted=f"'{path}' is a dataset script: what it reads is its own"), []
    if not (is_builder(path) or Path(path).expanduser().is_dir()):
        return ResolvedSource(spec=spec, unfingerprinted=f"'{path}' is no local folder, builder or Hub dataset id"), []
    try:
        by_split = data_files(spec)
    except Exception as err:  # no file matches: opening it fails too, and `_check_hf` says so
        why = f"its data files cannot be listed ({type(err).__name__}: {err})"
        return ResolvedSource(spec=spec, unfingerprinted=why), []
    wanted = _splits(spec["split"], by_split)
    files = [f for split in wanted for f in by_split[split]]
    remote = next((f for f in files if storage.is_url(f)), None)
    if remote is not None:
        return ResolvedSource(spec=spec, unfingerprinted=f"its data files are remote ({remote})"), []
    kept, held = _without_own_output(files, roots, index)
    if not kept:
        what = spec.get("data_files") or path
        return ResolvedSource(spec=spec), [(loc + ("data_files",), _all_own_output(what, len(files), held))]
    if is_builder(path) or held:  # the reader loads exactly these files (a folder's own layout is kept otherwise)
        keep = set(kept)
        listed = {split: [f for f in by_split[split] if f in keep] for split in wanted}
        spec = {k: v for k, v in spec.items() if k != "data_dir"}
        spec["data_files"] = {split: names for split, names in listed.items() if names}
    return ResolvedSource(files=kept, spec=spec), []


def resolve_inputs(recipe: Recipe, out: str | Path | None = None) -> list[ResolvedSource]:
    """Every source resolved to what it reads, checked, the build's own output (``out``, the output folder, the
    staging folder) left out; raises a RecipeError naming every problem."""
    roots = own_output(recipe, out)
    problems, resolved = [], []
    for i, source in enumerate(recipe.sources):
        if isinstance(source, HFSource):
            entry, found = _resolve_hf(source, i, roots)
            found = found or _check_hf(source, i, entry.spec)
        else:
            entry, found = _resolve_glob(source, i, roots)
            found = found or _check_files(source, i, entry.files)
        if entry.unfingerprinted and not found:
            log.warning(
                "sources[%d] '%s': its content cannot be fingerprinted (%s); a rerun cannot tell whether it changed, "
                "so it will not resume this build (--overwrite rebuilds it)",
                i,
                source_name(source, i),
                entry.unfingerprinted,
            )
        problems += found
        resolved.append(entry)
    names = [source_name(s, i) for i, s in enumerate(recipe.sources)]
    for i, name in enumerate(names):
        if names.index(name) != i:
            problems.append((("sources", i, "name"), f"two sources are named '{name}'; give each a distinct `name`"))
    if recipe.generate is not None:
        problems += _check_model(recipe.generate)
    for loc, path in step_files(recipe):
        if not _readable_file(path):
            problems.append((loc, f"'{path}' is not a readable file (cwd={Path.cwd()})"))
    if problems:
        raise RecipeError(problems)
    return resolved


def step_files(recipe: Recipe) -> list[tuple[tuple, str]]:
    """``(YAML location, path)`` of every local file a step reads besides its documents: a step's parameters model
    names them in ``input_files()`` (eval sets, term lists). They decide rows as much as the sources do, so they are
    checked and fingerprinted with them, in this one place."""
    found = []
    for i, call in enumerate(recipe.steps):
        spec = get_step(call.name)
        model = spec.params_model if spec is not None else None
        if model is None or not hasattr(model, "input_files"):
            continue
        found += [(("steps", i, call.name), str(p)) for p in model.model_validate(call.params).input_files()]
    return found


def _readable_file(path: str) -> bool:
    try:
        with storage.open_file(path, "rb") as f:
            f.read(1)
    except (OSError, ValueError):
        return False
    return not Path(path).is_dir()


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


def make_readers(
    recipe: Recipe,
    resolved: list[ResolvedSource],
    progress_dir: str | None = None,
    fingerprints: list[dict] | None = None,
) -> list:
    """One reader per source, over what ``resolve_inputs`` found. ``fingerprints`` (``fingerprint_inputs``) key the
    `datasets` cache of each ``hf:`` source: `datasets` keys its own on path, size and modification time, so a file
    edited in place with both kept would be served from the old cache."""
    readers = []
    ordered = any(call.name == "dedup" for call in recipe.steps)  # its survivors follow the recipe's source order
    for i, (source, entry) in enumerate(zip(recipe.sources, resolved)):
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
            spec = dict(entry.spec)
            mine = [e for e in fingerprints or [] if e.get("source") == common["source_name"]]
            if mine:
                key = hashlib.sha256(json.dumps(mine, sort_keys=True).encode()).hexdigest()[:16]
                spec["cache_dir"] = str(hf_cache_root() / key)
            readers.append(HFReader(spec=spec, **common))
        else:
            readers.append(
                FileReader(
                    files=list(entry.files),
                    base_dir=_glob_root(source, entry.files),
                    fmt=source.format,
                    txt_unit=source.txt_unit,
                    **common,
                )
            )
    return readers


def fingerprint_file(source: str, path: str) -> dict:
    """Size, mtime (a remote file: its version, e.g. the ETag) and a hash of the first MiB of one input file."""
    with storage.open_file(path, "rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()
    return {"source": source, "path": path, **storage.file_info(path), "head_sha256": head}


def fingerprint_inputs(recipe: Recipe, resolved: list[ResolvedSource]) -> list[dict]:
    """Every file a source reads (``fingerprint_file``); an `hf:` source adds one entry with its spec, and the
    commit its Hub dataset is pinned to, or why its content cannot be fingerprinted (``unfingerprinted``)."""
    out = []
    for i, (source, entry) in enumerate(zip(recipe.sources, resolved)):
        name = source_name(source, i)
        if isinstance(source, HFSource):
            spec = {"source": name, "hf": source.hf.model_dump()}
            if entry.revision:
                spec["revision"] = entry.revision
            if entry.unfingerprinted:
                spec["unfingerprinted"] = entry.unfingerprinted
            out.append(spec)
        out += [fingerprint_file(name, path) for path in entry.files]
    for (_, index, step), path in step_files(recipe):  # read by a step, not a source: no documents, no progress
        out.append({**fingerprint_file(f"steps[{index}].{step}", path), "read_by": "step"})
    return out


def input_bytes(inputs: list[dict]) -> int | None:
    """Total size of the file inputs, for the progress bar (None when a source has no known size)."""
    sources = [entry for entry in inputs if entry.get("read_by") != "step"]
    if any("hf" in entry for entry in sources):
        return None
    return sum(entry["bytes"] for entry in sources)


def unfingerprinted_inputs(before: list[dict], now: list[dict]) -> list[tuple[str, str]]:
    """``(source, why)`` for every source whose content was not fingerprinted in either record: a resume over it
    cannot tell whether it changed."""
    found = {}
    for entry in [*now, *before]:
        if entry.get("unfingerprinted"):
            found.setdefault(entry["source"], entry["unfingerprinted"])
    return sorted(found.items())


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
        what = [k for k in ("bytes", "head_sha256", "mtime_ns", "version", "hf", "revision") if a.get(k) != b.get(k)]
        if what:
            label = {
                "bytes": "size",
                "head_sha256": "content",
                "mtime_ns": "modification time",
                "version": "version",
                "hf": "spec",
                "revision": "Hub revision",
            }
            changes.append(f"{key[1]} changed ({', '.join(label[w] for w in what)})")
    return sorted(changes)
