"""Publish a finished build to the Hugging Face Hub: Parquet files under `data/`, a dataset card, one commit.

    corpusforge publish out/inscp-zh-tw --repo-id org/inscp-zh-tw [--private] [--revision REV] [--dry-run DIR]

`--dry-run DIR` writes the exact folder that would be uploaded and loads it back with `datasets.load_dataset`.
What is uploaded says nothing about the publisher's machine: the card and the manifest copy are made from
``scrub_manifest(manifest)`` (no absolute paths, no Python executable, no host names, no cluster settings) and
a KD `model` column that holds a local folder keeps only the folder's name. The local build is not changed.
The token comes from `HF_TOKEN` or the login cache (`hf auth login`); it is passed to `huggingface_hub` only and is
never written to a file or a log line.

Four parts: `scrub` (what leaves the machine), `parquet` (shards → `data/*.parquet`), `card` (README.md) and `hub`
(prepare, verify, push: the `publish` entry point).
"""

from corpusforge.publish.card import card_metadata, card_text, is_kd
from corpusforge.publish.hub import (
    DEFAULT_COMMIT_MESSAGE,
    PublishError,
    check_repo_id,
    load_build,
    prepare_folder,
    publish,
    push,
    resolve_token,
    verify_folder,
)
from corpusforge.publish.parquet import PARQUET_TARGET_BYTES, write_parquet
from corpusforge.publish.scrub import scrub_manifest, scrub_text

__all__ = [
    "DEFAULT_COMMIT_MESSAGE",
    "PARQUET_TARGET_BYTES",
    "PublishError",
    "card_metadata",
    "card_text",
    "check_repo_id",
    "is_kd",
    "load_build",
    "prepare_folder",
    "publish",
    "push",
    "resolve_token",
    "scrub_manifest",
    "scrub_text",
    "verify_folder",
    "write_parquet",
]
