"""Scale-out and memory: docs/s with 1 vs 2 workers, and peak RSS of a build vs the same build on 10× the corpus.

    .venv/bin/python benchmarks/bench_scale.py [--copies 60] [--tasks 4] [--repeat 2]

The corpus is the bundled multilingual sample (2,251 real documents in 8 languages) written `--copies` times into
JSONL files (ids made unique), built by `corpusforge run` in a subprocess with a CP recipe without models to
download: normalize → language (fastText lid.176, label only) → length → Arrow shards. The task count is fixed.

- Throughput: docs/s from the manifest's build time (stages + finalize; the interpreter's start is excluded), best
  of `--repeat`, with `workers: 1` and `workers: 2`. Target: ≥ 1.8× with 2 workers. The CPU the process tree got
  (CPU seconds / wall seconds) is printed too: on a machine busy with other work, 2 workers cannot get 2 cores.
- Memory: the peak over the run of the summed RSS of the `corpusforge` process and all its descendants (fork
  server, workers), sampled every 20 ms, for the corpus and for 10× the corpus (2 workers). Target: ≤ 1.2×.
  Summed RSS counts pages shared between forked processes once per process, so it overstates the total; PSS
  (proportional set size) is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "corpusforge" / "data" / "multilingual-sample.jsonl"


def write_corpus(folder: Path, copies: int, files: int = 8) -> int:
    """``copies`` × the sample, spread over ``files`` JSONL files; returns the number of documents."""
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    folder.mkdir(parents=True, exist_ok=True)
    handles = [(folder / f"part-{i:03d}.jsonl").open("w", encoding="utf-8") for i in range(files)]
    n = 0
    for copy in range(copies):
        for row in rows:
            out = {"id": f"{row['id']}#{copy}", "text": row["text"]}
            handles[n % files].write(json.dumps(out, ensure_ascii=False) + "\n")
            n += 1
    for handle in handles:
        handle.close()
    return n


def write_recipe(path: Path, corpus: Path, out: Path, tasks: int, workers: int) -> None:
    recipe = {
        "name": "bench-scale",
        "sources": [{"name": "sample", "glob": str(corpus / "*.jsonl"), "id_field": "id"}],
        "steps": [{"normalize": {"form": "NFC"}}, {"language": {"label_only": True}}, {"length": {"min_chars": 4}}],
        "output": {"path": str(out)},
        "executor": {"tasks": tasks, "workers": workers},
    }
    path.write_text(json.dumps(recipe))


def tree_sample(root, cpu: dict[int, float], memory: bool = True) -> tuple[int, int]:
    """(summed RSS, summed PSS) in bytes of ``root`` and its descendants; records each one's CPU seconds in ``cpu``.
    ``memory=False`` reads CPU times only (cheap: no smaps)."""
    import psutil

    rss = pss = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    for proc in procs:
        try:
            info = proc.memory_full_info() if memory else None
            times = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if info is not None:
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        cpu[proc.pid] = times.user + times.system
    return rss, pss


def build(recipe: Path, out: Path, sample_memory: bool = True) -> dict:
    """Run `corpusforge run` on ``recipe`` into a fresh ``out``; wall seconds, build seconds, peak RSS and PSS.

    Throughput runs pass ``sample_memory=False``: reading every process's smaps every 20 ms costs a good part of a
    core, which a 2-worker build on a 2-core machine needs (with it, 2 workers measured ~1.0×)."""
    import psutil

    shutil.rmtree(out, ignore_errors=True)  # a finished build would only be finalized again
    cmd = [sys.executable, "-m", "corpusforge.cli", "run", str(recipe), "--no-report"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root = psutil.Process(proc.pid)
    peak_rss = peak_pss = 0
    cpu: dict[int, float] = {}  # CPU seconds per process of the tree, as last seen
    while proc.poll() is None:
        rss, pss = tree_sample(root, cpu, memory=sample_memory)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.02 if sample_memory else 0.2)
    wall = time.perf_counter() - started

    if proc.returncode != 0:
        raise SystemExit(f"corpusforge run failed:\n{proc.stderr.read().decode()}")
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "wall": wall,
        "build": manifest["seconds"],
        "rows": manifest["rows"],
        "rss": peak_rss,
        "pss": peak_pss,
        "cores": sum(cpu.values()) / wall,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=60, help="copies of the 2,251-document sample (default 60)")
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2, help="throughput runs per worker count (best is kept)")
    parser.add_argument("--only", choices=["throughput", "memory"], help="measure one of the two")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    small, large = work / "corpus-x1", work / "corpus-x10"
    docs = write_corpus(small, args.copies)
    mb = sum(p.stat().st_size for p in small.glob("*.jsonl")) / 1e6
    print(f"corpus: {docs:,} docs ({mb:.1f} MB JSONL); tasks={args.tasks}; in {work}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} before the runs (2 workers need 2 idle cores)")

    try:
        if args.only != "memory":
            throughput(work, small, docs, args)
        if args.only != "throughput":
            print(f"×10 corpus: {write_corpus(large, args.copies * 10):,} docs")
            memory(work, small, large, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def throughput(work: Path, small: Path, docs: int, args) -> None:
    results = {}
    for workers in (1, 2):
        recipe, out = work / f"w{workers}.json", work / f"out-w{workers}"
        write_recipe(recipe, small, out, args.tasks, workers)
        runs = [build(recipe, out, sample_memory=False) for _ in range(args.repeat)]
        results[workers] = min(runs, key=lambda r: r["build"])
        r = results[workers]
        print(
            f"workers={workers}: build {r['build']:.2f} s → {docs / r['build']:,.0f} docs/s "
            f"(end to end {r['wall']:.2f} s → {docs / r['wall']:,.0f} docs/s); rows {r['rows']:,}; "
            f"CPU used: {r['cores']:.2f} cores on average"
        )
    speedup = results[1]["build"] / results[2]["build"]
    wall_speedup = results[1]["wall"] / results[2]["wall"]
    print(f"speed-up with 2 workers: {speedup:.2f}× by build time, {wall_speedup:.2f}× end to end (target ≥ 1.8×)")


def memory(work: Path, small: Path, large: Path, args) -> None:
    memory = {}
    for name, corpus in (("×1", small), ("×10", large)):
        recipe, out = work / f"mem{name}.json", work / f"out-mem{name}"
        write_recipe(recipe, corpus, out, args.tasks, 2)
        memory[name] = build(recipe, out)
        m = memory[name]
        print(
            f"corpus {name}: peak RSS {m['rss'] / 2**20:,.0f} MiB (PSS {m['pss'] / 2**20:,.0f} MiB), "
            f"{m['rows']:,} rows in {m['build']:.1f} s"
        )
    rss_ratio = memory["×10"]["rss"] / memory["×1"]["rss"]
    pss_ratio = memory["×10"]["pss"] / memory["×1"]["pss"]
    print(f"peak RSS ×10 corpus / ×1 corpus: {rss_ratio:.2f}× (PSS {pss_ratio:.2f}×) (target ≤ 1.2×)")


if __name__ == "__main__":
    sys.exit(main())
