"""Training throughput: corpusforge's trainer vs TRL's SFTTrainer with packing, same tiny model, data and settings.

Both train the same freshly initialised Llama (built here, saved once, loaded by each contender) on the same plain
text documents for the same number of steps: documents best-fit into rows of at most --seq-len tokens, --batch rows
per step, no padding, no attention across documents (TRL: packing=True, whose default best-fit-decreasing strategy
turns padding_free on), fp32, SDPA, on CPU in one process.

Throughput = real tokens trained / CPU seconds this process spent inside `Trainer.train`, with ONE torch thread
(--threads): on a shared machine the wall clock of a run moves several-fold with the other tenants' load, and with
several threads so does the CPU time (OpenMP workers spin while they wait for a core). The wall tokens/s of the
same run is printed beside it. Contenders rotate; the best of --repeats is kept.

Also: the real-token share of our packing against padding each batch to its longest document (our trainer with
`packing: pad`, same data and batch size), and an ablation — our trainer laying the batch out as ONE flattened
sequence, as TRL does (ours does so only for flash-attention; with SDPA it keeps rows, so attention costs B*L^2
instead of (B*L)^2).

    .venv/bin/python benchmarks/bench_trainer.py            # needs trl: .venv/bin/pip install trl==1.16.0
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import yaml

CPU_SECONDS: list[float] = []


def corpus(n_docs: int, seed: int = 0) -> list[str]:
    """Documents of 1-24 lines of real chatterbot-corpus text (English, Spanish, Portuguese, Thai...): lengths
    spread like a real corpus, so padding to the longest document has something to waste."""
    import random

    import chatterbot_corpus

    root = Path(chatterbot_corpus.__file__).parent / "data"
    lines = []
    for folder in ("english", "spanish", "portuguese", "italian", "german", "thai", "indonesian"):
        for path in sorted((root / folder).glob("*.yml")):
            for convo in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("conversations") or []:
                lines += [t.strip() for t in convo if isinstance(t, str) and t.strip()]
    rng = random.Random(seed)
    return [" ".join(rng.choices(lines, k=rng.choice([1, 2, 3, 4, 6, 9, 14, 24]))) for _ in range(n_docs)]


def build_model(folder: Path, texts: list[str], vocab: int, hidden: int, layers: int) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bos, eos = "<|begin_of_text|>", "<|end_of_text|>"
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=vocab,
            special_tokens=[bos, eos],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    bpe.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, 0)])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=bos, eos_token=eos, pad_token=eos)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=hidden * 8 // 3,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 64,
        head_dim=64,
        max_position_embeddings=4096,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)


def run_ours(work: Path, args, packing: str, tag: str, one_sequence: bool = False) -> dict:
    import corpusforge_trainer.run as trainer_module
    from corpusforge_trainer.config import config_from_dict
    from corpusforge_trainer.packing import PackedCollator

    # Ablation: the batch as ONE flattened sequence, the layout TRL uses and ours uses for flash-attention; with
    # SDPA it costs (B*L)^2 attention instead of B*L^2.
    trainer_module.PackedCollator = (
        (lambda packing, pad, varlen=False: PackedCollator(packing, pad, varlen=True))
        if one_sequence
        else PackedCollator
    )
    train = trainer_module.train

    config = {
        "mode": "cp",
        "method": "full",
        "model": {"path": str(work / "model")},
        "data": {
            "sources": [{"path": str(work / "shard")}],
            "seq_len": args.seq_len,
            "packing": packing,
            "cache_dir": str(work / "cache"),
        },
        "optim": {"lr": 1e-4, "scheduler": "constant", "warmup": 0},
        "train": {
            "output_dir": str(work / f"ours-{tag}"),
            "max_steps": args.steps,
            "batch_size": args.batch,
            "precision": "fp32",
            "logging_steps": args.steps,
            "save_steps": 10 * args.steps,
            "trainer_args": {"disable_tqdm": True},
        },
    }
    stats = train(config_from_dict(config)).train_stats
    return {
        "tokens": stats["positions"],
        "real": stats["real_tokens"],
        "seconds": stats["train_runtime"],
        "share": stats["real_token_share"],
    }


def trl_sft_config(output_dir: str | Path, args, **extra):
    """TRL's SFTConfig as both trainer benchmarks run it: packing, fixed steps and LR, fp32 (TRL defaults to bf16),
    no saving, no progress bar; ``extra`` adds to it (gradient checkpointing for the memory benchmark)."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir),
        max_length=args.seq_len,
        packing=True,
        dataset_text_field="text",
        per_device_train_batch_size=args.batch,
        max_steps=args.steps,
        learning_rate=1e-4,
        lr_scheduler_type="constant",
        warmup_steps=0,
        logging_steps=args.steps,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_pin_memory=False,
        seed=42,
        bf16=False,
        **extra,
    )


def run_trl(work: Path, args, tag: str) -> dict:
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    model = AutoModelForCausalLM.from_pretrained(work / "model", attn_implementation="sdpa")
    tok = AutoTokenizer.from_pretrained(work / "model")
    config = trl_sft_config(work / f"trl-{tag}", args)
    trainer = SFTTrainer(model=model, args=config, train_dataset=load_from_disk(work / "shard"), processing_class=tok)
    metrics = trainer.train().metrics
    # TRL's own count of the tokens its steps consumed (padding-free: every position is a real token)
    tokens = next(h["num_tokens"] for h in reversed(trainer.state.log_history) if "num_tokens" in h)
    return {"tokens": int(tokens), "real": int(tokens), "seconds": metrics["train_runtime"], "share": 1.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        import trl
    except ImportError:
        print(
            "SKIP: trl is not installed — .venv/bin/pip install trl==1.16.0 "
            "(check that it leaves torch and transformers where they are)"
        )
        return 0
    import torch
    from datasets import Dataset

    torch.set_num_threads(args.threads)

    work = Path(tempfile.mkdtemp(prefix="bench-trainer-"))
    texts = corpus(args.docs)
    build_model(work / "model", texts, args.vocab, args.hidden, args.layers)
    Dataset.from_list([{"id": str(i), "text": t} for i, t in enumerate(texts)]).save_to_disk(work / "shard")
    print(
        f"{args.docs} docs, Llama {args.layers}x{args.hidden} (vocab {args.vocab}), seq_len {args.seq_len}, "
        f"batch {args.batch} rows, {args.steps} steps, torch {torch.__version__} on {torch.get_num_threads()} "
        f"CPU threads, trl {trl.__version__}"
    )
    # CPU seconds of this process (all threads) inside Trainer.train: on a shared machine the wall clock of a run
    # moves by several times with the other tenants' load, the CPU time its work costs much less.
    import transformers

    plain_train = transformers.Trainer.train

    def timed_train(self, *a, **k):
        started = time.process_time()
        try:
            return plain_train(self, *a, **k)
        finally:
            CPU_SECONDS.append(time.process_time() - started)

    transformers.Trainer.train = timed_train
    contenders = [
        ("ours (flatten)", lambda tag: run_ours(work, args, "flatten", tag)),
        ("trl (packing)", lambda tag: run_trl(work, args, tag)),
        ("ours (pad)", lambda tag: run_ours(work, args, "pad", f"pad-{tag}")),
        ("ours (one sequence)", lambda tag: run_ours(work, args, "flatten", f"one-{tag}", one_sequence=True)),
    ]
    best: dict[str, dict] = {}
    for r in range(args.repeats):
        # rotate the order: on a shared machine, load drifts between runs
        for name, fn in contenders[r % len(contenders) :] + contenders[: r % len(contenders)]:
            started = time.perf_counter()
            result = fn(str(r))
            result["cpu"] = CPU_SECONDS[-1]
            result["tps"] = result["real"] / result["seconds"]
            result["tpc"] = result["real"] / result["cpu"]
            print(
                f"  {name:<20} run {r}: {result['real']:,} tokens, train {result['seconds']:.2f} s wall "
                f"({result['tps']:,.0f} tokens/s), {result['cpu']:.2f} CPU s ({result['tpc']:,.0f} tokens/CPU s)"
                f" [run wall {time.perf_counter() - started:.1f} s]"
            )
            if name not in best or result["tpc"] > best[name]["tpc"]:
                best[name] = result
    ours, theirs, padded, flat = (best[name] for name, _ in contenders)
    print()
    print(
        "| contender | real tokens/step | real tokens per CPU-second (best) | real tokens/s wall (same run) | real-token share |"
    )
    print("|---|---:|---:|---:|---:|")
    for label, r in (
        ("corpusforge trainer, packing: flatten", ours),
        ("TRL SFTTrainer, packing=True (bfd, padding-free)", theirs),
        ("corpusforge trainer, packing: pad (to longest)", padded),
        ("corpusforge trainer, flatten as one sequence (TRL's layout)", flat),
    ):
        print(f"| {label} | {r['real'] / args.steps:,.0f} | {r['tpc']:,.0f} | {r['tps']:,.0f} | {r['share']:.1%} |")
    print()
    print(f"throughput ratio ours / TRL: {ours['tpc'] / theirs['tpc']:.2f}x per CPU-second (target >= 1.0)")
    print(f"real-token share: flatten {ours['share']:.1%} (target >= 98%) vs pad-to-longest {padded['share']:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
