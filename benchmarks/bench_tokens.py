"""Token counting throughput: corpusforge's `tokens` step vs raw `tokenizers` batch encoding, in one process.

    .venv/bin/python benchmarks/bench_tokens.py [--docs 20000] [--repeat 3] [--vocab 32000]

Both count the same documents with the same tokenizer, in memory (no reading, no writing):
  (a) raw:   ``Tokenizer.encode_batch(texts[i:i+1000], add_special_tokens=False)`` and ``len(e.ids)`` per text;
  (b) ours:  ``TokenCounter.run`` over datatrove Documents (batches of 1000), which writes ``n_tokens``.
The tokenizer is a byte-level BPE (the Llama-3 family's kind) trained here on the same corpus with `tokenizers`;
the corpus is the one bench_lid.py builds (real catalogs, conversations and docstrings in many languages, 20-3,000 chars).
`tokenizers` parallelizes a batch over the cores: RAYON_NUM_THREADS is set to 1 so both run on one core.
Target: ours ≥ 0.8× raw docs/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--vocab", type=int, default=32_000)
    args = parser.parse_args(argv)

    import tempfile

    from bench_lid import build_corpus
    from datatrove.data import Document
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from corpusforge.steps.tokens import TokenCounter, TokensParams

    texts = [d["text"] for d in build_corpus(args.docs)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=args.vocab, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(texts, trainer)
    folder = Path(tempfile.mkdtemp(prefix="bench-tokens-"))
    tok.save(str(folder / "tokenizer.json"))
    chars = sum(map(len, texts))
    print(
        f"corpus: {len(texts):,} docs, {chars:,} chars; byte-level BPE, vocab {tok.get_vocab_size():,}; "
        f"RAYON_NUM_THREADS={os.environ['RAYON_NUM_THREADS']}"
    )

    def raw():
        t = Tokenizer.from_file(str(folder / "tokenizer.json"))
        start = time.perf_counter()
        counts = []
        for i in range(0, len(texts), 1000):
            counts += [len(e.ids) for e in t.encode_batch(texts[i : i + 1000], add_special_tokens=False)]
        return time.perf_counter() - start, counts

    def ours():
        step = TokenCounter(TokensParams(tokenizer=str(folder / "tokenizer.json")))
        step.tokenizer  # noqa: B018  (load outside the timed region, as raw does)
        docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
        start = time.perf_counter()
        out = [d.metadata["n_tokens"] for d in step.run(iter(docs))]
        return time.perf_counter() - start, out

    best = {"raw": float("inf"), "ours": float("inf")}
    for _ in range(args.repeat):
        for name, fn in (("raw", raw), ("ours", ours)):
            seconds, counts = fn()
            best[name] = min(best[name], seconds)
            if name == "raw":
                reference = counts
            elif counts != reference:
                raise SystemExit("token counts differ between raw tokenizers and the tokens step")
    print("| contender | seconds | docs/s | tokens |\n|---|---:|---:|---:|")
    for name in ("raw", "ours"):
        print(f"| {name} | {best[name]:.3f} | {len(texts) / best[name]:,.0f} | {sum(reference):,} |")
    ratio = best["raw"] / best["ours"]
    print(f"ours / raw = {ratio:.2f}x (target >= 0.8x: {'met' if ratio >= 0.8 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
