"""Language-ID throughput, whole runs on one core: `corpusforge run` vs datatrove's LanguageFilter vs raw fastText.

Three contenders, each a fresh process pinned to one core (``taskset -c 0``), timed from start to exit, on one
jsonl corpus built here:

  corpusforge   ``corpusforge run recipe.yaml --no-report`` (one task, one worker): the jsonl reader, the `language`
                step, the Arrow shard writer, the manifest. ``--report`` times it with report.html as well.
  datatrove     a datatrove pipeline, run by ``LocalPipelineExecutor(tasks=1, workers=1)``:
                JsonlReader → LanguageFilter → ParquetWriter, in its own venv, installed the way its users install it:
                ``pip install "datatrove[io,processing]"`` (fastText comes as fasttext-numpy2-wheel). The model is lid.176.ftz from disk
                (its ``MODEL_URL`` pointed at the file; the machine has no internet); nothing else is changed.
  raw fastText  a loop a user would write with the official fastText wheel (the peer venv's): read the jsonl, predict
                the top label of each document (newlines as spaces), write the kept documents with it as jsonl.

Modes: ``all`` labels every document and keeps all (corpusforge ``language: {min_score: 0}``; datatrove
``languages=None, language_threshold=0``); ``zh_Hant`` and ``th`` keep one language with each tool's default
threshold (corpusforge ``keep: [zh_Hant]``, which keeps ``zh`` written identically in both scripts too; datatrove
and raw fastText keep ``zh`` or ``th``: lid.176 cannot tell the Chinese scripts apart, so they do less).

The corpus is real text, none written for this benchmark: documents of 20–3,000 characters (log-uniform length,
fixed seed), each a run of consecutive messages of one catalog or turns of one conversation — Django's and Sphinx's
translation catalogs (every locale they ship), chatterbot-corpus conversations (every language), paragraphs of the
standard library's docstrings, and, where the machine has them, the gettext catalogs in /usr/share/locale.
Half the documents come from Chinese, Japanese and Korean catalogs (``--cjk-share``; 0 for a corpus the script
settles far less of).

Run (from the repository root; the peer venv once: ``python -m venv .venv-datatrove &&
.venv-datatrove/bin/pip install "datatrove[io,processing]"`` — `io` brings the JsonlReader's orjson and the
ParquetWriter's pyarrow, `processing` fastText as fasttext-numpy2-wheel):

    .venv/bin/python benchmarks/bench_lid.py                 # 40,000 documents, the three modes, 2 rounds
    .venv/bin/python benchmarks/bench_lid.py --docs 5000 --repeat 1 --modes all
"""

from __future__ import annotations

import argparse
import contextlib
import gettext
import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CJK_LOCALES = ("zh", "ja", "ko", "yue")
CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")

DATATROVE_SCRIPT = """
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.filters import LanguageFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import ParquetWriter
from datatrove.utils.lid import FT176LID

FT176LID.MODEL_URL = sys.argv[1]  # lid.176.ftz on disk: this machine has no internet
corpus, out, mode = sys.argv[2], sys.argv[3], sys.argv[4]
lid = LanguageFilter(languages=None, language_threshold=0.0) if mode == "all" else LanguageFilter(languages=[mode])
LocalPipelineExecutor(
    pipeline=[JsonlReader(corpus), lid, ParquetWriter(out + "/data")], tasks=1, workers=1, logging_dir=out + "/logs"
).run()
"""

RAW_SCRIPT = """
import json, sys
import fasttext

model = fasttext.load_model(sys.argv[1])
corpus, out, mode = sys.argv[2], sys.argv[3], sys.argv[4]
with open(corpus, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as w:
    for line in f:
        doc = json.loads(line)
        labels, probs = model.predict(doc["text"].replace("\\n", " "), k=1)
        label = labels[0][9:]
        if mode == "all" or label == mode:
            doc["language"], doc["language_score"] = label, float(probs[0])
            w.write(json.dumps(doc, ensure_ascii=False) + "\\n")
"""


# -- the corpus -----------------------------------------------------------------------------------------------------
def catalog_messages(path: Path) -> list[str]:
    try:
        with path.open("rb") as f:
            catalog = gettext.GNUTranslations(f)._catalog
    except (OSError, UnicodeDecodeError, ValueError, IndexError):  # a few catalogs have malformed headers
        return []
    return [v.strip() for k, v in catalog.items() if k and isinstance(v, str) and v.strip() and v != k]


def units() -> dict[tuple[str, str], list[str]]:
    """(origin, locale) → messages in order: catalogs, conversations, docstring paragraphs."""
    import importlib.util

    import yaml

    found: dict[tuple[str, str], list[str]] = {}
    roots = [Path(importlib.util.find_spec(p).submodule_search_locations[0]) for p in ("django", "sphinx")]
    for root in roots:
        for mo in sorted(root.rglob("locale/*/LC_MESSAGES/*.mo")):
            found.setdefault((root.name, mo.parts[-3]), []).extend(catalog_messages(mo))
    system = Path("/usr/share/locale")
    for mo in sorted(system.glob("*/LC_MESSAGES/*.mo")) if system.is_dir() else []:
        if not mo.name.startswith("iso_"):
            found.setdefault(("gettext", mo.parts[-3]), []).extend(catalog_messages(mo))
    import chatterbot_corpus

    for folder in sorted((Path(chatterbot_corpus.__file__).parent / "data").iterdir()):
        for path in sorted(folder.glob("*.yml")):
            for conv in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("conversations") or []:
                turns = [t.strip() for t in conv if isinstance(t, str) and t.strip()]
                found.setdefault(("chatterbot", folder.name), []).extend(turns)
    sys.path.insert(0, str(REPO))  # the tests.support helpers (real text, JSONL)
    from tests.support import stdlib_paragraphs

    found[("python", "en")] = stdlib_paragraphs(40, 3000)
    return {key: msgs for key, msgs in found.items() if len(msgs) >= 50}  # a few catalogs hold one message


def cjk(locale: str) -> bool:
    return locale.split("_")[0].lower() in CJK_LOCALES or locale in ("traditionalchinese", "chinese", "japanese")


def build_corpus(n_docs: int, seed: int = 0, cjk_share: float = 0.5) -> list[dict]:
    """``n_docs`` documents ``{"id", "text", "origin"}``, ``cjk_share`` of them from CJK catalogs, the rest from the
    others (round-robin over the catalogs within each half)."""
    rng = random.Random(seed)
    groups = units()
    halves = [[k for k in groups if cjk(k[1])], [k for k in groups if not cjk(k[1])]]
    cursors = dict.fromkeys(groups, 0)
    docs = []
    taken = [0, 0]
    for i in range(n_docs):
        half = 0 if (i % 100) < cjk_share * 100 else 1
        keys = halves[half]
        key = keys[taken[half] % len(keys)]
        taken[half] += 1
        msgs = groups[key]
        target = math.exp(rng.uniform(math.log(20), math.log(3000)))
        parts, size = [], 0
        while size < target and len(parts) < len(msgs):
            parts.append(msgs[cursors[key] % len(msgs)])
            cursors[key] += 1
            size += len(parts[-1]) + 1
        docs.append({"id": f"d{i}", "text": "\n".join(parts)[:3000], "origin": key[0]})
    return docs


def write_corpus(docs: list[dict], path: Path) -> dict:
    with path.open("w", encoding="utf-8") as f:
        for doc in docs:
            f.write(json.dumps({"id": doc["id"], "text": doc["text"]}, ensure_ascii=False) + "\n")
    lengths = sorted(len(d["text"]) for d in docs)
    origins = [d["origin"] for d in docs]
    return {
        "docs": len(docs),
        "median_chars": lengths[len(lengths) // 2],
        "with_cjk": sum(bool(CJK_CHAR.search(d["text"])) for d in docs),
        "origins": {o: origins.count(o) for o in sorted(set(origins))},
    }


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {cpu}, Python {platform.python_version()}"


# -- the contenders -------------------------------------------------------------------------------------------------
def timed(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(["taskset", "-c", "0", *cmd], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall


def run_corpusforge(corpus: Path, work: Path, mode: str, report: bool) -> tuple[float, int]:
    import yaml

    out = work / f"cf-{mode}"
    shutil.rmtree(out, ignore_errors=True)  # a second run into the same folder would resume the finished build
    language = {"min_score": 0.0} if mode == "all" else {"keep": [mode]}
    recipe = {
        "name": f"bench-lid-{mode}",
        "sources": [{"name": "bench", "glob": str(corpus), "id_field": "id"}],
        "steps": [{"language": language}],
        "output": {"path": str(out)},
        "executor": {"tasks": 1, "workers": 1},
    }
    path = work / f"cf-{mode}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    cli = str(Path(sys.executable).parent / "corpusforge")
    wall = timed([cli, "run", str(path), *([] if report else ["--no-report"])], work)
    manifest = json.loads((out / "manifest.json").read_text())
    return wall, manifest["rows"]


def run_datatrove(python: str, model: str, corpus: Path, work: Path, mode: str) -> tuple[float, int]:
    out = work / f"dt-{mode}"
    shutil.rmtree(out, ignore_errors=True)
    script = work / "datatrove_lid.py"
    script.write_text(DATATROVE_SCRIPT)
    lang = {"zh_Hant": "zh"}.get(mode, mode)
    wall = timed([python, str(script), model, str(corpus), str(out), lang], work)
    import pyarrow.parquet as pq

    return wall, sum(pq.ParquetFile(p).metadata.num_rows for p in (out / "data").rglob("*.parquet"))


def run_raw(python: str, model: str, corpus: Path, work: Path, mode: str) -> tuple[float, int]:
    script, out = work / "raw_fasttext.py", work / f"raw-{mode}.jsonl"
    script.write_text(RAW_SCRIPT)
    lang = {"zh_Hant": "zh"}.get(mode, mode)
    wall = timed([python, str(script), model, str(corpus), str(out), lang], work)
    with out.open(encoding="utf-8") as f:
        return wall, sum(1 for _ in f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=40_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--modes", default="all,zh_Hant,th")
    ap.add_argument("--cjk-share", type=float, default=0.5, help="share of documents from CJK catalogs")
    ap.add_argument("--peer-venv", default=str(REPO / ".venv-datatrove"))
    ap.add_argument("--report", action="store_true", help="corpusforge also writes report.html (as by default)")
    args = ap.parse_args()
    peer = str(Path(args.peer_venv) / "bin" / "python")
    if not Path(peer).is_file():
        raise SystemExit(
            f"no peer venv at {args.peer_venv}: python -m venv {args.peer_venv} && "
            f'{args.peer_venv}/bin/pip install "datatrove[io,processing]"'
        )
    from corpusforge.lang.lid import default_lid_model

    model = default_lid_model()
    versions = subprocess.run(
        [
            peer,
            "-c",
            "import importlib.metadata as m; print(m.version('datatrove'), m.version('fasttext-numpy2-wheel'))",
        ],
        capture_output=True,
        text=True,
    ).stdout.split()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = work / "corpus.jsonl"
        facts = write_corpus(build_corpus(args.docs, cjk_share=args.cjk_share), corpus)
        print(f"corpus: {facts}")
        print(f"peer: datatrove {versions[0]}, fasttext-numpy2-wheel {versions[1]}; one core (taskset -c 0)")
        best: dict[tuple[str, str], tuple[float, int]] = {}
        for _ in range(args.repeat):
            for mode in args.modes.split(","):
                for name, run in (
                    ("corpusforge", lambda m: run_corpusforge(corpus, work, m, args.report)),
                    ("datatrove", lambda m: run_datatrove(peer, model, corpus, work, m)),
                    ("raw fastText", lambda m: run_raw(peer, model, corpus, work, m)),
                ):
                    wall, rows = run(mode)
                    if (mode, name) not in best or wall < best[(mode, name)][0]:
                        best[(mode, name)] = (wall, rows)
        print(f"\n{'mode':8s} {'contender':13s} {'kept':>7s} {'seconds':>8s} {'docs/s':>8s}  ratio (corpusforge / it)")
        for mode in args.modes.split(","):
            ours = best[(mode, "corpusforge")][0]
            for name in ("corpusforge", "datatrove", "raw fastText"):
                wall, rows = best[(mode, name)]
                ratio = "" if name == "corpusforge" else f"{wall / ours:.2f}x"
                print(f"{mode:8s} {name:13s} {rows:7,d} {wall:8.2f} {args.docs / wall:8,.0f}  {ratio}")
    print(f"\nbest of {args.repeat} rounds; machine: {machine()}")


if __name__ == "__main__":
    main()
