"""Decontamination: corpusforge's `decontaminate` step vs datatrove's n-gram filter (`NGramsDecontFilter`) and vs the
`language` step, same documents, same run; and, with ``--sweep``, the measurement behind the step's n-gram sizes.

Throughput: in one process on one core, each step's ``run()`` over documents already in memory (datatrove
`Document`s, a fresh copy each round):

  (a) corpusforge decontaminate     three eval sets: the scorecard's shipped English prompts, Django's and Sphinx's
                                    zh_Hant messages, Django's Thai messages (2,252 items); default sizes.
  (b) datatrove NGramsDecontFilter  the same items, indexed with datatrove's own code path (its `simplify_text`,
                                    13-grams of its word tokens, xxhash64, one `.index.hashes` file), as its indexer
                                    writes them — the indexer itself needs lighteval and downloads its tasks, so it
                                    is not run. Its tokenizer for `en` is spaCy's, which is not installed here: it is
                                    replaced by whitespace splitting of the simplified text, which costs less, so
                                    its figure is an upper bound of its speed. Chinese and Thai text become one
                                    "word" per space-separated run: it matches them only where the spacing agrees.
  (c) corpusforge language          the `language` step, label only (`min_score: 0`): the reference the issue names.

On the Thai pages alone, (b') runs datatrove's filter with ``language="th"``: its real Thai tokenizer (pythainlp,
`newmm-safe`), against (a).

The index: its build time and size for those eval sets and for 10⁵ real items (every Debian message of the
zh_TW, zh_CN, ja and th catalogs and their English msgids, and the standard library's docstring paragraphs).

Documents: real text, none written for this benchmark — the gettext catalogs the tests read (tests/text/locale;
Debian packages' zh_TW, zh_CN, th and ja translations, and the English msgids of the zh_TW ones) and paragraphs of
the standard library's docstrings, consecutive messages joined into pages of 300-3,000 characters
(`tests.support.pages_of`, as the pii and quality benchmarks build them).

``--sweep``: for each kind of n-gram (`cjk`, `thai`, `words`) and several sizes (`min_length` 0.6 n), the share of
real clean documents flagged (eval items and documents from sources sharing no text, as tests/steps/
test_decontaminate.py builds them: Debian's catalogs against Django's, Sphinx's, chatterbot's and the docstrings,
both ways), the share of pages of other Debian catalogs flagged (the same software's text: shared translations and
chance phrases), and the share of eval items still found with one word changed in their middle third.

Run (from the repository root):

    .venv/bin/python benchmarks/bench_decont.py                  # throughput: all 3,042 pages, best of 3 (~15 s)
    .venv/bin/python benchmarks/bench_decont.py --sweep          # the n-gram size measurement (~1 minute)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_lid import machine  # noqa: E402  (one description of the machine for every benchmark)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from corpusforge.data import shipped_prompts  # noqa: E402
from corpusforge.testing import locale_catalogs, mo_messages  # noqa: E402
from tests.support import (  # noqa: E402  (the real text the tests read)
    corpus_texts,
    labelled_sample,
    locale_dir,
    package_messages,
    pages_of,
    stdlib_paragraphs,
)

LOCALES = ("zh_TW", "zh_CN", "th", "ja")


def catalogs(locale: str) -> list[list[str]]:
    return [[t for _, t in mo_messages(p)] for p in locale_catalogs(locale_dir(), locale)]


def msgids() -> list[str]:
    return list(dict.fromkeys(m for p in locale_catalogs(locale_dir(), "zh_TW") for m, _ in mo_messages(p)))


def documents(n_docs: int, seed: int) -> tuple[list[str], dict[str, int]]:
    rng = random.Random(seed)
    docs = [(locale, page) for locale in LOCALES for c in catalogs(locale) for page in pages_of(c, rng)]
    docs += [("en", page) for page in pages_of(msgids(), rng)]
    docs += [("en", page) for page in pages_of(stdlib_paragraphs(40, 3000), rng)]
    return labelled_sample(docs, n_docs, rng)


def eval_items() -> dict[str, list[str]]:
    shipped = [json.loads(line)["prompt"] for line in shipped_prompts("en").read_text(encoding="utf-8").splitlines()]
    zh = [t for p, loc in (("django", "zh_Hant"), ("sphinx", "zh_TW")) for _, t in package_messages(p, loc)]
    return {"en": shipped, "zh_Hant": zh, "th": [t for _, t in package_messages("django", "th")]}


def params_for(items: dict[str, list[str]], folder: Path, **sizes):
    from corpusforge.steps.decontaminate import DecontaminateParams

    sets = []
    for name, texts in items.items():
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in dict.fromkeys(texts)))
        sets.append({"file": str(path), "fields": ["text"]})
    return DecontaminateParams(eval_sets=sets, **sizes)


# ------------------------------------------------------------------------------------------------ datatrove
def datatrove_filter(items: dict[str, list[str]], folder: Path, language: str):
    """datatrove's NGramsDecontFilter over an index of ``items`` hashed as its indexer hashes them (the prompt as
    the query, `find_query_ngrams`), 13-grams."""
    import datatrove.pipeline.decont.n_grams as n_grams
    from datatrove.utils.hashing import create_hash_func
    from datatrove.utils.text import ngrams, simplify_text
    from datatrove.utils.word_tokenizers import WordTokenizer, load_word_tokenizer

    class Whitespace(WordTokenizer):  # stands in for spaCy's tokenizer (not installed) on simplified text
        def word_tokenize(self, text: str) -> list[str]:
            return text.split()

        def sent_tokenize(self, text: str) -> list[str]:
            return [text]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return [(0, len(text))]

    tokenizer = load_word_tokenizer(language) if language == "th" else Whitespace()
    config = n_grams.NGramsDecontConfig(n_grams=13, find_query_ngrams=True)
    xxhash64 = create_hash_func(config.hash_config)  # its default, xxhash64, which xxhash >= 4 gives only bytes

    def hash_func(text: str) -> int:
        return xxhash64(text.encode("utf-8"))

    index = folder / f"datatrove-{language}"
    index.mkdir(exist_ok=True)
    for name, texts in items.items():
        hashes = set()
        for text in texts:
            tokens = tokenizer.word_tokenize(simplify_text(text, config.norm_config))
            hashes.update(map(hash_func, map(" ".join, ngrams(tokens, config.n_grams))))
        np.array(sorted(hashes), dtype=config.hash_config.np_descr).tofile(index / f"{name}.index.hashes")
    original = n_grams.load_word_tokenizer
    n_grams.load_word_tokenizer = lambda lang: tokenizer
    try:
        step = n_grams.NGramsDecontFilter(str(index), config=config, language=language)
    finally:
        n_grams.load_word_tokenizer = original
    step.hash_func = hash_func
    return step


# ------------------------------------------------------------------------------------------------ throughput
def run(step, texts: list[str]) -> tuple[float, int]:
    """Seconds to pass every text through the step, and how many it dropped or flagged."""
    from datatrove.data import Document

    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
    started = time.perf_counter()
    out = list(step.run(iter(docs)))
    wall = time.perf_counter() - started
    marked = sum(1 for d in out if "contaminated" in d.metadata)
    return wall, len(texts) - len(out) + marked


def measure(label: str, texts: list[str], steps: dict[str, object], repeat: int, baseline: str) -> None:
    lengths = sorted(map(len, texts))
    print(
        f"\n### {label}: {len(texts):,} documents, {sum(lengths):,} characters, median {lengths[len(lengths) // 2]:,}"
    )
    for step in steps.values():  # warm-up: the index, lid.176
        run(step, texts[:20])
    best: dict[str, tuple[float, int]] = {}
    for _ in range(max(1, repeat)):
        for name, step in steps.items():
            result = run(step, texts)
            if name not in best or result[0] < best[name][0]:
                best[name] = result
    base = len(texts) / best[baseline][0]
    language = best.get("corpusforge language (label only)")
    print(f"\n| contender | docs/s | × {baseline} |" + (" × language |" if language else "") + " matched |")
    print("|---|---:|---:|" + ("---:|" if language else "") + "---:|")
    for name, (wall, matched) in best.items():
        rate = len(texts) / wall
        cells = f"| {name} | {rate:,.0f} | {rate / base:.2f}× |"
        if language:
            cells += f" {rate / (len(texts) / language[0]):.2f}× |"
        print(f"{cells} {matched:,} |")


def index_size(params) -> str:
    from corpusforge.steps.decontaminate import Index

    started = time.perf_counter()
    index = Index(params)
    seconds = time.perf_counter() - started
    arrays = (index.long, index.long_sets, index.short, index.short_len, index.short_full, index.short_sets)
    megabytes = (sum(a.nbytes for a in arrays) + index.bitmap.nbytes) / 2**20
    return (
        f"{index.items:,} items → {len(index.long):,} n-grams + {len(index.short):,} whole items "
        f"({index.too_short:,} too short to flag), {megabytes:.1f} MB, built in {seconds:.1f} s"
    )


def throughput(args, folder: Path) -> None:
    from corpusforge.steps.decontaminate import Decontaminate
    from corpusforge.steps.language import LanguageID, LanguageParams

    items = eval_items()
    params = params_for(items, folder)
    texts, counts = documents(args.docs, args.seed)
    print(f"documents: {', '.join(f'{k} {v:,}' for k, v in counts.items())}")
    steps = {
        "corpusforge decontaminate": Decontaminate(params),
        "datatrove NGramsDecontFilter": datatrove_filter(items, folder, "en"),
        "corpusforge language (label only)": LanguageID(LanguageParams(min_score=0.0, label_only=True)),
    }
    measure("pages", texts, steps, args.repeat, "datatrove NGramsDecontFilter")
    thai = [t for t in texts if sum("\u0e00" <= c <= "\u0e7f" for c in t) * 2 > len(t)]
    steps = {
        "corpusforge decontaminate": steps["corpusforge decontaminate"],
        "datatrove NGramsDecontFilter, th tokenizer": datatrove_filter(items, folder, "th"),
    }
    measure("Thai pages", thai, steps, args.repeat, "datatrove NGramsDecontFilter, th tokenizer")
    print(f"\nindex of the eval sets above: {index_size(params)}")
    big = {
        **{locale: [m for c in catalogs(locale) for m in c] for locale in LOCALES},
        "msgids": msgids(),
        "docstrings": stdlib_paragraphs(40, 3000),
    }
    print(f"index of 10^5 real items: {index_size(params_for(big, folder))}")


# ------------------------------------------------------------------------------------------------ the sweep
def sides() -> list[tuple[dict[str, list[str]], dict[str, list[str]]]]:
    """(eval items by language, clean documents by script) from sources that share no text, both ways."""
    rng = random.Random(0)
    shipped = eval_items()["en"]
    english = corpus_texts("english") + stdlib_paragraphs(40, 3000)
    debian_zh, debian_th = catalogs("zh_TW"), catalogs("th")
    django = eval_items()
    flat = lambda cs: [m for c in cs for m in c]  # noqa: E731
    return [
        (
            {"en": shipped, "zh_Hant": flat(debian_zh), "th": flat(debian_th)},
            {
                "cjk": django["zh_Hant"] + corpus_texts("traditionalchinese"),
                "thai": django["th"] + corpus_texts("thai"),
                "words": english,
            },
        ),
        (
            {"en": shipped, "zh_Hant": django["zh_Hant"], "th": django["th"]},
            {
                "cjk": [p for c in debian_zh for p in pages_of(c, rng)],
                "thai": [p for c in debian_th for p in pages_of(c, rng)] + flat(debian_th),
                "words": english + msgids(),
            },
        ),
    ]


def change_a_word(rng: random.Random, text: str) -> str:
    """As tests/steps/test_decontaminate.py: a word (1 unit; 1-2 CJK, 4 Thai characters) in the middle third."""
    from corpusforge.steps.decontaminate import Units

    units = Units(text)
    at = rng.randrange(len(units) // 3, max(2 * len(units) // 3 - 4, len(units) // 3 + 1))
    cls = int(units.classes[at])
    width = {1: 1, 2: rng.choice((1, 2)), 3: 4}[cls]
    replacement = {1: "zebra", 2: "鑫" * width, 3: "ก" * width}[cls]
    return units.norm[: units.starts[at]] + f" {replacement} " + units.norm[units.ends[at + width - 1] :]


def sweep(folder: Path) -> None:
    from corpusforge.steps.decontaminate import Index, Units

    defaults = {"words": 13, "cjk": 25, "thai": 50}
    minimum = {"words": 8, "cjk": 15, "thai": 30}
    candidates = {"cjk": (10, 15, 20, 25, 30, 40), "thai": (25, 30, 35, 40, 50, 60), "words": (8, 10, 13, 16)}
    language = {"cjk": "zh_Hant", "thai": "th", "words": "en"}
    clean_sides = sides()
    split = {  # every other Debian catalog as eval items, pages of the rest as documents, and the other way round
        kind: [
            (
                [m for c in catalogs(loc)[half::2] for m in c],
                [p for c in catalogs(loc)[1 - half :: 2] for p in pages_of(c, random.Random(1))],
            )
            for half in (0, 1)
        ]
        for kind, loc in (("cjk", "zh_TW"), ("thai", "th"))
    }
    header = (
        "| kind | n | min_length | clean documents flagged | other catalogs' pages flagged | found, a word changed |"
    )
    print(f"\n{header}\n|---|---:|---:|---:|---:|---:|")
    for kind, sizes in candidates.items():
        # whose recall is compared: the items the default sizes can flag (a larger n loses some of them)
        flaggable = []
        for items, _ in clean_sides:
            index = Index(params_for(items, folder))
            flaggable.append([t for t in items[language[kind]] if index.matched_whole(t) is not None])
        for n in sizes:
            n_sizes, m_sizes = {**defaults, kind: n}, {**minimum, kind: round(0.6 * n)}
            flagged = total = found = tried = 0
            rng = random.Random(n)
            for (items, clean), texts in zip(clean_sides, flaggable):
                index = Index(params_for(items, folder, n=n_sizes, min_length=m_sizes))
                flagged += sum(index.find(Units(d)) is not None for d in clean[kind])
                total += len(clean[kind])
                tried += len(texts)
                found += sum(index.find(Units(change_a_word(rng, text))) is not None for text in texts)
            other = "—"
            if kind in split:
                hits = pages = 0
                for items, docs in split[kind]:
                    index = Index(params_for({"items": items}, folder, n=n_sizes, min_length=m_sizes))
                    hits += sum(index.find(Units(p)) is not None for p in docs)
                    pages += len(docs)
                other = f"{hits}/{pages} = {hits / pages:.1%}"
            mark = " (default)" if n == defaults[kind] else ""
            print(
                f"| {kind} | {n}{mark} | {m_sizes[kind]} | {flagged}/{total} = {flagged / total:.3%} | {other} | "
                f"{found}/{tried} = {found / tried:.1%} |"
            )


def versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{name} {version(name)}" for name in ("corpusforge", "datatrove"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=4000, help="pages (at most)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the fastest of each contender is kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sweep", action="store_true", help="measure flagged shares and recall against n instead")
    args = parser.parse_args(argv)
    from loguru import logger

    logger.disable("datatrove")
    logger.disable("corpusforge")
    print(f"machine: {machine()}")
    print(f"code:    {versions()}; catalogs from {locale_dir()}")
    with tempfile.TemporaryDirectory() as tmp:
        (sweep if args.sweep else lambda folder: throughput(args, folder))(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
