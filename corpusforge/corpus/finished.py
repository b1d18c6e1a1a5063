"""A finished build, opened from its folder or URL — the one place that says whether something is one, with one set of
errors for every command that reads a build (inspect, report, publish, the trainer)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from corpusforge import storage
from corpusforge.corpus.layout import DATASET_INFO, MANIFEST, STATE, WORK_DIR
from corpusforge.errors import OutputError


class CorpusError(OutputError):
    """Not a finished corpusforge build: what is missing, and what to do about it."""


@dataclass
class Corpus:
    """A finished build: where it is (a folder or an fsspec URL), its manifest, and the shards its state.json names."""

    location: Path | str
    manifest: dict
    shards: list[str]  # file names, as state.json lists them

    @classmethod
    def open(cls, location: str | Path) -> Corpus:
        """Open the build at ``location``, or raise a CorpusError naming what is missing."""
        remote = storage.is_url(location)
        where = str(location).rstrip("/") if remote else Path(location)
        if not remote:
            if not where.exists():
                raise CorpusError(f"{where} does not exist: pass the output folder of a `corpusforge run`")
            if not where.is_dir():
                raise CorpusError(f"{where} is not a folder: pass the output folder of a `corpusforge run`")
        manifest = _read_json(where, MANIFEST)
        if manifest is None:
            if (where / WORK_DIR).is_dir() if isinstance(where, Path) else _exists(where, f"{WORK_DIR}/plan.json"):
                raise CorpusError(
                    f"{where} is an unfinished build: {MANIFEST} is missing (it is written when every task has "
                    "finished); rerun the same `corpusforge run` command to resume it"
                )
            raise CorpusError(f"{where} is not a corpusforge output: {MANIFEST} is missing")
        absent = [key for key in ("recipe", "steps", "shards", "rows") if key not in manifest]
        if absent:
            raise CorpusError(f"{where}/{MANIFEST} lacks {', '.join(absent)}: not a manifest written by corpusforge")
        state = _read_json(where, STATE)
        missing = [name for name in (STATE, DATASET_INFO) if not _exists(where, name)]
        if state is None or missing:
            raise CorpusError(
                f"{where} is not a finished corpusforge build (missing {', '.join(missing) or STATE}); run it to the "
                "end first"
            )
        shards = [entry["filename"] for entry in state.get("_data_files", [])]
        for listing, names in ((MANIFEST, [s["file"] for s in manifest["shards"]]), (STATE, shards)):
            gone = [name for name in names if not _exists(where, name)]
            if gone:
                raise CorpusError(
                    f"{where} is incomplete: shard(s) {', '.join(gone[:5])} listed in {listing} are missing; rerun "
                    "the build (add --overwrite if its recipe changed)"
                )
        return cls(where, manifest, shards)

    def path(self, name: str) -> Path | str:
        """A file of the build (a shard, the manifest), as a path or a URL."""
        return f"{self.location}/{name}" if isinstance(self.location, str) else self.location / name


def _exists(where: Path | str, name: str) -> bool:
    if isinstance(where, Path):
        return (where / name).is_file()
    fs, root = storage.url_fs(f"{where}/{name}")
    return fs.isfile(root)


def _read_json(where: Path | str, name: str) -> dict | None:
    """The JSON file ``name`` of the build (None when it is not there)."""
    try:
        with storage.open_file(where / name if isinstance(where, Path) else f"{where}/{name}", "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    try:
        return json.loads(data)
    except ValueError as err:
        raise CorpusError(f"{where}/{name} is not valid JSON ({err}); rerun the build to rewrite it") from None
