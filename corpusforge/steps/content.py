"""`content`: drop (or flag) web pages dense in adult, gambling or spam terms, and pages whose URL names such a site.

A rule is a language and a category: a page fires it when its terms of that category occur at least ``min_count``
times *and* at least ``density`` times per 1,000 characters. One mention in an ordinary page (a news item on a
casino, a novel's one oath) fires nothing; a gambling page that repeats ``บาคาร่า สล็อต แทงบอล`` in every line
does. The categories and where their terms come from (content/README.md says how each list was made):

- `adult`: the List of Dirty, Naughty, Obscene, and Otherwise Bad Words (LDNOOBW, the list C4 filters with; CC-BY-4.0,
  from the npm package naughty-words 1.2.0) for zh, th and en, pythainlp's Thai profanity list (Apache-2.0), and a
  few compounds of adult sites we add (成人影片, หนังโป๊). Less the terms in ``content/exclude.<lang>.txt``, each
  with its reason: single characters and words that are part of ordinary words (性 in 可能性, หี in หีบ), ordinary
  words and senses, medical and anatomical words (a health page is not adult content), crimes as the news reports
  them.
- `gambling` and `spam`: ours (no maintained, installable list exists): casino games, betting and the promotions of
  gambling sites; fake invoices, click farming, pharmacy and loan spam.

Chinese lists are written in one script; every Chinese term is also counted in the forms OpenCC converts it to
(Simplified, Traditional, Taiwan and Hong Kong standards: `s2t`, `s2tw`, `s2twp`, `s2hk`, `t2s`, `tw2s`, `tw2sp`,
`hk2s`), so one list covers zh_Hant and zh_Hans. Matching is case-insensitive; a term with Han, Thai or another
script written without spaces matches anywhere (there are no word boundaries to look for), any other term only as
whole words (``poker`` not in ``pokerstars`` nor ``poker_face``; ``pg slot`` across any run of spaces). All terms
of a language are one regular expression, one pass per document: an alternative per first character, each a trie
of the rest (see `terms_pattern`). Thai text
and terms are read with the decomposed sara am (``ํา``, as LDNOOBW writes it) as ``ำ``.

A document's language is its ``language`` metadata (the `language` step's; ``zh_Hant``/``zh_Hans`` read as ``zh``),
else what the script census settles (`lang.scripts`), else English. A language without lists (``ja``, ``fr``) is
matched against the extra terms given without a language only.

URL rules (``url_patterns``) are regular expressions on the document's URL (the ``url`` field, when a source
carries it: ``fields: [url]``), percent-decoded, case-insensitive; one match fires. The defaults look at the host
only (``ufabet168.com``, ``pornhub.com``): a path names a topic (``/wiki/Casino_Royale``), a host names a site.

Funnel reasons: ``content_<category>`` (terms) and ``content_url_<category>`` (URL); with ``action: flag`` nothing is
dropped, the reasons go to ``metadata["content_flags"]`` and the counts to the funnel row's ``counts``.
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from pydantic import Field, field_validator, model_validator

from corpusforge.config import StrictModel
from corpusforge.config.yaml import load_yaml, yaml_problem
from corpusforge.data import builtin_data_dir
from corpusforge.lang.names import base_language, check_language
from corpusforge.lang.scripts import HAN, UNSPACED, census, opencc_converter, settle

CATEGORIES: tuple[str, ...] = ("adult", "gambling", "spam")
LANGUAGES: tuple[str, ...] = ("zh", "th", "en")
DATA = builtin_data_dir() / "content"
# category → language → the shipped lists (files under DATA), each less DATA/exclude.<language>.txt
SHIPPED: dict[str, dict[str, tuple[str, ...]]] = {
    "adult": {
        "zh": ("ldnoobw.zh.txt", "adult.zh.txt"),
        "th": ("ldnoobw.th.txt", "pythainlp.th.txt", "adult.th.txt"),
        "en": ("ldnoobw.en.txt",),
    },
    "gambling": {lang: (f"gambling.{lang}.txt",) for lang in LANGUAGES},
    "spam": {lang: (f"spam.{lang}.txt",) for lang in LANGUAGES},
}
# the OpenCC conversions a Chinese term is also counted in
CHINESE_FORMS = ("s2t", "s2tw", "s2twp", "s2hk", "t2s", "tw2s", "tw2sp", "hk2s")

# the host of a URL: what the default URL rules look at
_HOST = r"^[a-z][a-z0-9+.\-]*://[^/?#]*?"
DEFAULT_URL_PATTERNS: dict[str, list[str]] = {
    "adult": [_HOST + r"(?<![a-z])(?:porn|xxx|xvideos|xnxx|xhamster|redtube|youporn|hentai|sexcam|camgirl)"],
    "gambling": [_HOST + r"(?<![a-z])(?:casino|baccarat|bacara|sportsbook|ufabet|sbobet|pgslot|slotxo|1xbet|bet365)"],
}
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
# letters, digits and `_` a whole-word term must not touch (the text is lowercased first)
_WORD_CHAR = r"0-9a-z_\u00c0-\u024f"
_WORD_START = re.compile(f"[{_WORD_CHAR}]")


# ------------------------------------------------------------------------------------------------ term lists
def read_terms(path: Path) -> list[str]:
    """The terms of a list file: one a line, blank lines and ``#`` comments left out."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def term_key(term: str) -> str:
    """How a term (or a text) is compared: lowercase, whitespace runs as one space, Thai sara am composed."""
    key = " ".join(term.lower().split())
    return key.replace("\u0e4d\u0e32", "\u0e33") if "\u0e4d" in key else key


def term_forms(term: str) -> set[str]:
    """``term``'s key, and for Chinese the keys of its OpenCC conversions (both scripts, Taiwan and Hong Kong)."""
    key = term_key(term)
    if HAN.search(key) is None:
        return {key}
    return {key} | {term_key(opencc_converter(config).convert(key)) for config in CHINESE_FORMS}


def shipped_terms(categories: tuple[str, ...] | list[str]) -> dict[str, dict[str, list[str]]]:
    """language → category → the shipped terms (their keys, in every Chinese form), exclusions taken out."""
    out: dict[str, dict[str, list[str]]] = {}
    for lang in LANGUAGES:
        excluded = {k for t in read_terms(DATA / f"exclude.{lang}.txt") for k in term_forms(t)}
        for category in categories:
            keys = [k for f in SHIPPED[category].get(lang, ()) for t in read_terms(DATA / f) for k in term_forms(t)]
            out.setdefault(lang, {})[category] = sorted({k for k in keys if k not in excluded})
    return out


def read_extra_terms(path: str | Path, category: str) -> dict[str, dict[str | None, list[str]]]:
    """category → language (None: every language) → terms, from a recipe's ``extra_terms`` file: ``.txt``, one term a
    line, all of ``category``; ``.yaml``/``.yml``/``.json``, a mapping of categories to a list of terms (every
    language) or to a mapping of languages to lists. Raises ValueError naming what is wrong."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"term file '{path}' does not exist (cwd={Path.cwd()})")
    if path.suffix == ".txt":
        return {category: {None: read_terms(path)}}
    if path.suffix not in (".yaml", ".yml", ".json"):
        raise ValueError(f"term file '{path}': a .txt list or a .yaml/.yml/.json mapping, got '{path.suffix}'")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else load_yaml(text, lines=False)[0]
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from None
    except Exception as err:  # yaml.YAMLError, a refused budget
        raise ValueError(f"{path}: {yaml_problem(err)}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a mapping of categories to terms, got a {type(data).__name__}")
    out: dict[str, dict[str | None, list[str]]] = {}
    for cat, value in data.items():
        if not isinstance(cat, str) or not _NAME.match(cat):
            raise ValueError(f"{path}: category '{cat}' is not a lowercase name (letters, digits, _)")
        by_language = value if isinstance(value, dict) else {None: value}
        for lang, terms in by_language.items():
            if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
                where = cat if lang is None else f"{cat}.{lang}"
                raise ValueError(f"{path}: '{where}' must be a list of strings")
            try:
                key = None if lang is None else base_language(check_language(str(lang)))
            except ValueError as err:
                raise ValueError(f"{path}: '{cat}.{lang}': {err}") from None
            out.setdefault(cat, {}).setdefault(key, []).extend(t.strip() for t in terms if t.strip())
    return out


# ------------------------------------------------------------------------------------------------ matching
def trie_pattern(keys: list[str]) -> str:
    """One regular expression matching any of ``keys``, the longest first, written as a trie so that the terms
    sharing a prefix share its test; a space in a key matches any run of whitespace."""
    trie: dict = {}
    for key in keys:
        node = trie
        for c in key:
            node = node.setdefault(c, {})
        node[""] = {}

    def atom(c: str) -> str:
        return r"\s+" if c == " " else re.escape(c)

    def emit(node: dict) -> str:
        kids = [(c, n) for c, n in node.items() if c]
        leaves = [c for c, n in kids if list(n) == [""] and c != " "]
        parts = [atom(c) + emit(n) for c, n in kids if c not in leaves]
        if leaves:
            parts.append(re.escape(leaves[0]) if len(leaves) == 1 else f"[{''.join(map(re.escape, leaves))}]")
        body = parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(trie) if trie else ""


def terms_pattern(keys: list[str]) -> str:
    """One regular expression for all ``keys``: a term of a script written without spaces (or with no letter or
    digit at either end) matches anywhere, any other only where it does not touch another letter or digit.

    Every alternative of the top level starts with a plain character (the term's first): the regular-expression
    engine then skips every position whose character starts no term (most of a page) without trying the
    alternatives there, ten times faster on Chinese pages than one trie under one group. The word boundary before a
    term is therefore tested after its first character, looking back over it."""
    groups: dict[str, dict[tuple[bool, bool], list[str]]] = {}
    for key in keys:
        first, last = bool(_WORD_START.match(key)), bool(_WORD_START.match(key[-1]))
        if UNSPACED.search(key) or not (first or last):
            first = last = False
        groups.setdefault(key[0], {}).setdefault((first, last), []).append(key[1:])
    alternatives = []
    for c, by_edges in sorted(groups.items()):
        parts = []
        for (left, right), rests in sorted(by_edges.items(), reverse=True):
            body = trie_pattern(sorted(r for r in rests if r))
            if body and "" in rests:
                body = f"(?:{body})?"
            parts.append((f"(?<![{_WORD_CHAR}].)" if left else "") + body + (f"(?![{_WORD_CHAR}])" if right else ""))
        alternatives.append(re.escape(c) + (parts[0] if len(parts) == 1 else f"(?:{'|'.join(parts)})"))
    return "|".join(alternatives)


class TermMatcher:
    """The terms of one language, as one regular expression, and each term's category."""

    def __init__(self, terms: dict[str, list[str]]):
        self.category: dict[str, str] = {}
        for category, keys in terms.items():
            for key in keys:
                self.category.setdefault(key, category)  # a term in two lists counts for the first
        self.pattern = re.compile(terms_pattern(list(self.category))) if self.category else None

    def counts(self, text: str) -> dict[str, int]:
        """Occurrences per category in ``text`` (not overlapping, the longest term first)."""
        if self.pattern is None:
            return {}
        text = text.lower()
        if "\u0e4d" in text:
            text = text.replace("\u0e4d\u0e32", "\u0e33")
        counts: dict[str, int] = {}
        for m in self.pattern.finditer(text):
            found = m.group()
            category = self.category.get(found) or self.category[" ".join(found.split())]
            counts[category] = counts.get(category, 0) + 1
        return counts


# ------------------------------------------------------------------------------------------------ parameters
class ContentRule(StrictModel):
    """When a category's terms fire, for one category or one language's category; unset fields take the step's
    `min_count` and `density`."""

    min_count: int | None = Field(None, ge=1, description="Occurrences of the category's terms at least.")
    density: float | None = Field(None, ge=0, description="Occurrences per 1,000 characters at least.")


class ContentParams(StrictModel):
    """Web-crawl hygiene: pages dense in adult, gambling or spam terms dropped (or flagged), per language (zh — both
    scripts, th, en), and pages whose URL host names such a site. A category fires when its terms occur at least
    `min_count` times and at least `density` times per 1,000 characters: one mention in an ordinary page fires
    nothing. Terms: LDNOOBW (CC-BY-4.0) and pythainlp's Thai profanity (Apache-2.0) for `adult`, less the terms that
    are part of ordinary words or ordinary, medical or news words (each list of exclusions with its reasons); ours
    for `gambling` and `spam`; Chinese terms counted in both scripts through OpenCC. Lists, sources and how they
    were made: corpusforge/data/content/README.md; keep and drop rates on real text: docs/benchmarks.md. Funnel
    reasons `content_<category>` and `content_url_<category>`.

    ```yaml
    - language: {keep: [zh_Hant, th]}      # first: the content step reads its `language`
    - content:
        rules: {th.gambling: {density: 1}}
        extra_terms: terms/ours.yaml       # gambling: {th: [...]}, scam: [...] (every language)
    ```"""

    action: Literal["drop", "flag"] = Field(
        "drop",
        description="`drop`: a page that fires a rule is dropped, reason `content_<category>` (the category with the "
        "highest density) or `content_url_<category>`. `flag`: kept, with the reasons in `metadata.content_flags`.",
    )
    categories: list[Literal["adult", "gambling", "spam"]] = Field(
        list(CATEGORIES), description="Shipped term lists to use (the categories of `extra_terms` are added)."
    )
    min_count: int = Field(3, ge=1, description="Occurrences of a category's terms at least, for every rule.")
    density: float = Field(
        2.0, ge=0, description="Occurrences of a category's terms per 1,000 characters at least, for every rule."
    )
    rules: dict[str, ContentRule] = Field(
        {},
        description="Thresholds per category (`gambling: {density: 1}`) or per language and category "
        "(`th.gambling: {min_count: 5}`; the most specific wins).",
    )
    extra_terms: str | None = Field(
        None,
        description="A file of more terms: `.txt`, one term a line (`#` comments), all of `extra_category`; or "
        "`.yaml`/`.json`, categories mapped to a list of terms (every language) or to languages mapped to lists "
        "(`gambling: {th: [...], zh: [...]}`). A new category name makes a new rule. Its content is fingerprinted "
        "with the build's inputs.",
    )
    extra_category: str = Field("custom", description="The category of the terms of a `.txt` `extra_terms` file.")
    url_patterns: dict[str, list[str]] = Field(
        DEFAULT_URL_PATTERNS,
        description="Category → regular expressions searched in the document's URL (percent-decoded, "
        "case-insensitive); one match fires `content_url_<category>`. The default looks at the host for a few "
        "adult and gambling site names; `{}` turns URL rules off.",
    )
    url_field: str = Field("url", description="The metadata field holding the URL (a source's `fields: [url]`).")

    @field_validator("categories")
    @classmethod
    def _once_each(cls, categories: list[str]) -> list[str]:
        return list(dict.fromkeys(categories))

    @field_validator("extra_category")
    @classmethod
    def _category_name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"category '{name}' is not a lowercase name (letters, digits, _)")
        return name

    @field_validator("url_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: dict[str, list[str]]) -> dict[str, list[str]]:
        for category, regexes in patterns.items():
            if not _NAME.match(category):
                raise ValueError(f"category '{category}' is not a lowercase name (letters, digits, _)")
            for rx in regexes:
                try:
                    re.compile(rx)
                except re.error as err:
                    raise ValueError(f"{category}: '{rx}' is not a regular expression: {err}") from None
        return patterns

    @model_validator(mode="after")
    def _extra_terms_and_rules(self) -> ContentParams:
        known = set(self.categories)
        if self.extra_terms is not None:
            known |= set(read_extra_terms(self.extra_terms, self.extra_category))
        for key in self.rules:
            lang, _, category = key.rpartition(".")
            if category not in known:
                raise ValueError(f"rules: '{key}' names no category in use (categories: {sorted(known)})")
            if lang and (check_language(lang) != base_language(lang)):
                raise ValueError(
                    f"rules: '{key}': a rule is per language without its script ('{base_language(lang)}')"
                )
        return self

    def input_files(self) -> list[str]:
        return [self.extra_terms] if self.extra_terms is not None else []

    def rule(self, language: str, category: str) -> tuple[int, float]:
        """(min_count, density) of a language's category."""
        min_count, density = self.min_count, self.density
        for key in (category, f"{language}.{category}"):
            rule = self.rules.get(key)
            if rule is not None:
                min_count = rule.min_count if rule.min_count is not None else min_count
                density = rule.density if rule.density is not None else density
        return min_count, density


# ------------------------------------------------------------------------------------------------ the step
class Content(PipelineStep):
    type = "🔻 - FILTER"
    name = "content"

    def __init__(self, params: ContentParams):
        super().__init__()
        self.params = params
        self.url_rules = [
            (category, re.compile(rx, re.IGNORECASE)) for category, rxs in params.url_patterns.items() for rx in rxs
        ]

    @cached_property
    def matchers(self) -> dict[str | None, TermMatcher]:
        """language → its matcher; None: the matcher of any other language (the extra terms without a language).
        Built on first use, in the worker (the lists, OpenCC's conversions, the expressions)."""
        terms = shipped_terms(self.params.categories)
        shared: dict[str, list[str]] = {}
        if self.params.extra_terms is not None:
            for category, by_language in read_extra_terms(self.params.extra_terms, self.params.extra_category).items():
                for lang, words in by_language.items():
                    keys = sorted({k for w in words for k in term_forms(w)})
                    target = shared if lang is None else terms.setdefault(lang, {})
                    target.setdefault(category, []).extend(keys)
        for by_category in terms.values():
            for category, keys in shared.items():
                by_category.setdefault(category, []).extend(keys)
        matchers: dict[str | None, TermMatcher] = {lang: TermMatcher(cats) for lang, cats in terms.items()}
        matchers[None] = TermMatcher(shared)
        return matchers

    def language(self, doc: Document) -> str:
        lang = doc.metadata.get("language")
        if not isinstance(lang, str):
            head = doc.text[:20_000]
            settled = settle(head, census(head))
            lang = settled[0] if settled else "en"
        return base_language(lang)

    def reasons(self, doc: Document) -> list[str]:
        """The rules ``doc`` fires: ``url_<category>`` first, then term categories, the densest first."""
        fired = []
        url = doc.metadata.get(self.params.url_field)
        if isinstance(url, str) and url:
            url = unquote(url)
            fired += list(dict.fromkeys(f"url_{c}" for c, rx in self.url_rules if rx.search(url)))
            if fired and self.params.action == "drop":
                return fired
        lang = self.language(doc)
        counts = self.matchers.get(lang, self.matchers[None]).counts(doc.text)
        size = max(len(doc.text), 1)
        dense = []
        for category, n in counts.items():
            min_count, density = self.params.rule(lang, category)
            if n >= min_count and n * 1000 / size >= density:
                dense.append((-n, category))
        return fired + [category for _, category in sorted(dense)]

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        # counted in local counters, as the language step does: a stat update per document costs about as much as
        # the matching of a short one
        drop = self.params.action == "drop"
        total = forwarded = 0
        tallies: dict[str, int] = {}
        try:
            with self.track_time("run"):
                for doc in data:
                    total += 1
                    fired = self.reasons(doc)
                    if fired:
                        if drop:
                            key = f"dropped_content_{fired[0]}"
                            tallies[key] = tallies.get(key, 0) + 1
                            continue
                        doc.metadata["content_flags"] = fired
                        for reason in fired:
                            tallies[f"count_{reason}"] = tallies.get(f"count_{reason}", 0) + 1
                    forwarded += 1
                    yield doc
        finally:
            self.stat_update("total", value=total)
            self.stat_update("forwarded", value=forwarded)
            if total > forwarded:
                self.stat_update("dropped", value=total - forwarded)
            for key, count in tallies.items():
                self.stat_update(key, value=count)
