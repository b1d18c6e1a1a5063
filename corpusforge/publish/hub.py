"""Prepare the folder that gets uploaded, check it loads, and push it in one commit (or a pull request)."""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import time
from pathlib import Path

from corpusforge.corpus.finished import Corpus
from corpusforge.errors import CorpusforgeError
from corpusforge.publish.card import card_text
from corpusforge.publish.parquet import write_parquet
from corpusforge.publish.scrub import scrub_manifest

log = logging.getLogger("corpusforge.publish")


REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


class PublishError(CorpusforgeError):
    """Publishing cannot start: no token, a malformed repo id (a folder that is not a finished build: CorpusError)."""


def check_repo_id(repo_id: str) -> str:
    if not REPO_ID.match(repo_id or "") or ".." in repo_id or repo_id.endswith((".", "-")):
        raise PublishError(
            f"--repo-id {repo_id!r} is not a Hub repo id: expected 'namespace/name' (letters, digits, '.', '_', '-'), "
            "e.g. 'my-org/inscp-zh-tw'"
        )
    return repo_id


def load_build(out: Path) -> dict:
    """The manifest of a finished build, or a CorpusError saying what is missing."""
    return Corpus.open(Path(out)).manifest


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
