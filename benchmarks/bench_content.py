"""Content-step throughput and keep/drop rates: corpusforge's `content` step vs our `language` step and datatrove's
`C4BadWordsFilter`, same documents, same run.

Measures, in one process on one core, each step's ``run()`` over documents already in memory (datatrove
`Document`s, a fresh copy each round; no reading or writing):

  (a) corpusforge content           Content(ContentParams()): adult, gambling and spam rules per language, the
                                    document's language from the script census (no `language` step before it).
  (b) corpusforge content, labelled the same, on documents whose `metadata.language` is set (here from the page's
                                    catalog): its cost where a recipe runs `language` first.
  (c) datatrove C4BadWordsFilter    its defaults (drop on one hit), fed LDNOOBW offline: its download call is
                                    pointed at the shipped ldnoobw.<lang>.txt (the same LDNOOBW lists, naughty-words
                                    1.2.0, not the commits it pins), everything else is datatrove's own code; the
                                    documents carry the language it needs in `metadata.language`.
  (d) corpusforge language          the `language` step, label only: the reference the issue names for a step's
                                    cost.

``--repeat`` rounds (default 3) run the contenders in turn; the fastest round of each is kept. Each contender first
sees 20 documents untimed (lid.176's loading, the term lists' compilation are not counted).

Then the rates: the share of clean pages each filter keeps (and ours with no exclusions, to show what they buy),
and the share of planted pages ours drops, per language and category, at 1, 2, 3, 5 and 10 terms per 1,000
characters (at least 3 terms a page; the defaults fire at 3 terms and 2 per 1,000): a real page with terms of the
step's own lists put after spaces and punctuation (tests/steps/test_content.py: `plant_terms`).

The corpus is real text, none written for this benchmark: the gettext catalogs the tests read (tests/text/locale,
else /usr/share/locale; Debian packages' zh_TW, zh_CN and th translations, and the English msgids of the zh_TW ones)
and paragraphs of the standard library's docstrings, consecutive messages joined with newlines into pages of
300-3,000 characters (log-uniform target length, fixed seed), as benchmarks/bench_quality.py builds them.

Run (from the repository root):

    .venv/bin/python benchmarks/bench_content.py                        # up to 4,000 pages, 3 rounds
    .venv/bin/python benchmarks/bench_content.py --docs 1000 --repeat 1 # a quick check
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from corpusforge.testing import locale_catalogs, mo_messages

sys.path.insert(0, str(Path(__file__).parent))
from bench_lid import machine  # noqa: E402  (one description of the machine for every benchmark)
from bench_pii import stdlib_paragraphs  # noqa: E402  (the same docstring paragraphs the pii benchmark reads)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.steps.test_content import PLANT_SOURCES, plant_terms, source_terms  # noqa: E402  (the tests' plants)
from tests.support import pages_of  # noqa: E402  (the pages the quality benchmark measures)

_FETCHED = Path(__file__).resolve().parents[1] / "tests" / "text" / "locale"
LOCALE_DIR = _FETCHED if (_FETCHED / ".complete").is_file() else Path("/usr/share/locale")
LOCALES = ("zh_TW", "zh_CN", "th")
LANGUAGE = {"zh_TW": "zh", "zh_CN": "zh", "th": "th", "en": "en"}  # a page's source → its language
PLANTED = {"zh_Hant": "zh_TW", "zh_Hans": "zh_CN", "th": "th", "en": "en"}  # a planted page's language → its source
DENSITIES = (1.0, 2.0, 3.0, 5.0, 10.0)


def page_documents(n_docs: int, seed: int) -> list[tuple[str, str]]:
    """(source, page): pages of consecutive messages of one catalog (translations: `zh_TW`, `zh_CN`, `th`; `en`:
    the English msgids of the zh_TW catalogs and the standard library's docstrings)."""
    rng = random.Random(seed)
    streams: list[tuple[str, list[str]]] = []
    for locale in LOCALES:
        for messages in (mo_messages(path) for path in locale_catalogs(LOCALE_DIR, locale)):
            streams.append((locale, [text for _, text in messages]))
            if locale == "zh_TW":
                streams.append(("en", [msgid for msgid, _ in messages]))
    streams.append(("en", stdlib_paragraphs()))
    docs = [(lang, page) for lang, messages in streams for page in pages_of(messages, rng)]
    rng.shuffle(docs)
    return docs[:n_docs]


def c4_badwords():
    """datatrove's C4BadWordsFilter, its download pointed at the shipped LDNOOBW lists (terms only, no header)."""
    from datatrove.pipeline.filters import C4BadWordsFilter, c4_filters

    from corpusforge.steps.content import DATA, read_terms

    folder = Path(tempfile.mkdtemp(prefix="ldnoobw-"))
    for lang in ("zh", "th", "en"):
        (folder / lang).write_text("\n".join(read_terms(DATA / f"ldnoobw.{lang}.txt")) + "\n", encoding="utf-8")

    def local_copy(url: str, **_) -> str:
        return str(folder / url.rstrip("/").rsplit("/", 1)[-1])

    c4_filters.cached_asset_path_or_download = local_copy
    return C4BadWordsFilter()


def contenders() -> dict[str, object]:
    from corpusforge.steps.content import Content, ContentParams
    from corpusforge.steps.language import LanguageID, LanguageParams

    return {
        "corpusforge content": (Content(ContentParams()), False),
        "corpusforge content, labelled": (Content(ContentParams()), True),
        "datatrove C4BadWordsFilter": (c4_badwords(), True),
        "corpusforge language (label only)": (LanguageID(LanguageParams(min_score=0.0, label_only=True)), False),
    }


def run(step, docs: list[tuple[str, str]], labelled: bool) -> tuple[float, int]:
    """Seconds (wall) to pass every document through the step, and how many it kept."""
    from datatrove.data import Document

    batch = [
        Document(text=t, id=str(i), metadata={"language": LANGUAGE[src]} if labelled else {})
        for i, (src, t) in enumerate(docs)
    ]
    wall = time.perf_counter()
    kept = sum(1 for _ in step.run(iter(batch)))
    return time.perf_counter() - wall, kept


def measure(docs: list[tuple[str, str]], repeat: int) -> None:
    lengths = sorted(len(t) for _, t in docs)
    by_lang = {src: sum(1 for x, _ in docs if x == src) for src in LANGUAGE}
    print(
        f"{len(docs):,} pages ({', '.join(f'{k} {v:,}' for k, v in by_lang.items())}), "
        f"{sum(lengths):,} characters, median {lengths[len(lengths) // 2]:,}"
    )
    steps = contenders()
    for step, labelled in steps.values():  # warm-up: lid.176, the term lists
        run(step, docs[:20], labelled)
    best: dict[str, tuple[float, int]] = {}
    for _ in range(max(1, repeat)):
        for name, (step, labelled) in steps.items():
            result = run(step, docs, labelled)
            if name not in best or result[0] < best[name][0]:
                best[name] = result
    language = len(docs) / best["corpusforge language (label only)"][0]
    print("\n| contender | docs/s | × language | pages kept |")
    print("|---|---:|---:|---:|")
    for name, (wall, kept) in best.items():
        rate = len(docs) / wall
        print(f"| {name} | {rate:,.0f} | {rate / language:.2f}× | {kept / len(docs):.2%} |")


def rates(docs: list[tuple[str, str]], seed: int) -> None:
    from datatrove.data import Document

    import corpusforge.steps.content as content
    from corpusforge.lang.scripts import opencc_converter

    step = content.Content(content.ContentParams())
    no_exclusions = content.Content(content.ContentParams())
    read_terms = content.read_terms
    content.read_terms = lambda path: [] if path.name.startswith("exclude.") else read_terms(path)
    no_exclusions.matchers  # noqa: B018  (built now, without the exclusions)
    content.read_terms = read_terms
    print("\nclean pages kept, per source:")
    print("| pages | count | content | content, no exclusions |")
    print("|---|---:|---:|---:|")
    for src in LANGUAGE:
        pages = [t for x, t in docs if x == src]
        kept = [sum(not s.reasons(Document(text=t, id="x")) for t in pages) for s in (step, no_exclusions)]
        print(f"| {src} | {len(pages):,} | " + " | ".join(f"{k / max(len(pages), 1):.2%}" for k in kept) + " |")
    print("\nplanted pages dropped (terms per 1,000 characters; at least 3 terms a page):")
    print("| page | category | " + " | ".join(f"{d:g}" for d in DENSITIES) + " |")
    print("|---|---|" + "---:|" * len(DENSITIES))
    rng = random.Random(seed)
    for language, (_, convert) in PLANT_SOURCES.items():
        pages = [t for x, t in docs if x == PLANTED[language]]
        for category in ("adult", "gambling"):
            terms = source_terms(language.split("_")[0], category)
            if convert:
                terms = list(dict.fromkeys(opencc_converter(convert).convert(t) for t in terms))
            row = []
            for density in DENSITIES:
                planted = [plant_terms(rng, rng.choice(pages), terms, density) for _ in range(300)]
                row.append(sum(category in step.reasons(Document(text=p, id="x")) for p in planted) / len(planted))
            print(f"| {language} | {category} | " + " | ".join(f"{r:.0%}" for r in row) + " |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=4000, help="pages (at most)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the fastest of each contender is kept")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from loguru import logger

    logger.disable("datatrove")
    print(f"machine: {machine()}")
    print(f"catalogs from {LOCALE_DIR}")
    docs = page_documents(args.docs, args.seed)
    measure(docs, args.repeat)
    rates(docs, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
