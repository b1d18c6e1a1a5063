"""Builds whose output is an fsspec URL (``s3://bucket/corpora/zh-tw``, ``gs://…``, ``memory://…``).

The build itself runs in a POSIX folder, its *staging* folder: task shards, the lock, resume state and the work
folder need a file system with locks and atomic renames, which object stores do not have. Finalize then uploads
the corpus — the `datasets` layout, the report and the plan — so that ``datasets.load_from_disk(URL)`` opens it.

The same rules as for a local folder hold at the URL, by record:
- Before it uploads anything, an upload writes its record, ``.corpusforge/uploads/<build>.json``, naming every file
  it will put there. A prefix holding a file that no record names is refused before the build starts, and only
  recorded files are ever removed.
- Publishing is a pointer flip. The shard names carry the build's id, so an upload never writes over the files of
  the build the URL serves; ``state.json`` (what ``load_from_disk`` follows) goes up after every file it names, and
  the previous build's files are removed only after it. A reader sees the old build whole or the new one whole at
  every moment; a killed upload is finished by a plain rerun.
Two machines building into one URL at once are not excluded (the lock is the staging folder's).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from corpusforge import storage
from corpusforge.corpus.layout import MANIFEST, PLAN, STATE, UPLOADS_DIR, WORK_DIR, default_staging
from corpusforge.corpus.ledger import Ledger
from corpusforge.errors import OutputError
from corpusforge.runner.plan import resume_problems

log = logging.getLogger("corpusforge.runner")

BUCKET_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss", "r2"}


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


def _files(fs, root: str) -> list[str]:
    """Every file under ``root``, relative to it ([] when it does not exist)."""
    try:
        found = fs.find(root)
    except FileNotFoundError:
        return []
    prefix = root.rstrip("/") + "/"
    return sorted(name[len(prefix) :] for name in found if name.startswith(prefix))


def _records(fs, root: str) -> dict[str, dict]:
    """The upload records at ``root``: record path → record."""
    records = {}
    for rel in _files(fs, f"{root}/{WORK_DIR}/{UPLOADS_DIR}"):
        path = f"{WORK_DIR}/{UPLOADS_DIR}/{rel}"
        try:
            with fs.open(f"{root}/{path}", "rb") as f:
                records[path] = json.loads(f.read())
        except (FileNotFoundError, ValueError):
            records[path] = {"files": []}  # a record cut short: its files are unaccounted for
    return records


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
    """Refuse a URL holding any file no upload record names; return the plan of the build there (None: empty).

    Reads only."""
    fs, root = _fs(url)
    root = root.rstrip("/")
    try:
        if url.split("://", 1)[0] in BUCKET_STORES:  # a typo must not create a bucket
            _check_bucket(fs, url, root.strip("/").split("/", 1)[0])
        if fs.isfile(root):
            raise OutputError(f"output {url} is a file, not a folder; choose another --output")
        names = _files(fs, root)
        records = _records(fs, root) if names else {}
    except OutputError:
        raise
    except Exception as err:  # noqa: BLE001 - credentials, no such bucket, unreachable endpoint
        raise OutputError(f"output {url}: cannot list it ({type(err).__name__}: {err})") from None
    if not names:
        return None
    owned = set(records).union(*(record.get("files", []) for record in records.values()))
    foreign = [name for name in names if name not in owned]
    plan = remote_plan(url)
    if not records and plan is not None:
        raise OutputError(
            f"output {url} holds a build uploaded by an older corpusforge, which kept no record of the files it "
            "uploaded; nothing was changed. Remove it yourself if it is yours to remove, or choose another --output"
        )
    if foreign:
        raise OutputError(
            f"output {url} holds files corpusforge did not write ({', '.join(foreign[:5])}); nothing was changed. "
            "Choose another --output (an empty or new prefix); --overwrite never removes files it did not write"
        )
    return plan


def upload_id(plan: dict | None) -> str | None:
    """Which upload a build's plan at a URL belongs to: its recipe and when that run started."""
    return None if plan is None else f"{plan.get('recipe_fingerprint')}@{plan.get('started_at')}"


def check_unchanged(url: str, previous: dict | None, plan: dict, staging: Path) -> None:
    """Refuse to upload over a build that another run put at ``url`` after this one started (on another machine:
    each has its own staging folder, so the local lock cannot see it). This build's own earlier uploads, and what
    it was started with --overwrite to replace, pass."""
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
    """Put the finalized corpus in ``out`` at the plan's URL, as a pointer flip: the upload record, the shards,
    dataset_info.json and the report, the manifest, then state.json, then the plan; then the files of the builds it
    replaces. Refused when another build was uploaded there since this one started (``check_unchanged``)."""
    url = plan["remote"]
    fs, root = _fs(url)
    root = root.rstrip("/")
    previous = check_remote(url)
    check_unchanged(url, previous, plan, out)
    corpus = sorted(
        rel
        for rel in Ledger(out).paths()
        if not rel.startswith(f"{WORK_DIR}/") and rel not in (MANIFEST, STATE) and (out / rel).is_file()
    )
    last = [MANIFEST, STATE, f"{WORK_DIR}/{PLAN}"]
    record_path = f"{WORK_DIR}/{UPLOADS_DIR}/{plan['build_id']}.json"
    others = {path: rec for path, rec in _records(fs, root).items() if path != record_path}
    fs.makedirs(root, exist_ok=True)
    with fs.open(f"{root}/{record_path}", "wb") as f:  # first: from now on these names are this build's
        f.write(json.dumps({"build_id": plan["build_id"], "files": corpus + last}, indent=1).encode())
    log.info("uploading %d files to %s", len(corpus) + len(last), url)
    for rel in corpus + last:
        fs.put_file(str(out / rel), f"{root}/{rel}")
    keep = set(corpus + last) | {record_path}
    for path, rec in others.items():  # the builds this one replaces: nothing points at their files any more
        for rel in rec.get("files", []):
            if rel not in keep and fs.exists(f"{root}/{rel}"):
                fs.rm_file(f"{root}/{rel}")
        fs.rm_file(f"{root}/{path}")
