"""`decontaminate`: drop (or flag) documents that share a long n-gram with an evaluation set, so that no benchmark
question (nor its answer) is trained on.

Both sides are normalised alike — Unicode NFKC (full-width forms, compatibility ideographs), case-folded — and cut
into *units*: a run of letters, marks and digits of a spaced script is one unit (a word); each character of a script
written without spaces (`lang.scripts.UNSPACED_RANGES`: Han, kana, Hangul; Thai, Lao, Khmer, Myanmar) is one unit;
spacing, punctuation and symbols only separate units. So a changed comma, case, width or spacing changes no unit,
and a changed word changes one (or, in Chinese or Thai, a few).

How many units make an n-gram depends on the script, because a unit does not carry the same in each: a word, a
Han character (about two thirds of a word), a Thai character (a letter, vowel or tone mark: 4.8 to a word in the
Debian catalogs). `n` gives the size for each: 13 words (GPT-3's decontamination; datatrove's default is 12),
25 CJK characters, 50 Thai characters (about 10 words). A run of units is an n-gram once its units add up to one —
a word counting 1/13, a CJK character 1/25, a Thai one 1/50 — at the shortest of the three sizes, so text that mixes
scripts (Chinese help text with English options, Thai with `%s`) is measured by what it holds: 13 Han characters in
an English item are no n-gram of it. The choice at each unit depends only on the units that follow, so a copy of an
item's run in a document is cut alike, whatever the rest of either.

The sizes are measured (`benchmarks/bench_decont.py --sweep`; docs/benchmarks.md): on real documents that share no
text with the eval items, Thai 25-character runs flag 0.08 % and 30 0.02 %, 35 and more none; CJK 10-character runs
0.66 %, 15 and more none. Against pages of *other Debian catalogs* (the same software: shared translations, and
phrases such as `ไม่สามารถจองหน่วยความจำสำหรับ`, "cannot allocate memory for"), Thai 25 flags 25 % of pages, 40
1.4 %, 50 none; CJK 20 4.3 %, 25 1.6 % — what is left there are real copies (the GNU licence notice, `Written by
%s, %s…`). Each default sits where that curve flattens: a smaller n flags real documents, a larger one misses more
edited items (a word changed in an item is survived only where an n-gram of it is left: items of 2n + 1 units and
more keep one wherever the change is).

An item with no n-gram of its own (shorter than n) is matched whole — its complete run of units — if its units add up
to one at the `min_length` sizes (8 words as GPT-3's minimum, 15 CJK and 30 Thai characters); shorter items never
flag anything (a prompt like "hi", or "Are toads frogs?", is in any large crawl).

Eval sets are local files, `datasets` folders (a corpusforge build among them: chat `messages` give their user
turns, so a KD build's prompts can be one), Hub datasets (pinned to a commit at plan time, `pinning`), or the
scorecard's shipped prompt sets (`corpusforge.data.shipped_prompts`). Their files are the step's ``input_files()``:
the plan fingerprints them with the sources, so a changed eval set makes a resume refuse.

The index is built in each worker when its first document arrives (a step pickles to the workers without it): every
n-gram hashed to 64 bits (a polynomial hash over units, each unit's over its code points; fixed constants, so every
run and worker computes the same), in a sorted numpy array with the set of each, behind a bitmap that settles most
lookups with one memory read: 10⁵ real items take 7 MB and 5 s.

Counters: ``count_contaminated`` (documents that matched) and ``count_in_<set>``; with ``action: drop`` the drop
reason is ``contaminated``. The set and the n-gram (normalised) go to ``metadata["contaminated"]``: in the row with
``action: flag``; for a dropped document, into the task log (DEBUG, ``.corpusforge/…/logs/task_*.log``) with its id,
and onto the document a datatrove exclusion writer receives.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.utils.logging import logger
from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from corpusforge.config import StrictModel
from corpusforge.data import SHIPPED_PROMPT_FIELD, shipped_languages, shipped_prompts
from corpusforge.errors import SourceError
from corpusforge.lang.scripts import ALPHABETS, UNSPACED_RANGES
from corpusforge.pinning import is_hub_id
from corpusforge.sources.files import file_format, iter_rows, plain_name

KINDS = ("words", "cjk", "thai")
THAI_LIKE = ("th", "lo", "km", "my")  # the alphabets of `lang.scripts` written without spaces


# ------------------------------------------------------------------------------------------------ units
_SEPARATOR, _WORD, _CJK, _THAI = 0, 1, 2, 3
_TABLE_SIZE = 0x31350  # to the end of CJK Extension G, as the census; above it: separators


@cache
def unit_table() -> np.ndarray:
    """Code point → separator, word character, CJK character or Thai-like character: letters, marks and digits are
    word characters, those of the unspaced scripts (`lang.scripts.UNSPACED_RANGES`) a unit each (built once per
    process)."""
    table = np.zeros(_TABLE_SIZE + 1, dtype=np.uint8)
    for cp in range(_TABLE_SIZE):
        if unicodedata.category(chr(cp))[0] in "LMN":
            table[cp] = _WORD
    unspaced = np.zeros_like(table, dtype=bool)
    for lo, hi in UNSPACED_RANGES:
        unspaced[lo : hi + 1] = True
    unspaced &= table == _WORD
    thai_like = np.zeros_like(unspaced)
    for lo, hi in (r for lang in THAI_LIKE for r in ALPHABETS[lang]):
        thai_like[lo : hi + 1] = True
    table[unspaced] = _CJK  # Han, kana, Hangul
    table[unspaced & thai_like] = _THAI
    table[_TABLE_SIZE] = _SEPARATOR
    return table


def normalize(text: str) -> str:
    """What both sides are compared as: NFKC, case-folded."""
    if text.isascii():  # NFKC leaves ASCII as it is
        return text.lower()
    return unicodedata.normalize("NFKC", text).casefold()


_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_SEED = np.uint64(0x632BE59BD9B4E019)
_CHAR_BASE, _UNIT_BASE = 0x100000001B3, 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, element-wise (uint64 arithmetic wraps modulo 2**64)."""
    x = x ^ (x >> _S30)
    x = x * _M1
    x = x ^ (x >> _S27)
    x = x * _M2
    return x ^ (x >> _S31)


_POWERS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _powers(base: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """base**i and base**-i modulo 2**64 for i < n (grown as needed, kept per process)."""
    have = _POWERS.get(base)
    if have is None or len(have[0]) < n:
        size = max(n, 4096, 2 * len(have[0]) if have else 0)
        out = []
        for b in (base, pow(base, -1, 1 << 64)):
            a = np.full(size, b, dtype=np.uint64)
            a[0] = 1
            out.append(np.cumprod(a, dtype=np.uint64))
        _POWERS[base] = have = (out[0], out[1])
    return have[0][:n], have[1][:n]


class Units:
    """A text cut into units: where each starts and ends in the normalised text, its class, its 64-bit hash, and
    the prefix sums that hash any run of units in O(1) (``window``)."""

    __slots__ = ("classes", "ends", "hashes", "norm", "starts", "_prefix")

    def __init__(self, text: str):
        self.norm = normalize(text)
        points = np.frombuffer(self.norm.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        cls = unit_table()[np.minimum(points, _TABLE_SIZE)]
        word = cls == _WORD
        unspaced = cls > _WORD
        before = np.zeros_like(word)
        before[1:] = word[:-1]
        after = np.zeros_like(word)
        after[:-1] = word[1:]
        self.starts = np.flatnonzero(unspaced | (word & ~before))
        self.ends = np.flatnonzero(unspaced | (word & ~after)) + 1
        self.classes = cls[self.starts]
        n = len(points)
        up, down = _powers(_CHAR_BASE, n + 1)
        prefix = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum(_mix(points.astype(np.uint64) + _SEED) * down[:n], out=prefix[1:])
        # a unit's hash: sum of its characters' values times base**(distance to its end), whatever its position
        self.hashes = _mix((prefix[self.ends] - prefix[self.starts]) * up[self.ends - 1])
        self._prefix = None

    def __len__(self) -> int:
        return len(self.starts)

    def _unit_prefix(self) -> np.ndarray:
        if self._prefix is None:
            n = len(self.starts)
            self._prefix = np.zeros(n + 1, dtype=np.uint64)
            np.cumsum(self.hashes * _powers(_UNIT_BASE, n + 1)[1][:n], out=self._prefix[1:])
        return self._prefix

    def windows(self, size: int, first: np.ndarray | None = None) -> np.ndarray:
        """The hash of every run of ``size`` units, in order (empty when the text has fewer); of the runs starting
        at ``first`` only, when given."""
        prefix, up = self._unit_prefix(), _powers(_UNIT_BASE, len(self.starts) + 1)[0]
        if first is None or (len(first) and first[-1] - first[0] + 1 == len(first)):  # a range: slices, no gathers
            lo = 0 if first is None else int(first[0])
            count = max(len(self.starts) - size + 1, 0) if first is None else len(first)
            runs = (prefix[lo + size : lo + size + count] - prefix[lo : lo + count]) * up[
                lo + size - 1 : lo + size - 1 + count
            ]
            return _mix(runs + np.uint64(size))
        last = first + size
        return _mix((prefix[last] - prefix[first]) * up[last - 1] + np.uint64(size))

    def text(self, first: int, size: int) -> str:
        """The normalised text of units ``first … first + size - 1``, spacing collapsed."""
        return " ".join(self.norm[self.starts[first] : self.ends[first + size - 1]].split())


# ------------------------------------------------------------------------------------------------ eval sets
def _strings(value: Any) -> list[str]:
    """The texts a field value holds: a string; the strings of a list or mapping; of chat messages (`{role,
    content}`), the user turns."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        if "role" in value and "content" in value:
            return [value["content"]] if value["role"] == "user" and isinstance(value["content"], str) else []
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def item_text(record: dict, fields: list[str]) -> str:
    """One eval item: the texts of ``fields`` in their order, a line each."""
    return "\n".join(s for name in fields for s in _strings(record.get(name)))


def _plain_name(path: str) -> str:
    return Path(plain_name(path)).stem


def read_records(path: str, fields: list[str], bad: list[str] | None = None) -> Iterator[dict]:
    """The records of an eval-set file, read as a source's are (`sources.files.iter_rows`: jsonl, json (an array of
    records, or lines), csv/tsv, parquet, Arrow; txt: ``{"text": line}``). Rows that cannot be read are skipped and
    described in ``bad``."""
    bad = [] if bad is None else bad
    rows = iter_rows(path, file_format(path), lambda reason, where, message: bad.append(f"{where}: {message}"),
                     columns=fields)  # fmt: skip
    yield from (row for _, _, row in rows)


class _EvalSetBase(StrictModel):
    name: str | None = Field(
        None,
        description="The set's name in counts and metadata; default: the file's or dataset's, `scorecard-<code>`.",
    )


class FileEvalSet(_EvalSetBase):
    """A local file: jsonl/json (an array or lines), csv/tsv, parquet, Arrow, txt (an item a line); compressed too."""

    file: str = Field(..., description="Path of the file.")
    fields: list[str] | None = Field(
        None,
        min_length=1,
        description="Fields whose texts make one item, joined in this order (strings, lists of strings, chat "
        "`messages`: their user turns). Required except for txt; e.g. `[question, choices]`.",
    )

    @model_validator(mode="after")
    def _readable(self):
        path = self.file
        if not Path(path).expanduser().is_file():
            raise ValueError(f"file: '{path}' does not exist (cwd={Path.cwd()})")
        try:
            fmt = file_format(path)
        except SourceError:
            raise ValueError(
                f"file: cannot tell the format of '{path}' from its extension (jsonl, json, csv, tsv, parquet, "
                "arrow, txt)"
            ) from None
        if fmt == "txt":
            if self.fields not in (None, ["text"]):
                raise ValueError("fields: a txt file has no fields (each line is an item); remove `fields`")
            self.fields = ["text"]
            return self
        bad: list[str] = []
        try:
            first = next(read_records(path, self.fields or [], bad), None)
        except Exception as err:  # bad UTF-8, not parquet …
            raise ValueError(f"file: '{path}' cannot be read as {fmt}: {type(err).__name__}: {err}") from None
        if first is None:
            raise ValueError(f"file: '{path}' holds no readable record" + (f" ({bad[0]})" if bad else ""))
        names = list(first)
        if self.fields is None:
            raise ValueError(
                f"fields: name the fields that hold an item's text (the first record of '{path}' has {names})"
            )
        missing = [f for f in self.fields if f not in names]
        if missing:
            raise ValueError(f"fields: no field {missing[0]!r} in the first record of '{path}' (fields: {names[:12]})")
        return self

    @property
    def label(self) -> str:
        return self.name or _plain_name(self.file)

    def items(self, bad: list[str]) -> Iterator[str]:
        for record in read_records(self.file, self.fields or ["text"], bad):
            yield item_text(record, self.fields or ["text"])

    def files(self) -> list[str]:
        return [self.file]


class HFEvalDataset(StrictModel):
    path: str = Field(..., description="A local folder (`save_to_disk`, or data files) or a Hub dataset id.")
    name: str | None = Field(None, description="Dataset config name.")
    split: str = Field("test", description="Split (or split expression) holding the items.")
    revision: str | None = Field(None, description="A Hub dataset's revision; the build pins it to a commit sha.")


@cache
def _columns(path: str, name: str | None, split: str) -> list[str]:
    """Column names of a local `datasets` folder's split (opened once per process)."""
    from corpusforge.sources.hf import open_dataset

    ds = open_dataset({"path": path, "name": name, "split": split}, streaming=True)
    return list(ds.column_names or next(iter(ds)).keys())


class HFEvalSet(_EvalSetBase):
    """A `datasets` dataset: a local folder, or a Hub id (pinned to its commit at plan time)."""

    hf: HFEvalDataset
    fields: list[str] = Field(..., min_length=1, description="Columns whose texts make one item, as for a file.")

    @model_validator(mode="after")
    def _exists(self):
        from corpusforge.sources.hf import is_builder

        path = self.hf.path
        if is_builder(path):
            raise ValueError(f"hf.path: '{path}' is a `datasets` builder; give the file itself as `file:`")
        if not Path(path).expanduser().exists():
            if not is_hub_id(path):
                raise ValueError(
                    f"hf.path: '{path}' is neither a local folder nor a Hub dataset id (cwd={Path.cwd()})"
                )
            return self  # a Hub dataset: its columns are known once it is downloaded
        try:
            names = _columns(path, self.hf.name, self.hf.split)
        except Exception as err:
            raise ValueError(f"hf.path: cannot open dataset '{path}': {type(err).__name__}: {err}") from None
        missing = [f for f in self.fields if f not in names]
        if missing:
            raise ValueError(f"fields: no column {missing[0]!r} in dataset '{path}' (columns: {names[:12]})")
        return self

    @property
    def label(self) -> str:
        path = self.hf.path
        return self.name or (Path(path).name if Path(path).expanduser().exists() else path)

    def _spec(self) -> dict:
        return {**self.hf.model_dump(), "streaming": False}

    def items(self, bad: list[str]) -> Iterator[str]:
        from corpusforge.sources.hf import open_dataset

        for record in open_dataset(self._spec()):
            yield item_text(record, self.fields)

    def files(self) -> list[str]:
        """The local files `datasets` reads for this set (a Hub dataset: none; its pinned revision is in the
        recipe)."""
        from corpusforge.sources.hf import data_files, saved_files, saved_folder

        spec = self._spec()
        if not Path(spec["path"]).expanduser().exists():
            return []
        folder = saved_folder(spec)
        if folder is not None:
            return saved_files(folder)
        by_split = data_files(spec)
        split = spec["split"].split("[")[0]
        return list(by_split.get(split) or [f for files in by_split.values() for f in files])


class ShippedEvalSet(_EvalSetBase):
    """A prompt set `corpusforge eval scorecard` ships (`corpusforge/data/prompts/<code>.jsonl`)."""

    shipped: str = Field(..., description="Its language code: `en`.")

    @field_validator("shipped")
    @classmethod
    def _known(cls, code: str) -> str:
        if shipped_prompts(code) is None:
            raise ValueError(f"corpusforge ships no prompt set '{code}' (it ships: {', '.join(shipped_languages())})")
        return code

    @property
    def label(self) -> str:
        return self.name or f"scorecard-{self.shipped}"

    def items(self, bad: list[str]) -> Iterator[str]:
        for record in read_records(self.files()[0], [SHIPPED_PROMPT_FIELD], bad):
            yield item_text(record, [SHIPPED_PROMPT_FIELD])

    def files(self) -> list[str]:
        return [str(shipped_prompts(self.shipped))]


class _EvalSetKind:
    """Which kind an eval set is, by its key (a class with a fixed repr: the recipe docs print the type)."""

    __name__ = "eval_set_kind"

    def __call__(self, value: Any) -> str:
        if isinstance(value, dict):
            return "<hf>" if "hf" in value else "<shipped>" if "shipped" in value else "<file>"
        return {HFEvalSet: "<hf>", ShippedEvalSet: "<shipped>"}.get(type(value), "<file>")

    def __repr__(self) -> str:
        return "eval set kind"


EvalSet = Annotated[
    Annotated[FileEvalSet, Tag("<file>")]
    | Annotated[HFEvalSet, Tag("<hf>")]
    | Annotated[ShippedEvalSet, Tag("<shipped>")],
    Discriminator(_EvalSetKind()),
]


class Sizes(StrictModel):
    words: int = Field(..., ge=1, le=200)
    cjk: int = Field(..., ge=1, le=400)
    thai: int = Field(..., ge=1, le=400)


class DecontaminateParams(StrictModel):
    """Documents sharing a long n-gram with an evaluation set dropped (reason `contaminated`) or flagged
    (`metadata.contaminated = {set, ngram}`). Both sides NFKC-normalised and case-folded; spacing and punctuation
    ignored. An n-gram is 13 words, 25 CJK characters or 50 Thai characters (Lao, Khmer and Myanmar count as Thai),
    or a run mixing them whose parts add up to one; an item with no n-gram is matched whole if it reaches
    `min_length`, and shorter items never flag. The eval sets' files are fingerprinted with the build's inputs (a
    changed eval set makes a resume refuse); Hub datasets are pinned to a commit. How the sizes were chosen, recall
    and false positives on real text: the `corpusforge.steps.decontaminate` docstring and docs/benchmarks.md.

    ```yaml
    - decontaminate:
        eval_sets:
          - shipped: en                                  # the scorecard's English prompts
          - file: data/exam-th.jsonl
            fields: [question, choices]
          - hf: {path: out/transllm-th-kd, split: train} # a KD build: its prompts (user turns)
            fields: [messages]
    ```
    """

    eval_sets: list[EvalSet] = Field(
        ...,
        min_length=1,
        description="Each `{file: PATH, fields: [...]}` (jsonl, json, csv/tsv, parquet, Arrow; txt: a line an item, "
        "no `fields`), `{hf: {path, name, split, revision}, fields: [...]}` (a local `datasets` folder or "
        "corpusforge build, or a Hub dataset id) or `{shipped: en}` (the scorecard's prompt set); optional `name` "
        "(default: the file's name, the dataset, `scorecard-<code>`). `fields`: the fields whose texts make one item "
        "(strings, lists, chat `messages`: their user turns), joined in that order, e.g. `[question, choices]`.",
    )
    n: Sizes = Field(
        default_factory=lambda: Sizes(words=13, cjk=25, thai=50),
        description="n-gram size: `words`; `cjk` (Han, kana, Hangul characters); `thai` (Thai, Lao, Khmer, Myanmar "
        "characters, vowel and tone marks included: about 5 a word). A run mixing them counts each unit as 1/size.",
    )
    min_length: Sizes = Field(
        default_factory=lambda: Sizes(words=8, cjk=15, thai=30),
        description="An item with no n-gram of its own is matched whole if it reaches this length (counted as `n`); "
        "shorter items never flag a document.",
    )
    action: Literal["drop", "flag"] = Field(
        "drop", description="`drop` (reason `contaminated`) or `flag`: keep, with `metadata.contaminated`."
    )

    @model_validator(mode="after")
    def _consistent(self):
        for kind in KINDS:
            if getattr(self.min_length, kind) > getattr(self.n, kind):
                raise ValueError(f"min_length.{kind} ({getattr(self.min_length, kind)}) is larger than n.{kind}")
        labels = [s.label for s in self.eval_sets]
        for j, label in enumerate(labels):
            if labels.index(label) != j:
                raise ValueError(f"eval_sets[{j}]: two eval sets are named '{label}'; give each a distinct `name`")
        return self

    def input_files(self) -> list[str]:
        """The local files the step reads: every eval set's (the plan fingerprints them)."""
        return [path for s in self.eval_sets for path in s.files()]


# ------------------------------------------------------------------------------------------------ the index
class Runs:
    """Which runs of units are n-grams: at each unit, the shortest of the three sizes whose units are worth a whole
    n-gram (a word 1/words, a CJK character 1/cjk, a Thai-like one 1/thai; integer weights, so exactly). The
    choice depends on the run's own units only, so a copy of an item's run in a document is chosen alike."""

    def __init__(self, sizes: Sizes):
        whole = math.lcm(sizes.words, sizes.cjk, sizes.thai)
        self.whole = whole
        self.weights = np.array([0, whole // sizes.words, whole // sizes.cjk, whole // sizes.thai], dtype=np.int64)
        self.sizes = sorted({sizes.words, sizes.cjk, sizes.thai})

    def starts(self, units: Units, limit: int | None = None) -> dict[int, np.ndarray]:
        """size → the units where a run of that size is the n-gram (among the first ``limit`` units)."""
        count = len(units)
        if count and units.classes.min() == units.classes.max():  # one script: its own size everywhere
            size = self.whole // int(self.weights[units.classes[0]])
            fits = max(0, count - size + 1 if limit is None else min(limit, count - size + 1))
            empty = np.empty(0, dtype=np.int64)
            return {s: np.arange(fits) if s == size else empty for s in self.sizes}
        worth = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(self.weights[units.classes], out=worth[1:])
        out, taken = {}, None
        for size in self.sizes:
            fits = count - size + 1 if limit is None else min(limit, count - size + 1)
            if fits <= 0:
                out[size] = np.empty(0, dtype=np.int64)
                continue
            whole = worth[size : size + fits] - worth[:fits] >= self.whole
            if taken is not None:  # a smaller size already is the n-gram there
                whole &= ~taken[:fits]
                taken[:fits] |= whole
            else:
                taken = whole.copy()
            out[size] = np.flatnonzero(whole)
        return out


class Index:
    """The n-grams of the eval sets: sorted 64-bit hashes with their set; for the items matched whole (no n-gram of
    their own), the hash of their first ``min_length`` run with their length and whole hash; one bitmap in front of
    both."""

    def __init__(self, params: DecontaminateParams):
        self.names = [s.label for s in params.eval_sets]
        self.runs, self.min_runs = Runs(params.n), Runs(params.min_length)
        long_h, long_s, short_h, short_len, short_full, short_s = [], [], [], [], [], []
        self.items = self.too_short = 0
        for set_id, eval_set in enumerate(params.eval_sets):
            bad: list[str] = []
            items = 0
            for text in eval_set.items(bad):
                units = Units(text)
                if not len(units):
                    continue
                items += 1
                ngrams, prefix = self.entries(units)
                if ngrams is not None:
                    long_h.append(ngrams)
                    long_s.append(np.full(len(ngrams), set_id, dtype=np.uint16))
                elif prefix is not None:
                    short_h.append(prefix)
                    short_full.append(units.windows(len(units), np.zeros(1, dtype=np.int64))[0])
                    short_len.append(len(units))
                    short_s.append(set_id)
                else:
                    self.too_short += 1
            if bad:
                logger.warning(
                    f"decontaminate: eval set '{self.names[set_id]}': {len(bad)} unreadable record(s) skipped; "
                    f"first: {bad[0]}"
                )
            if not items:
                raise SourceError(
                    f"decontaminate: eval set '{self.names[set_id]}' has no item: no record holds text in its fields"
                )
            self.items += items
        hashes = np.concatenate(long_h) if long_h else np.empty(0, dtype=np.uint64)
        sets = np.concatenate(long_s) if long_s else np.empty(0, dtype=np.uint16)
        order = np.argsort(hashes, kind="stable")  # an n-gram in two sets counts for the first
        hashes, sets = hashes[order], sets[order]
        first = np.ones(len(hashes), dtype=bool)
        first[1:] = hashes[1:] != hashes[:-1]
        self.long, self.long_sets = hashes[first], sets[first]
        order = np.argsort(np.array(short_h, dtype=np.uint64), kind="stable")
        self.short = np.array(short_h, dtype=np.uint64)[order]
        self.short_len = np.array(short_len, dtype=np.int64)[order]
        self.short_full = np.array(short_full, dtype=np.uint64)[order]
        self.short_sets = np.array(short_s, dtype=np.uint16)[order]
        entries = len(self.long) + len(self.short)
        self.bits = int(min(30, max(16, math.ceil(math.log2(max(entries, 1) * 64)))))
        self.bitmap = np.zeros(1 << (self.bits - 3), dtype=np.uint8)
        for h in (self.long, self.short):
            slot = h >> np.uint64(64 - self.bits)
            np.bitwise_or.at(self.bitmap, slot >> np.uint64(3), np.left_shift(1, slot & np.uint64(7)).astype(np.uint8))

    def entries(self, units: Units) -> tuple[np.ndarray | None, np.uint64 | None]:
        """What an item puts in the index: the hashes of its n-grams; or, having none, the hash of its first
        `min_length` run (it is then matched whole); or neither (too short to flag anything)."""
        ngrams = [units.windows(size, first) for size, first in self.runs.starts(units).items() if len(first)]
        if ngrams:
            return np.concatenate(ngrams), None
        prefix = [(size, first) for size, first in self.min_runs.starts(units, limit=1).items() if len(first)]
        return None, (units.windows(*prefix[0])[0] if prefix else None)

    def matched_whole(self, text: str) -> bool | None:
        """False: the item has n-grams of its own; True: it is matched whole; None: it never flags anything."""
        ngrams, prefix = self.entries(Units(text))
        return False if ngrams is not None else (True if prefix is not None else None)

    def _maybe(self, hashes: np.ndarray) -> np.ndarray:
        """Positions of ``hashes`` whose bit is set (the others are in neither array)."""
        slot = hashes >> np.uint64(64 - self.bits)
        return np.flatnonzero((self.bitmap[slot >> np.uint64(3)] >> (slot & np.uint64(7)).astype(np.uint8)) & 1)

    def find(self, units: Units) -> tuple[int, int, int] | None:
        """(set id, first unit, length) of the first match in ``units``, or None: each n-gram of the document looked
        up, then each run that could begin an item matched whole."""
        if not len(units):
            return None
        if len(self.long):
            for size, first in self.runs.starts(units).items():
                if not len(first):
                    continue
                hashes = units.windows(size, first)
                maybe = self._maybe(hashes)
                if len(maybe):
                    at = np.minimum(np.searchsorted(self.long, hashes[maybe]), len(self.long) - 1)
                    hit = np.flatnonzero(self.long[at] == hashes[maybe])
                    if len(hit):
                        return int(self.long_sets[at[hit[0]]]), int(first[maybe[hit[0]]]), size
        if len(self.short):
            for size, first in self.min_runs.starts(units).items():
                if not len(first):
                    continue
                hashes = units.windows(size, first)
                maybe = self._maybe(hashes)
                if not len(maybe):
                    continue
                lo = np.searchsorted(self.short, hashes[maybe], "left")
                hi = np.searchsorted(self.short, hashes[maybe], "right")
                for j in np.flatnonzero(hi > lo).tolist():  # runs that begin an item matched whole
                    pos = int(first[maybe[j]])
                    for i in range(int(lo[j]), int(hi[j])):
                        length = int(self.short_len[i])
                        if (
                            pos + length <= len(units)
                            and units.windows(length, np.array([pos]))[0] == self.short_full[i]
                        ):
                            return int(self.short_sets[i]), pos, length
        return None


# ------------------------------------------------------------------------------------------------ the step
class Decontaminate(BaseFilter):
    type = "🦠 - DECONT"
    name = "decontaminate"

    def __init__(self, params: DecontaminateParams):
        super().__init__()
        self.params = params
        self._index: Index | None = None

    @property
    def index(self) -> Index:
        if self._index is None:
            self._index = index = Index(self.params)
            logger.info(
                f"decontaminate: {index.items:,} items ({', '.join(index.names)}): {len(index.long):,} n-grams, "
                f"{len(index.short):,} items matched whole, {index.too_short:,} too short to flag anything"
            )
        return self._index

    def __getstate__(self):  # a step pickles to the workers without its index
        return {**self.__dict__, "_index": None}

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        units = Units(doc.text)
        found = self.index.find(units)
        if found is None:
            return True
        set_id, first, size = found
        name = self.index.names[set_id]
        doc.metadata["contaminated"] = {"set": name, "ngram": units.text(first, size)}
        self.stat_update("count_contaminated")
        self.stat_update(f"count_in_{name}")
        if self.params.action == "flag":
            return True
        logger.debug(f"decontaminate: dropped {doc.id}: {doc.metadata['contaminated']}")
        return False, "contaminated"
