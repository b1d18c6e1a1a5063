"""Quality-filter throughput on Chinese: corpusforge's `quality` step vs datatrove's GopherQualityFilter.

Measures, in one process on one core, the filter call alone: documents already in memory as datatrove Documents,
no reading or writing, each filter called on every document (``filter(doc)``) in turn:

  (a) corpusforge      QualityFilter(QualityParams(preset="zh")): every rule of the step (Gopher quality and
                       repetition, C4, FineWeb) in character units.
  (b) datatrove cmn    GopherQualityFilter(language="cmn"): Mandarin, which datatrove 0.10.1 tokenizes with spaCy's
                       Chinese tokenizer and the jieba segmenter — datatrove's proper Chinese setting.
  (c) datatrove zh     GopherQualityFilter(language="zh"): what the code `zh` resolves to in datatrove 0.10.1's
                       tokenizer table (spaCy's multilingual `xx` tokenizer, which does not segment Chinese).
  (d) datatrove rep.   GopherRepetitionFilter(language="cmn"): the repetition half of Gopher (duplicate lines,
                       paragraphs and word n-grams over jieba words), for its keep rate on the same documents;
                       (a) includes these rules in character units.

The target is (a) >= 5x the throughput of (b). ``--repeat`` rounds (default 3) run the contenders in turn, so slow
drifts of the machine hit all alike; the fastest round of each is kept. Each filter first sees 20 documents
untimed (spaCy's and jieba's loading is not counted). Keep rates and the most common drop reasons are printed
side by side.

Two corpora, both real Chinese text found on this machine (gettext catalogs, /usr/share/locale/{zh_TW,zh_CN}):

  pages   consecutive translated messages of each catalog joined with newlines into documents of 300-3000
          characters (log-uniform target length, fixed seed), as benchmarks/bench_lid.py builds them: prose mixed
          with option lists and usage lines, as text extracted from documentation pages is. The catalogs give
          1,084 such documents (a document ends with the message that reaches its target, so a few are longer).
  prose   the prose paragraphs only (multi-sentence, mostly Han, no option listing: the rule of
          tests/steps/test_quality.py), 3-6 consecutive ones joined into a document with blank lines.

datatrove's Chinese word tokenizer needs spaCy and jieba, which are not corpusforge dependencies. Install them
into the virtual environment for this benchmark only (measured with spacy 3.8.18, jieba 0.42.1):

    .venv/bin/pip install spacy jieba

Run (from the repository root):

    .venv/bin/python benchmarks/bench_quality.py             # both corpora, up to 2,000 documents each
    .venv/bin/python benchmarks/bench_quality.py --docs 500  # a quick check
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

import regex

from corpusforge.testing import locale_catalogs, mo_messages

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.support
from bench_lid import machine  # noqa: E402  (one description of the machine for every benchmark)

from tests.support import pages_of  # noqa: E402  (the pages the pii and content tests and benchmarks read too)

LOCALES = ("zh_TW", "zh_CN")
# the catalogs the tests read (tests/text/fetch-catalogs.sh), else this machine's: the same Debian packages
_FETCHED = Path(__file__).resolve().parents[1] / "tests" / "text" / "locale"
LOCALE_DIR = _FETCHED if (_FETCHED / ".complete").is_file() else Path("/usr/share/locale")
TARGET = 5.0
_HAN = regex.compile(r"\p{Han}")
_SENTENCE_MARK = regex.compile(r"[。！？]|[.!?](?=\s|$)")
_LISTING_LINE = regex.compile(r"(?m)^\s*[-<\[]")


# -- corpora -------------------------------------------------------------------------------------------------------
def catalog_messages(locale: str) -> list[list[str]]:
    """Translated messages of each catalog of a locale (ISO code lists excluded), in file order."""
    return [[text for _, text in mo_messages(path)] for path in locale_catalogs(LOCALE_DIR, locale)]


def page_documents(n_docs: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    docs = [page for locale in LOCALES for messages in catalog_messages(locale) for page in pages_of(messages, rng)]
    rng.shuffle(docs)
    return docs[:n_docs]


def prose_documents(n_docs: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    paragraphs = []
    for locale in LOCALES:
        for messages in catalog_messages(locale):
            for text in messages:
                non_space = "".join(text.split())
                if len(non_space) < 80 or _LISTING_LINE.search(text) or len(_SENTENCE_MARK.findall(text)) < 2:
                    continue
                if len(_HAN.findall(non_space)) >= 0.7 * len(non_space):
                    paragraphs.append(text)
    paragraphs = list(dict.fromkeys(paragraphs))
    docs = []
    while len(docs) < n_docs:  # paragraphs are few (~120): documents are drawn with replacement
        start = rng.randrange(len(paragraphs))
        docs.append("\n\n".join(paragraphs[start : start + rng.randint(3, 6)]))
    return docs


# -- contenders ----------------------------------------------------------------------------------------------------
def contenders() -> dict[str, object]:
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter

    from corpusforge.steps.quality import QualityFilter, QualityParams

    return {
        "corpusforge quality (zh preset)": QualityFilter(QualityParams(preset="zh")),
        "datatrove Gopher, language=cmn (jieba)": GopherQualityFilter(language="cmn"),
        "datatrove Gopher, language=zh (spaCy xx)": GopherQualityFilter(language="zh"),
        "datatrove GopherRepetition, language=cmn": GopherRepetitionFilter(language="cmn"),
    }


def run(step, texts: list[str]) -> tuple[float, float, list]:
    """Seconds (wall, CPU) to filter every text, and True or the drop reason for each."""
    from datatrove.data import Document

    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
    wall, cpu = time.perf_counter(), time.process_time()
    results = [step.filter(d) for d in docs]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, [r if r is True else r[1] if isinstance(r, tuple) else "dropped" for r in results]


# -- report --------------------------------------------------------------------------------------------------------
def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("corpusforge", "datatrove", "spacy", "jieba"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=2000, help="documents per corpus (at most)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the fastest of each contender is kept")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for module in ("spacy", "jieba"):
        try:
            __import__(module)
        except ImportError:
            print(
                f"datatrove's Chinese tokenizer needs `{module}`: .venv/bin/pip install spacy jieba", file=sys.stderr
            )
            return 2

    from loguru import logger

    logger.disable("datatrove")
    import jieba

    jieba.setLogLevel(60)  # quiet "Building prefix dict ..."

    print(f"machine: {machine()}")
    print(f"code:    {versions()}")
    corpora = {"pages": page_documents(args.docs, args.seed), "prose": prose_documents(args.docs, args.seed)}
    filters = contenders()
    for texts in corpora.values():  # warm-up: spaCy pipelines, jieba's dictionary, regex caches
        for step in filters.values():
            run(step, texts[:20])

    ratios = {}
    for corpus, texts in corpora.items():
        lengths = sorted(len(t) for t in texts)
        print(
            f"\ncorpus {corpus}: {len(texts):,} documents, {sum(lengths):,} characters, "
            f"median {lengths[len(lengths) // 2]:,}, min {lengths[0]:,}, max {lengths[-1]:,}"
        )
        best: dict[str, tuple] = {}
        for _ in range(max(1, args.repeat)):
            for name, step in filters.items():
                wall, cpu, results = run(step, texts)
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, cpu, results)
        base = len(texts) / best["datatrove Gopher, language=cmn (jieba)"][0]
        print(
            "\n| filter | docs/s | x Gopher (cmn) | CPU s | kept | top drop reasons |\n|---|---:|---:|---:|---:|---|"
        )
        for name, (wall, cpu, results) in best.items():
            rate = len(texts) / wall
            kept = sum(r is True for r in results) / len(results)
            reasons = Counter(r for r in results if r is not True).most_common(3)
            top = ", ".join(f"{r} {n / len(results):.0%}" for r, n in reasons) or "—"
            print(f"| {name} | {rate:,.0f} | {rate / base:.1f}x | {cpu:.2f} | {kept:.1%} | {top} |")
        ours, theirs = best["corpusforge quality (zh preset)"], best["datatrove Gopher, language=cmn (jieba)"]
        ratios[corpus] = (theirs[0] / ours[0], theirs[1] / ours[1])
    print()
    for corpus, (wall, cpu) in ratios.items():
        verdict = "met" if wall >= TARGET else "MISSED"
        print(
            f"{corpus}: corpusforge / datatrove Gopher (cmn) = {wall:.1f}x by wall time, {cpu:.1f}x by CPU time "
            f"(target >= {TARGET}x: {verdict})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
