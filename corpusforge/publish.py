"""Publish a finished build to the Hugging Face Hub: Parquet files under `data/`, a dataset card, one commit.

    corpusforge publish out/inscp-zh-tw --repo-id org/inscp-zh-tw [--private] [--revision REV] [--dry-run DIR]

`--dry-run DIR` writes the exact folder that would be uploaded and loads it back with `datasets.load_dataset`.
What is uploaded says nothing about the publisher's machine: the card and the manifest copy are made from
``scrub_manifest(manifest)`` (no absolute paths, no Python executable, no host names, no cluster settings) and
a KD `model` column that holds a local folder keeps only the folder's name. The local build is not changed.
The token comes from `HF_TOKEN` or the login cache (`hf auth login`); it is passed to `huggingface_hub` only and is
never written to a file or a log line.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from corpusforge.errors import CorpusforgeError

if TYPE_CHECKING:
    from huggingface_hub import DatasetCardData

log = logging.getLogger("corpusforge.publish")

PARQUET_TARGET_BYTES = 256 * 1024 * 1024  # uncompressed Arrow bytes per Parquet file (~100 MB compressed text)
ROW_GROUP_ROWS = 10_000
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
SIZE_CATEGORIES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
]


class PublishError(CorpusforgeError):
    """Publishing cannot start: no token, a malformed repo id, or a folder that is not a finished build."""


def check_repo_id(repo_id: str) -> str:
    if not REPO_ID.match(repo_id or "") or ".." in repo_id or repo_id.endswith((".", "-")):
        raise PublishError(
            f"--repo-id {repo_id!r} is not a Hub repo id: expected 'namespace/name' (letters, digits, '.', '_', '-'), "
            "e.g. 'my-org/inscp-zh-tw'"
        )
    return repo_id


def load_build(out: Path) -> dict:
    """The manifest of a finished build, or a PublishError saying what is missing."""
    out = Path(out)
    if not out.is_dir():
        raise PublishError(f"{out} is not a folder")
    missing = [name for name in ("manifest.json", "state.json", "dataset_info.json") if not (out / name).exists()]
    if missing:
        raise PublishError(
            f"{out} is not a finished corpusforge build (missing {', '.join(missing)}); run it to the end first"
        )
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for shard in manifest["shards"]:
        if not (out / shard["file"]).exists():
            raise PublishError(f"{out} is incomplete: shard {shard['file']} listed in manifest.json is missing")
    return manifest


# --------------------------------------------------------------------------------------------- scrubbing
# An absolute path inside a string (POSIX, `~/…`, Windows): its folders are dropped, its last part kept. Not
# preceded by a word character, `.`, `:` or `/`, so URLs (`https://host/a/b`) and `and/or` are left alone.
_EMBEDDED_PATH = re.compile(r"(?<![\w.:/~-])~?/(?:[^\s/'\"`]+/)+([^\s/'\"`]*)")
_WINDOWS_PATH = re.compile(r"(?<![\w])[A-Za-z]:\\(?:[^\s\\'\"`]+\\)+([^\s\\'\"`]*)")
_URL_USERINFO = re.compile(r"://[^/\s@]+@")
_GLOB_CHARS = re.compile(r"[*?\[]")
EXECUTOR_KEPT = ("type", "tasks", "workers")  # the rest (partition, venv, env_command, address…) is the cluster's


def _host_names() -> list[str]:
    name = socket.gethostname()
    names = {name, name.split(".")[0]} - {"", "localhost"}
    return sorted((n for n in names if len(n) >= 2), key=len, reverse=True)  # one letter: too common a word


def scrub_text(text: str) -> str:
    """``text`` without absolute paths (each keeps its last part), URL credentials, the home folder or the host
    name."""
    home = os.path.expanduser("~")
    if len(home) > 1:
        text = text.replace(home, "~")
    text = _EMBEDDED_PATH.sub(lambda m: m.group(1), text)
    text = _WINDOWS_PATH.sub(lambda m: m.group(1), text)
    text = _URL_USERINFO.sub("://", text)
    for name in _host_names():
        text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", "<host>", text)
    return text


def _scrub_values(value):
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: _scrub_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_values(v) for v in value]
    return value


def _scrub_glob(pattern: str) -> str:
    """An absolute glob keeps its pattern part (`/data/en/**/*.jsonl` → `**/*.jsonl`), a file path its name."""
    if pattern.startswith("builtin:") or not (pattern.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", pattern)):
        return pattern
    parts = re.split(r"[\\/]", pattern)
    first = next((i for i, part in enumerate(parts) if _GLOB_CHARS.search(part)), len(parts) - 1)
    return "/".join(parts[first:])


def _scrub_url(url: str) -> str:
    """An endpoint keeps its scheme and path; its host is kept only when it is loopback (not a machine)."""
    from corpusforge.kd.config import is_loopback

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
    tokenizer folders their names, the endpoint's host `<endpoint>` (loopback hosts are kept); the Python executable
    and executor settings other than type/tasks/workers are dropped; any other string loses absolute paths, the
    home folder and the host name."""
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
    if "inputs" in public:
        public["inputs"] = _relative_inputs(public["inputs"])
    return _scrub_values(public)


def _scrub_column(column: pa.ChunkedArray | pa.Array) -> pa.Array | pa.ChunkedArray:
    """A string column with each distinct value scrubbed (a KD `model` column holds the model as given)."""
    values = pc.unique(column)
    scrubbed = [None if v is None else scrub_text(v) for v in values.to_pylist()]
    if scrubbed == values.to_pylist():
        return column
    return pc.take(pa.array(scrubbed, type=column.type), pc.index_in(column, value_set=values))


def _arrow_batches(out: Path, manifest: dict):
    for shard in manifest["shards"]:
        with pa.memory_map(str(out / shard["file"])) as source:
            yield from pa.ipc.open_stream(source)


def write_parquet(out: Path, manifest: dict, data_dir: Path, target_bytes: int = PARQUET_TARGET_BYTES) -> list[Path]:
    """Rewrite the shards as `data/train-NNNNN-of-MMMMM.parquet`, each about ``target_bytes`` of Arrow data."""
    data_dir.mkdir(parents=True, exist_ok=True)
    schema = pa.ipc.open_stream(pa.memory_map(str(out / manifest["shards"][0]["file"]))).schema
    parts: list[Path] = []
    writer, written = None, 0
    for batch in _arrow_batches(out, manifest):
        if "model" in batch.schema.names and pa.types.is_string(batch.schema.field("model").type):
            i = batch.schema.get_field_index("model")
            batch = batch.set_column(i, batch.schema.field(i), _scrub_column(batch.column(i)))
        if writer is None or written >= target_bytes:
            if writer is not None:
                writer.close()
            parts.append(data_dir / f"part-{len(parts):05d}.parquet")
            writer = pq.ParquetWriter(parts[-1], schema, compression="zstd")
            written = 0
        writer.write_batch(batch, row_group_size=ROW_GROUP_ROWS)
        written += batch.nbytes
    if writer is None:  # an empty corpus still gets one (empty) file so the config resolves
        parts.append(data_dir / "part-00000.parquet")
        pq.write_table(schema.empty_table(), parts[-1])
    else:
        writer.close()
    final = []
    for i, part in enumerate(parts):
        target = data_dir / f"train-{i:05d}-of-{len(parts):05d}.parquet"
        part.rename(target)
        final.append(target)
    return final


def _bcp47(label: str) -> str:
    return label.replace("_", "-")


def _size_category(rows: int) -> str:
    return next((name for limit, name in SIZE_CATEGORIES if rows < limit), "n>1B")


def is_kd(manifest: dict) -> bool:
    """A KD dataset: finalize counts its rows per kind (`kd`); the recipe has a `generate` section."""
    return "kd" in manifest or bool(manifest["recipe"].get("generate"))


def card_metadata(manifest: dict, license: str) -> DatasetCardData:
    """The card's YAML metadata: license, languages (base codes; the script/region labels in ``language_details``),
    size category, tags and the `default` config over `data/train-*.parquet`."""
    from huggingface_hub import DatasetCardData

    output = manifest["languages"]["output"]
    languages = [lang for lang in output if lang not in ("unknown", "zh")]
    base = sorted({lang.split("_")[0] for lang in languages} | ({"zh"} if "zh" in output else set()))
    if is_kd(manifest):
        tags = ["corpusforge", "kd", "synthetic"]
    else:
        tags = ["corpusforge", "continual-pretraining"]
        tags += ["inscp"] if any("tag" in step for step in manifest["recipe"].get("steps", [])) else []
    # None fields are left out of the YAML by DatasetCardData.to_dict
    return DatasetCardData(
        license=license,
        task_categories=["text-generation"],
        size_categories=[_size_category(manifest["rows"])],
        pretty_name=manifest["recipe"]["name"],
        language=base or None,
        language_details=", ".join(_bcp47(lang) for lang in languages) or None,
        multilinguality=(["multilingual" if len(base) > 1 else "monolingual"] if base else None),
        tags=tags,
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}],
    )


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _task_label(task: dict) -> str:
    kind = task.get("kind", "?")
    if kind == "tcot":
        detail = task.get("language")
    elif kind == "translation":
        detail = f"{task.get('source_language')}↔{task.get('target_language')}"
    else:
        detail = task.get("language") and f"answers in {task['language']}"
    picks = [f"sources: {', '.join(task['sources'])}"] if task.get("sources") else []
    picks += [f"languages: {', '.join(task['languages'])}"] if task.get("languages") else []
    return f"`{kind}`" + (f" ({detail})" if detail else "") + (f" on {'; '.join(picks)}" if picks else "")


def _generation_section(manifest: dict) -> list[str]:
    gen = manifest["recipe"].get("generate") or {}
    kd = manifest.get("kd") or {}
    backend = (gen.get("backend") or {}).get("type", "unknown")
    tasks = [_task_label(t) for t in gen.get("tasks") or []]
    counts = [[k, f"{v:,}"] for k, v in kd.get("kinds", {}).items()]
    finishes = [[k, f"{v:,}"] for k, v in kd.get("finish_reasons", {}).items()]
    return [
        "## How it was generated",
        f"Self-generated by `{gen.get('model')}` (`{backend}` backend), tasks: {', '.join(tasks) or '—'}. "
        "Sampling parameters (each request has its own seed, derived from `seed`, the prompt and the sample):",
        "```json\n" + json.dumps(gen.get("sampling", {}), indent=2, ensure_ascii=False) + "\n```",
        "Each row has a `messages` list of `{role, content}` turns (`[user, assistant]`, a `system` turn first when "
        "the recipe set one), its task `kind`, the `source_id` of its prompt and the `finish_reason` of its calls.",
        "## Rows per kind",
        _table(["kind", "rows"], counts) if counts else "No rows.",
        "## Finish reasons",
        "`stop`: the model ended its answer; `length`: cut at `max_tokens`; `supplied`: taken from the data, nothing "
        "generated.",
        _table(["finish_reason", "rows"], finishes) if finishes else "No rows.",
    ]


def _tokenizer_note(manifest: dict) -> str:
    if is_kd(manifest):
        return (
            "`n_tokens` counts the tokens the model generated for the row (all of its calls), as the backend "
            "reported them; `supplied` rows have 0."
        )
    for step in manifest["recipe"].get("steps", []):
        if "tokens" in step:
            return f"Token counts (`n_tokens`) were made with the tokenizer `{step['tokens'].get('tokenizer')}`."
    return "This build has no token counts (`n_tokens` is empty): the recipe had no `tokens` step."


def card_text(manifest: dict, repo_id: str, license: str) -> str:
    """The dataset card, from a manifest that is already scrubbed (``scrub_manifest``)."""
    from huggingface_hub import DatasetCard

    meta = card_metadata(manifest, license)
    recipe = manifest["recipe"]
    funnel = _table(
        ["step", "in", "out", "dropped (reason: count)"],
        [
            [
                s["step"],
                f"{s['in']:,}",
                f"{s['out']:,}",
                ", ".join(f"{k}: {v:,}" for k, v in s["dropped"].items()) or "—",
            ]
            for s in manifest["steps"]
        ],
    )
    langs = _table(["language", "rows"], [[k, f"{v:,}"] for k, v in manifest["languages"]["output"].items()])
    body = [
        f"# {recipe['name']}",
        recipe.get("description") or "",
        f"{manifest['rows']:,} rows built by [corpusforge](https://pypi.org/project/corpusforge/) "
        f"{manifest.get('corpusforge_version', '')} on {manifest.get('created_at', '')}.",
    ]
    if is_kd(manifest):
        body += _generation_section(manifest)
    else:
        body += [
            "Each row's `text` is one document; InsCP-tagged documents already carry the chat template "
            "(and BOS): tokenize them with `add_special_tokens=False`."
        ]
    body += [
        "## Load it",
        f'```python\nfrom datasets import load_dataset\n\nds = load_dataset("{repo_id}", split="train")\n```',
        "## Funnel",
        funnel,
        *(
            [
                "## Languages",
                "Language of the rows as identified by the `language` step (`zh_Hant` / `zh_Hans` split by script).",
                langs,
            ]
            if manifest["languages"]["output"]
            else []
        ),
        "## Tokens",
        _tokenizer_note(manifest),
        "## Recipe (resolved)",
        "```yaml\n" + yaml.safe_dump(recipe, allow_unicode=True, sort_keys=False).rstrip() + "\n```",
        "## Versions",
        _table(["package", "version"], [[k, v] for k, v in manifest.get("versions", {}).items()]),
    ]
    text = "\n\n".join(part for part in body if part) + "\n"
    return str(DatasetCard(f"---\n{meta.to_yaml()}\n---\n\n{text}"))


def prepare_folder(out: Path, dest: Path, repo_id: str, license: str = "unknown") -> Path:
    """Write the folder that gets uploaded: README.md (card), data/*.parquet, corpusforge_manifest.json."""
    check_repo_id(repo_id)
    manifest = load_build(out)
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise PublishError(f"{dest} is not empty; choose an empty or new folder for --dry-run")
    dest.mkdir(parents=True, exist_ok=True)
    write_parquet(Path(out), manifest, dest / "data")
    public = scrub_manifest(manifest)  # the local manifest.json stays as it is
    (dest / "README.md").write_text(card_text(public, repo_id, license), encoding="utf-8")
    (dest / "corpusforge_manifest.json").write_text(json.dumps(public, indent=2, ensure_ascii=False), encoding="utf-8")
    return dest


def verify_folder(folder: Path, out: Path) -> int:
    """Load the prepared folder with `datasets.load_dataset` and check it holds the build's rows."""
    import datasets

    # A private cache: datasets keys its cache on the folder name and the card's data_files patterns, so two
    # dry-run folders with the same name would otherwise read each other's cached rows.
    with tempfile.TemporaryDirectory(prefix="corpusforge-verify-") as cache:
        rows = len(datasets.load_dataset(str(folder), split="train", cache_dir=cache))
    expected = load_build(out)["rows"]
    if rows != expected:
        raise PublishError(f"{folder} loads {rows} rows, the build has {expected}")
    return rows


def resolve_token(token: str | None = None) -> str:
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        raise PublishError("no Hugging Face token: set HF_TOKEN, or run `hf auth login`, then publish again")
    return token


DEFAULT_COMMIT_MESSAGE = "Upload dataset built with corpusforge"


def push(
    folder: Path,
    repo_id: str,
    token: str,
    private: bool = False,
    revision: str | None = None,
    retries: int = 4,
    commit_message: str | None = None,
    create_pr: bool = False,
) -> str:
    """Create the repo if needed and upload ``folder`` in one commit (or a pull request with it); returns the
    commit URL, or the pull request's."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if revision:
        api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
    for attempt in range(retries):
        try:
            info = api.upload_folder(
                repo_id=repo_id,
                repo_type="dataset",
                folder_path=str(folder),
                revision=revision,
                commit_message=commit_message or DEFAULT_COMMIT_MESSAGE,
                create_pr=create_pr,
            )
            return str((info.pr_url if create_pr else None) or info)
        except HfHubHTTPError as err:
            status = getattr(err.response, "status_code", None)
            if attempt == retries - 1 or (status is not None and status < 500 and status != 429):
                raise
            delay = 2**attempt
            log.warning("upload failed (HTTP %s); retrying in %ss (%d/%d)", status, delay, attempt + 1, retries)
            time.sleep(delay)
    raise AssertionError("unreachable")


def publish(
    out: str | Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    dry_run: str | Path | None = None,
    license: str = "unknown",
    token: str | None = None,
    commit_message: str | None = None,
    create_pr: bool = False,
) -> str:
    """Publish a finished build. With ``dry_run``, write and verify the folder only; returns its path or the commit
    URL (``create_pr``: the pull request's)."""
    check_repo_id(repo_id)
    if create_pr and revision:
        raise PublishError("a pull request opens against the default branch: drop --revision, or --create-pr")
    load_build(Path(out))
    if dry_run is not None:
        folder = prepare_folder(Path(out), Path(dry_run), repo_id, license)
        verify_folder(folder, Path(out))
        return str(folder)
    token = resolve_token(token)
    staging = Path(tempfile.mkdtemp(prefix="corpusforge-publish-"))
    try:
        prepare_folder(Path(out), staging / "repo", repo_id, license)
        return push(
            staging / "repo",
            repo_id,
            token,
            private=private,
            revision=revision,
            commit_message=commit_message,
            create_pr=create_pr,
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
