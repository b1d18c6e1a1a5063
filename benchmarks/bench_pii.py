"""PII throughput: corpusforge's `pii` step vs datatrove's `PIIFormatter` (FineWeb-2's), same documents, same run.

Measures, in one process on one core, each step's ``run()`` over documents already in memory (datatrove
`Document`s, a fresh copy each round; no reading or writing):

  (a) corpusforge pii, all kinds   PII(PIIParams()): e-mail, IPv4/IPv6, phones (Taiwan, Thailand, +…), Taiwan ID and
                                   resident certificate, Thai citizen ID, payment cards; checksums verified.
  (b) corpusforge pii, email + ip  PII(PIIParams(kinds=["email", "ip"])): the job datatrove's formatter does.
  (c) datatrove PIIFormatter       its defaults: e-mail addresses and public IPv4 addresses, replaced.
  (d) corpusforge language         the `language` step, label only (`min_score: 0`): the reference the issue names
                                   for a step's cost (the script census, fastText lid.176 where the script does not
                                   settle the language).

``--repeat`` rounds (default 3) run the contenders in turn; the fastest round of each is kept. Each contender first
sees 20 documents untimed (lid.176's loading is not counted). It also prints how many documents each one changed, and
the strings one of (b) and (c) replaces and the other keeps.

The corpus is real text, none written for this benchmark: the gettext catalogs the tests read (tests/text/locale,
else /usr/share/locale; Debian packages' zh_TW, zh_CN, th and ja translations, and the English msgids of the zh_TW
ones) and paragraphs of the standard library's docstrings, consecutive messages (paragraphs) joined with newlines into
documents of 300-3000 characters (log-uniform target length, fixed seed), as benchmarks/bench_quality.py builds its
"pages": prose mixed with option lists, usage lines, versions, sizes, dates and the docstrings' example addresses.
A second corpus, "code", is the standard library's own modules in pieces of 2,000 characters: dense in digits and
capitals, the worst case for the candidate scan.

Run (from the repository root):

    .venv/bin/python benchmarks/bench_pii.py                           # both corpora, up to 6,000 documents, 3 rounds
    .venv/bin/python benchmarks/bench_pii.py --docs 1000 --repeat 1    # a quick check
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

from corpusforge.testing import locale_catalogs, mo_messages

sys.path.insert(0, str(Path(__file__).parent))
from bench_lid import machine  # noqa: E402  (one description of the machine for every benchmark)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support import labelled_sample, pages_of, stdlib_source  # noqa: E402  (the same code the pii tests read)

_FETCHED = Path(__file__).resolve().parents[1] / "tests" / "text" / "locale"
LOCALE_DIR = _FETCHED if (_FETCHED / ".complete").is_file() else Path("/usr/share/locale")
LOCALES = ("zh_TW", "zh_CN", "th", "ja")


def page_documents(n_docs: int, seed: int) -> tuple[list[str], dict[str, int]]:
    """Documents of consecutive messages of one catalog (translations, and the English msgids as their own
    catalogs), and how many came from each kind of text."""
    rng = random.Random(seed)
    streams: dict[str, list[list[str]]] = {"en": []}
    for locale in LOCALES:
        catalogs = [mo_messages(path) for path in locale_catalogs(LOCALE_DIR, locale)]
        streams[locale] = [[text for _, text in messages] for messages in catalogs]
        streams["en"] += [[msgid for msgid, _ in messages] for messages in catalogs if locale == "zh_TW"]
    streams["en"].append(stdlib_paragraphs())
    docs: list[tuple[str, str]] = []
    for label, catalogs in streams.items():
        for messages in catalogs:
            docs += [(label, page) for page in pages_of(messages, rng)]
    return labelled_sample(docs, n_docs, rng)


def stdlib_paragraphs() -> list[str]:
    """Paragraphs of the standard library's docstrings (English prose with versions, sizes, addresses in examples)."""
    import importlib
    import inspect
    import warnings

    out: dict[str, None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in STDLIB_MODULES.split():
            module = importlib.import_module(name)
            for obj in [
                module,
                *(m for _, m in inspect.getmembers(module) if inspect.isclass(m) or inspect.isfunction(m)),
            ]:
                for para in (inspect.getdoc(obj) or "").split("\n\n"):
                    if len(para) >= 40:
                        out.setdefault(para)
    return list(out)


STDLIB_MODULES = (
    "argparse asyncio collections datetime decimal email ftplib http.client http.cookies imaplib ipaddress json "
    "logging mailbox optparse os pathlib smtplib socket socketserver ssl string subprocess tarfile urllib.parse "
    "urllib.request uuid zipfile"
)


def contenders() -> dict[str, object]:
    from datatrove.pipeline.formatters import PIIFormatter

    from corpusforge.steps.language import LanguageID, LanguageParams
    from corpusforge.steps.pii import PII, PIIParams

    return {
        "corpusforge pii, all kinds": PII(PIIParams()),
        "corpusforge pii, email + ip": PII(PIIParams(kinds=["email", "ip"])),
        "datatrove PIIFormatter": PIIFormatter(),
        "corpusforge language (label only)": LanguageID(LanguageParams(min_score=0.0, label_only=True)),
    }


def run(step, texts: list[str]) -> tuple[float, float, int]:
    """Seconds (wall, CPU) to pass every text through the step, and how many texts it changed."""
    from datatrove.data import Document

    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
    wall, cpu = time.perf_counter(), time.process_time()
    out = list(step.run(iter(docs)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, sum(d.text != t for d, t in zip(out, texts))


def versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{name} {version(name)}" for name in ("corpusforge", "datatrove"))


def code_documents(n_docs: int, seed: int) -> tuple[list[str], dict[str, int]]:
    """The standard library's modules (test suites left out) in pieces of 2,000 characters: real code, dense in
    digits, capitals and example addresses — the worst case for a candidate scan."""
    pieces = stdlib_source()
    random.Random(seed).shuffle(pieces)
    return pieces[:n_docs], {"python": min(n_docs, len(pieces))}


def measure(texts: list[str], sources: dict[str, int], repeat: int) -> None:
    lengths = sorted(len(t) for t in texts)
    print(
        f"{len(texts):,} documents ({', '.join(f'{k} {v:,}' for k, v in sources.items())}), "
        f"{sum(lengths):,} characters, median {lengths[len(lengths) // 2]:,}"
    )
    steps = contenders()
    for step in steps.values():  # warm-up: lid.176, regex caches
        run(step, texts[:20])
    best: dict[str, tuple[float, float, int]] = {}
    for _ in range(max(1, repeat)):
        for name, step in steps.items():
            result = run(step, texts)
            if name not in best or result[0] < best[name][0]:
                best[name] = result
    base = len(texts) / best["datatrove PIIFormatter"][0]
    language = len(texts) / best["corpusforge language (label only)"][0]
    print("\n| contender | docs/s | × PIIFormatter | × language | CPU s | documents changed |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (wall, cpu, changed) in best.items():
        rate = len(texts) / wall
        print(f"| {name} | {rate:,.0f} | {rate / base:.2f}× | {rate / language:.1f}× | {cpu:.2f} | {changed:,} |")
    print("\nwhere the two disagree (corpusforge email + ip vs PIIFormatter):")
    for side, strings in disagreements(texts).items():
        print(f"  only {side}: " + (", ".join(f"{s} ×{n}" for s, n in strings.most_common(12)) or "none"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=6000, help="documents per corpus (at most)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the fastest of each contender is kept")
    parser.add_argument("--corpus", choices=("pages", "code", "both"), default="both")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from loguru import logger

    logger.disable("datatrove")
    print(f"machine: {machine()}")
    print(f"code:    {versions()}; catalogs from {LOCALE_DIR}")
    corpora = {"pages": page_documents, "code": code_documents}
    for name, build in corpora.items():
        if args.corpus in (name, "both"):
            print(f"\n### {name}: ", end="")
            measure(*build(args.docs, args.seed), args.repeat)
    return 0


def disagreements(texts: list[str]) -> dict[str, Counter]:
    """What one of corpusforge (kinds email, ip) and datatrove's PIIFormatter replaces and the other keeps."""
    from datatrove.pipeline.formatters.pii import PIIFormatter, public_ip_validator

    from corpusforge.steps.pii import find_pii

    reference = PIIFormatter()
    out = {"corpusforge": Counter(), "datatrove": Counter()}
    for text in texts:
        ours = {text[s:e] for s, e, _ in find_pii(text, {"email", "ip"})}
        theirs = {m.group() for m in reference.emails_replacer.regex.finditer(text)}
        theirs |= {m.group() for m in reference.ip_replacer.regex.finditer(text) if public_ip_validator(m.group())}
        out["corpusforge"].update(ours - theirs)
        out["datatrove"].update(theirs - ours)
    return out


if __name__ == "__main__":
    sys.exit(main())
