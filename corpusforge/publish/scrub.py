"""What is published says nothing about the publisher's machine: absolute paths lose their folders, credentials
(``corpusforge.redact``: keys, tokens, URL userinfo and secret query parameters) are removed, host names are
replaced, cluster settings dropped; a source's paths become relative to its root."""

from __future__ import annotations

import copy
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.compute as pc

from corpusforge.llm.config import is_loopback
from corpusforge.redact import map_strings, redact

# An absolute path inside a string (POSIX, `~/…`, Windows): its folders are dropped, its last part kept. Not
# preceded by a word character, `.`, `:` or `/`, so URLs (`https://host/a/b`) and `and/or` are left alone.
_EMBEDDED_PATH = re.compile(r"(?<![\w.:/~-])~?/(?:[^\s/'\"`]+/)+([^\s/'\"`]*)")
_WINDOWS_PATH = re.compile(r"(?<![\w])[A-Za-z]:\\(?:[^\s\\'\"`]+\\)+([^\s\\'\"`]*)")
_GLOB_CHARS = re.compile(r"[*?\[]")
EXECUTOR_KEPT = ("type", "tasks", "workers")  # the rest (partition, venv, env_command, address…) is the cluster's


def _host_names() -> list[str]:
    name = socket.gethostname()
    names = {name, name.split(".")[0]} - {"", "localhost"}
    return sorted((n for n in names if len(n) >= 2), key=len, reverse=True)  # one letter: too common a word


def scrub_text(text: str, secrets=()) -> str:
    """``text`` without absolute paths (each keeps its last part), credentials (``redact``: the ``secrets`` and
    anything that looks like one), the home folder or the host name."""
    text = redact(text, secrets)
    home = os.path.expanduser("~")
    if len(home) > 1:
        text = text.replace(home, "~")
    text = _EMBEDDED_PATH.sub(lambda m: m.group(1), text)
    text = _WINDOWS_PATH.sub(lambda m: m.group(1), text)
    for name in _host_names():
        text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", "<host>", text)
    return text


def _scrub_values(value, secrets):
    return map_strings(value, lambda text: scrub_text(text, secrets))


def _scrub_glob(pattern: str) -> str:
    """An absolute glob keeps its pattern part (`/data/en/**/*.jsonl` → `**/*.jsonl`), a file path its name."""
    if pattern.startswith("builtin:") or not (pattern.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", pattern)):
        return pattern
    parts = re.split(r"[\\/]", pattern)
    first = next((i for i, part in enumerate(parts) if _GLOB_CHARS.search(part)), len(parts) - 1)
    return "/".join(parts[first:])


def _scrub_url(url: str) -> str:
    """An endpoint keeps its scheme and path; its host is kept only when it is loopback (not a machine)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "<endpoint>"
    netloc = parts.netloc.rsplit("@", 1)[-1] if is_loopback(host) else "<endpoint>"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _relative_inputs(inputs: list[dict]) -> list[dict]:
    """Input fingerprints with each file's path relative to its source's common folder (a lone file: its name),
    and without modification times (a local resume check)."""
    roots = {}
    for entry in inputs:
        if "path" in entry:
            roots.setdefault(entry["source"], []).append(os.path.dirname(entry["path"]))
    common = {}
    for source, dirs in roots.items():
        try:
            common[source] = os.path.commonpath(dirs) or "."
        except ValueError:  # absolute and relative paths mixed
            common[source] = None
    out = []
    for entry in inputs:
        entry = {k: v for k, v in entry.items() if k != "mtime_ns"}
        if "path" in entry:
            root = common[entry["source"]]
            entry["path"] = os.path.relpath(entry["path"], root) if root else os.path.basename(entry["path"])
        out.append(entry)
    return out


def scrub_manifest(manifest: dict) -> dict:
    """A copy of the manifest fit to publish: nothing that describes the publisher's machine. Input paths become
    relative to their source's folder, the output path its folder name, absolute globs their pattern, model and
    tokenizer folders their names, the endpoint's host `<endpoint>` (loopback hosts are kept) and its credentials;
    the Python executable and executor settings other than type/tasks/workers are dropped; any other string loses
    absolute paths, credentials (the KD API key too, read from the variable the recipe names), the home folder and
    the host name."""
    public = copy.deepcopy(manifest)
    public.pop("python_executable", None)
    recipe = public.get("recipe") or {}
    if isinstance(recipe.get("output"), dict) and recipe["output"].get("path"):
        recipe["output"]["path"] = Path(recipe["output"]["path"]).name
    if isinstance(recipe.get("executor"), dict):
        recipe["executor"] = {k: v for k, v in recipe["executor"].items() if k in EXECUTOR_KEPT}
    for source in recipe.get("sources") or []:
        glob = source.get("glob")
        if isinstance(glob, str):
            source["glob"] = _scrub_glob(glob)
        elif isinstance(glob, list):
            source["glob"] = [_scrub_glob(g) for g in glob]
    backend = (recipe.get("generate") or {}).get("backend") or {}
    if backend.get("base_url"):
        backend["base_url"] = _scrub_url(backend["base_url"])
    key = os.environ.get(backend["api_key_env"]) if isinstance(backend.get("api_key_env"), str) else None
    if "inputs" in public:
        public["inputs"] = _relative_inputs(public["inputs"])
    return _scrub_values(public, (key,))


def scrub_column(column: pa.ChunkedArray | pa.Array) -> pa.Array | pa.ChunkedArray:
    """A string column with each distinct value scrubbed (a KD `model` column holds the model as given)."""
    values = pc.unique(column)
    scrubbed = [None if v is None else scrub_text(v) for v in values.to_pylist()]
    if scrubbed == values.to_pylist():
        return column
    return pc.take(pa.array(scrubbed, type=column.type), pc.index_in(column, value_set=values))
