"""Rebuild the term lists of the `content` step that come from other packages (`content/ldnoobw.*.txt`,
`content/pythainlp.th.txt`), verbatim, one term per line under a header naming the source and its licence.

    npm pack naughty-words@1.2.0                      # the LDNOOBW lists (CC-BY-4.0), from the npm registry
    pip install pythainlp==5.4.0                      # Thai profanity (Apache-2.0)
    python corpusforge/data/build_content_terms.py naughty-words-1.2.0.tgz

Nothing is left out here: what the step does not use of them is in `content/exclude.<lang>.txt`, with the reason,
so that an update of a source shows as a diff of its file and the exclusions stay reviewable. The lists written by
us (`gambling.*`, `spam.*`, `adult.zh.txt`, `adult.th.txt`) are not made by this script. See content/README.md.
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
from importlib.metadata import version
from pathlib import Path

OUT = Path(__file__).with_name("content")
LDNOOBW_LANGUAGES = ("en", "zh", "th")


def write_list(path: Path, header: list[str], terms: list[str]) -> None:
    terms = list(dict.fromkeys(t.strip() for t in terms if t.strip()))
    body = [f"# {line}" if line else "#" for line in header] + terms
    path.write_text("\n".join(body) + "\n", encoding="utf-8")
    print(f"wrote {len(terms)} terms to {path}")


def ldnoobw(tgz: Path) -> None:
    with tarfile.open(tgz) as archive:
        package = json.load(archive.extractfile("package/package.json"))
        for lang in LDNOOBW_LANGUAGES:
            terms = json.load(io.TextIOWrapper(archive.extractfile(f"package/{lang}.json"), encoding="utf-8"))
            write_list(
                OUT / f"ldnoobw.{lang}.txt",
                [
                    f"List of Dirty, Naughty, Obscene, and Otherwise Bad Words (LDNOOBW), '{lang}': {lang}.json of",
                    f"the npm package {package['name']} {package['version']}, verbatim (a duplicate kept once).",
                    "(c) 2012-2020 Shutterstock, Inc. and contributors; licence CC-BY-4.0",
                    "(https://creativecommons.org/licenses/by/4.0/). Used by the content step minus",
                    f"content/exclude.{lang}.txt. Rebuilt by corpusforge/data/build_content_terms.py.",
                ],
                terms,
            )


def pythainlp_profanity() -> None:
    import pythainlp.corpus

    source = Path(pythainlp.corpus.__file__).with_name("profanity_th.txt")
    terms = [t for t in source.read_text(encoding="utf-8").splitlines() if not t.startswith("#")]
    write_list(
        OUT / "pythainlp.th.txt",
        [
            f"Thai profanity: pythainlp/corpus/profanity_th.txt of the PyPI package pythainlp {version('pythainlp')},",
            "verbatim (its header: SPDX-License-Identifier Apache-2.0, (c) PyThaiNLP Project). Used by the content step",
            "minus content/exclude.th.txt. Rebuilt by corpusforge/data/build_content_terms.py.",
        ],
        terms,
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("naughty_words", type=Path, help="the npm tarball of naughty-words (`npm pack naughty-words`)")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    ldnoobw(args.naughty_words)
    pythainlp_profanity()


if __name__ == "__main__":
    main()
