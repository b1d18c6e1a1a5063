"""What the tests share besides fixtures (those are in conftest.py): real text to test on (chatterbot-corpus, the
standard library's docstrings, gettext catalogs of Debian packages and of Python packages), recipe and JSONL
writers, the processes of a run (to prove a killed one leaves nothing), and input that attacks the loader."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import time
from pathlib import Path

import yaml

from corpusforge.testing import locale_catalogs, mo_messages

REPO = Path(__file__).resolve().parents[2]

# SmolLM2-135M-Instruct's own answer (the CPU example's tuned model) to "can you write a factorial in TypeScript?":
# lid.176 reads the whole text as Ukrainian
REAL_CODE_ANSWER = (
    "TypeScript \n```javascript\n// Example of a factorial function\nfunction factorial(n) {\n"
    "    return Math.comb(n, 1);\n}\n```"
)


def corpus_texts(folder: str) -> list[str]:
    """Every turn of every conversation in one language folder of chatterbot-corpus (real text, BSD-3)."""
    import chatterbot_corpus

    root = Path(chatterbot_corpus.__file__).parent / "data" / folder
    texts = []
    for path in sorted(root.glob("*.yml")):
        for conversation in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("conversations") or []:
            texts += [t.strip() for t in conversation if isinstance(t, str) and t.strip()]
    return texts


def stdlib_paragraphs(min_chars: int, max_chars: int) -> list[str]:
    """Paragraphs of English prose from the docstrings of Python's standard library (real text that ships with every
    Python), whitespace-joined, ``min_chars``–``max_chars`` long, each once, code examples left out."""
    import importlib
    import inspect
    import re
    import warnings

    modules = (
        "argparse asyncio collections concurrent.futures contextlib csv dataclasses datetime decimal difflib email "
        "enum fractions functools gettext heapq http.client imaplib importlib inspect ipaddress json logging "
        "mailbox multiprocessing numbers optparse os pathlib pickle queue random re shutil smtplib socket "
        "socketserver sqlite3 ssl statistics string subprocess tarfile tempfile textwrap threading tokenize "
        "traceback typing unittest urllib.request uuid warnings weakref zipfile zoneinfo"
    ).split()
    out, seen = [], set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in modules:
            module = importlib.import_module(name)
            members = [m for _, m in inspect.getmembers(module) if inspect.isclass(m) or inspect.isfunction(m)]
            for obj in [module, *members]:
                for para in re.split(r"\n\s*\n", inspect.getdoc(obj) or ""):
                    text = " ".join(para.split())
                    code = ">>>" in text or text.count("(") > 4 or "=" in text
                    if min_chars <= len(text) <= max_chars and not code and text not in seen:
                        seen.add(text)
                        out.append(text)
    return out


def package_messages(package: str, locale: str) -> list[tuple[str, str]]:
    """(English msgid, translation) of every translated message a Python package ships for ``locale`` (Django's UI
    strings, Sphinx's messages: real translations that the test dependencies install)."""
    import importlib.util

    root = Path(importlib.util.find_spec(package).submodule_search_locations[0])
    return [m for path in sorted(root.rglob(f"locale/{locale}/LC_MESSAGES/*.mo")) for m in mo_messages(path)]


def short_lines(texts, min_chars: int = 10, max_chars: int = 80) -> list[str]:
    """The distinct lines of ``texts`` that are ``min_chars``–``max_chars`` characters long."""
    seen: dict[str, None] = {}
    for text in texts:
        for line in text.splitlines():
            line = line.strip()
            if min_chars <= len(line) <= max_chars:
                seen.setdefault(line)
    return list(seen)


# Where the gettext catalogs come from: tests/text/locale (`tests/text/fetch-catalogs.sh`, run by `make test`:
# the catalogs of a fixed list of Debian packages, the same text on a slim image), else the machine's own.
FETCHED_LOCALES = REPO / "tests" / "text" / "locale"


def locale_dir() -> Path:
    return FETCHED_LOCALES if (FETCHED_LOCALES / ".complete").is_file() else Path("/usr/share/locale")


def gettext_messages(locale: str) -> list[tuple[str, str]]:
    """(English msgid, translation) of every translated message in <locale_dir>/<locale>/LC_MESSAGES/*.mo (real
    translated text of Debian packages: coreutils, apt, dpkg, glib, gtk, postgresql, ...; ISO code lists
    excluded)."""
    return [m for path in locale_catalogs(locale_dir(), locale) for m in mo_messages(path)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def make_recipe(tmp_path: Path, glob: str, steps: list | None = None, **extra) -> dict:
    recipe = {
        "name": extra.pop("name", "test"),
        "sources": [{"name": "src", "glob": glob, **extra.pop("source", {})}],
        "steps": steps or [],
        "output": {"path": str(tmp_path / "out")},
        "executor": extra.pop("executor", {"tasks": 1, "workers": 1}),
    }
    recipe.update(extra)
    return recipe


def shard_hashes(out: Path) -> dict[str, str]:
    """sha256 of every shard of an output folder: equal dicts mean byte-identical builds."""
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(out).glob("data-*-of-*.arrow"))}


def dedup_recipe(tmp_path: Path, executor: dict, folder: str):
    """A multi-stage recipe (a dedup step makes four chained stages) on the bundled sample, for executor tests."""
    import corpusforge as cf

    raw = make_recipe(
        tmp_path,
        "builtin:multilingual-sample.jsonl",
        steps=[{"normalize": {}}, {"dedup": {"num_buckets": 2}}, {"length": {"min_chars": 4}}],
        source={"id_field": "id"},
        executor=executor,
    )
    raw["output"]["path"] = str(tmp_path / folder)
    return cf.Recipe.from_dict(raw)


def run_processes(proc) -> dict[int, str]:
    """pid → command line of every process left of a run started with ``start_new_session=True``: the processes of
    its session, which is the run and everything it forked (worker pools, fork server, Manager), also once the run
    itself is gone; zombies (ended, not yet reaped) are not counted. Empty where there is no /proc to read."""
    left = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            ended = (entry / "stat").read_text().rpartition(")")[2].split()[0] == "Z"
            if os.getsid(int(entry.name)) == proc.pid and not ended:
                left[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            pass
    return left


def kill_run(proc) -> None:
    """SIGKILL to every process left of ``proc``'s run (see `run_processes`), so that no test leaves one behind."""
    for pid in run_processes(proc):
        with contextlib.suppress(OSError):  # gone meanwhile
            os.kill(pid, signal.SIGKILL)
    proc.wait()


def assert_run_left_nothing(proc, timeout: float = 5.0) -> None:
    """Within ``timeout`` seconds, no process of a killed run (started with ``start_new_session=True``) is left: each
    ends by itself when the run is gone. Leftovers are killed before the assertion fails."""
    proc.wait()
    deadline = time.monotonic() + timeout
    while (left := run_processes(proc)) and time.monotonic() < deadline:
        time.sleep(0.05)
    kill_run(proc)
    assert not left, f"{len(left)} process(es) of the killed run {proc.pid} left after {timeout} s: " + "; ".join(
        f"{pid} {cmd[:100]}" for pid, cmd in left.items()
    )


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs" shape: each level an anchored list of ``width`` aliases of the level before (9**9 leaves)."""
    rows = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    rows += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(["name: bomb", *rows, "output: {path: out}"]) + "\n"


def stdlib_source() -> list[str]:
    """The standard library's own modules (their test suites left out: test data is made of addresses), in pieces
    of 2,000 characters: real code, with its numbers, hex constants, versions and example addresses."""
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    pieces = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if {"site-packages", "test", "tests", "idle_test"} & set(parts):
            continue
        try:
            code = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        pieces += [code[i : i + 2000] for i in range(0, len(code), 2000)]
    return pieces


def pages_of(texts: list[str], rng: random.Random) -> list[str]:
    """Consecutive texts joined into pages of 300-3,000 characters (log-uniform), as a UI or help page reads: the
    pages the quality, pii and content tests and benchmarks measure."""
    pages, page, size, target = [], [], 0, 0
    for text in texts:
        if not page:
            target = int(math.exp(rng.uniform(math.log(300), math.log(3000))))
        page.append(text[:3000])
        size += len(page[-1]) + 1
        if size >= target:
            pages.append("\n".join(page))
            page, size = [], 0
    return pages


def labelled_sample(docs: list[tuple[str, str]], n_docs: int, rng: random.Random) -> tuple[list[str], dict[str, int]]:
    """``n_docs`` of ``(label, text)`` pairs, shuffled: their texts, and how many of each label were taken (the
    benchmarks' mixed inputs)."""
    docs = list(docs)
    rng.shuffle(docs)
    docs = docs[:n_docs]
    counts: dict[str, int] = {}
    for label, _ in docs:
        counts[label] = counts.get(label, 0) + 1
    return [text for _, text in docs], counts
