"""Builds whose output is an fsspec URL (``s3://bucket/corpora/zh-tw``, ``gs://…``, ``memory://…``).

The build itself runs in a POSIX folder, its *staging* folder: task shards, the lock, resume state and the work
folder need a file system with locks and atomic renames, which object stores do not have. Finalize then uploads
the corpus — the `datasets` layout, the report and the plan — so that ``datasets.load_from_disk(URL)`` opens it.

The same rules as for a local folder hold at the URL: a prefix holding anything corpusforge did not write is
refused before the build starts; another build there is replaced only with ``--overwrite``, which removes only
what that build uploaded. ``manifest.json`` is uploaded last and removed first, so a prefix with a manifest holds
a complete corpus. Two machines building into one URL at once are not excluded (the lock is the staging folder's).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from fnmatch import fnmatch
from pathlib import Path

from corpusforge import storage
from corpusforge.build.output import OWNED, PLAN
from corpusforge.errors import OutputError
from corpusforge.shards.writer import WORK_DIR

log = logging.getLogger("corpusforge.build")

MANIFEST = "manifest.json"
BUCKET_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss", "r2"}


def default_staging(url: str) -> Path:
    """``$CORPUSFORGE_CACHE`` (else ``$XDG_CACHE_HOME/corpusforge``, else ``~/.cache/corpusforge``)/builds/<hash>."""
    cache = os.environ.get("CORPUSFORGE_CACHE")
    if not cache:
        cache = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "corpusforge")
    return Path(cache).expanduser() / "builds" / hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]


def build_folder(output: str | Path) -> Path:
    """The folder a build runs in, for commands given its output (``status``, ``finalize``): a URL's default
    staging folder, or the path itself."""
    if not storage.is_url(output):
        return Path(output)
    staging = default_staging(str(output))
    if not (staging / WORK_DIR / PLAN).is_file():
        raise OutputError(
            f"{output}: no build for it in {staging} (a build with `output.staging` set runs there: pass that folder)"
        )
    return staging


def _fs(url: str):
    try:
        return storage.url_fs(url)
    except Exception as err:  # noqa: BLE001 - SourceError, or the store's own
        raise OutputError(f"output {url}: {err}") from None


def _entries(fs, root: str) -> list[str]:
    """Top-level names under ``root`` ([] when it does not exist)."""
    try:
        listed = fs.ls(root, detail=False)
    except FileNotFoundError:
        return []
    return sorted({storage.basename(name) for name in listed} - {""})


def remote_plan(url: str) -> dict | None:
    """The plan the build uploaded to ``url`` last (None: no corpusforge build there)."""
    fs, root = _fs(url)
    path = f"{root.rstrip('/')}/{WORK_DIR}/{PLAN}"
    try:
        with fs.open(path, "rb") as f:
            return json.loads(f.read())
    except (FileNotFoundError, ValueError):
        return None


def _check_bucket(fs, url: str, bucket: str) -> None:
    try:
        fs.ls(bucket, detail=False)  # not fs.exists: it says False for an endpoint it cannot reach, too
    except FileNotFoundError:
        raise OutputError(
            f"output {url}: bucket '{bucket}' does not exist (or these credentials cannot see it)"
        ) from None


def check_remote(url: str) -> dict | None:
    """Refuse a URL holding anything corpusforge did not upload; return the plan of the build there (None: empty).

    Reads only."""
    fs, root = _fs(url)
    try:
        if url.split("://", 1)[0] in BUCKET_STORES:  # a typo must not create a bucket
            _check_bucket(fs, url, root.strip("/").split("/", 1)[0])
        if fs.isfile(root):
            raise OutputError(f"output {url} is a file, not a folder; choose another --output")
        names = _entries(fs, root)
    except OutputError:
        raise
    except Exception as err:  # noqa: BLE001 - credentials, no such bucket, unreachable endpoint
        raise OutputError(f"output {url}: cannot list it ({type(err).__name__}: {err})") from None
    if not names:
        return None
    plan = remote_plan(url)
    owned = (plan or {}).get("owned") or OWNED
    foreign = [n for n in names if not any(fnmatch(n, pattern) for pattern in owned)]
    if plan is None or foreign:
        shown = ", ".join((foreign or names)[:5])
        raise OutputError(
            f"output {url} holds files corpusforge did not write ({shown}); nothing was changed. Choose another "
            "--output (an empty or new prefix); --overwrite never removes files it did not write"
        )
    return plan


def upload_id(plan: dict | None) -> str | None:
    """Which upload a build's plan at a URL belongs to: its recipe and when that run started."""
    return None if plan is None else f"{plan.get('recipe_fingerprint')}@{plan.get('started_at')}"


def check_unchanged(url: str, previous: dict | None, plan: dict, staging: Path) -> None:
    """Refuse to upload over a build that another run put at ``url`` after this one started (on another machine:
    each has its own staging folder, so the local lock cannot see it). This build's own earlier uploads, and what
    it was started with --overwrite to replace, pass."""
    from corpusforge.build.plan import resume_problems

    if previous is None or "replaces" not in plan or not resume_problems(previous, plan):
        return
    if upload_id(previous) == plan["replaces"]:
        return
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(previous.get("started_at") or 0))
    name = (previous.get("recipe") or {}).get("name")
    raise OutputError(
        f"output {url}: while this build ran, another build was uploaded there ('{name}', started {started}); "
        f"nothing there was changed. This corpus is finished in {staging}: rerun "
        "`corpusforge run` with --overwrite to replace that one, or give another --output"
    )


def upload(out: Path, plan: dict) -> None:
    """Put the finalized corpus in ``out`` at the plan's URL: shards and metadata, the report, the plan, then the
    manifest. Entries the previous build there uploaded and this one does not (shards of another task count) are
    removed. Refused when another build was uploaded there since this one started (``check_unchanged``)."""
    url = plan["remote"]
    fs, root = _fs(url)
    root = root.rstrip("/")
    previous = check_remote(url)
    check_unchanged(url, previous, plan, out)
    state = json.loads((out / "state.json").read_text(encoding="utf-8"))
    files = [entry["filename"] for entry in state["_data_files"]] + ["dataset_info.json", "state.json"]
    files += [name for name in ("report.html",) if (out / name).is_file()]
    if previous is not None and fs.exists(f"{root}/{MANIFEST}"):
        fs.rm_file(f"{root}/{MANIFEST}")  # until the new one is up, the prefix is not a finished corpus
    fs.makedirs(root, exist_ok=True)
    log.info("uploading %d files to %s", len(files) + 2, url)
    for name in files:
        fs.put_file(str(out / name), f"{root}/{name}")
    if (out / "report").is_dir():
        fs.put(str(out / "report"), f"{root}/report", recursive=True)
    fs.put_file(str(out / WORK_DIR / PLAN), f"{root}/{WORK_DIR}/{PLAN}")
    if previous is not None:
        keep = {*files, "report", WORK_DIR, MANIFEST}
        owned = previous.get("owned") or OWNED
        for name in _entries(fs, root):
            if name not in keep and any(fnmatch(name, pattern) for pattern in owned):
                fs.rm(f"{root}/{name}", recursive=True)
    fs.put_file(str(out / MANIFEST), f"{root}/{MANIFEST}")
