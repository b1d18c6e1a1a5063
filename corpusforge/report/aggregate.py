"""What a report is made of: the manifest of a finished build (`load_finished_build`) and one streaming polars pass
over its shards (`aggregate`) that yields totals, fine log-binned length histograms and per-source / per-language
sums. Nothing here draws or writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from corpusforge.corpus.finished import Corpus
from corpusforge.errors import CorpusforgeError

FINE_BINS_PER_DECADE = 50  # histogram resolution of the aggregation pass (~4.7% wide bins); plots merge them


class ReportError(CorpusforgeError):
    """The report cannot be drawn (matplotlib missing). A folder that is not a finished build: ``CorpusError``."""


def load_finished_build(out: Path) -> dict:
    """The manifest of a finished build, or a CorpusError saying what is missing and what to do."""
    return Corpus.open(out).manifest


@dataclass
class Group:
    """Rows, characters and tokens of one source (or language) in the output."""

    name: str
    docs: int
    chars: int | None
    tokens: int | None


@dataclass
class CorpusStats:
    """What the streaming aggregation over the shards yields. Histograms map a fine log bin to a row count."""

    rows: int
    chars: int | None  # None: the rows have no text (neither `text` nor `messages`)
    chars_min: int | None
    chars_max: int | None
    token_rows: int  # rows with an `n_tokens` value
    tokens: int | None  # None: no row has n_tokens
    tokens_min: int | None
    tokens_max: int | None
    char_hist: dict[int, int] = field(default_factory=dict)
    token_hist: dict[int, int] = field(default_factory=dict)
    group_column: str | None = None  # `source` (CP corpora) or `kind` (KD datasets)
    groups: list[Group] = field(default_factory=list)
    languages: dict[str, Group] = field(default_factory=dict)


def _length_expr(schema):
    import polars as pl

    if schema.get("text") == pl.String:
        return pl.col("text").str.len_chars()
    if "messages" in schema:  # KD rows: the characters of every turn's content
        return pl.col("messages").list.eval(pl.element().struct.field("content").str.len_chars()).list.sum()
    return None


def _fine_bin(column: str):
    import polars as pl

    # +1e-9: log10(1000) is 2.9999999999999996 on some platforms; keep exact powers of ten in their own bin.
    return (
        (pl.col(column).clip(1).cast(pl.Float64).log10() * FINE_BINS_PER_DECADE + 1e-9).floor().cast(pl.Int32)
    ).alias("bin")


def aggregate(out: Path, manifest: dict) -> CorpusStats:
    """Totals, fine-binned length histograms and per-source / per-language sums, streamed by polars.

    The text column is read once: one group_by over (source, language, character bin) gives a small table from
    which every text figure is derived (reading `text` is what costs on a big output: it is I/O bound). The token
    histogram reads only the `n_tokens` column.
    """
    import polars as pl

    scan = pl.scan_ipc([str(out / s["file"]) for s in manifest["shards"]])
    schema = scan.collect_schema()
    length = _length_expr(schema)
    group_column = next((c for c in ("source", "kind") if c in schema), None)
    no_int = pl.lit(None, dtype=pl.Int64)
    tokens = pl.col("n_tokens").cast(pl.Int64) if "n_tokens" in schema else no_int
    rows = scan.select(
        chars=length.cast(pl.Int64) if length is not None else no_int,
        tokens=tokens,
        group=pl.col(group_column).cast(pl.String).fill_null("(none)") if group_column else pl.lit("(none)"),
        language=pl.col("language").cast(pl.String).fill_null("unknown")
        if "language" in schema
        else pl.lit("unknown"),
    )
    cells_query = rows.group_by("group", "language", _fine_bin("chars")).agg(
        pl.len().cast(pl.Int64).alias("docs"),
        pl.col("chars").sum().alias("chars"),
        pl.col("chars").min().alias("chars_min"),
        pl.col("chars").max().alias("chars_max"),
        pl.col("tokens").sum().alias("tokens"),
        pl.col("tokens").count().cast(pl.Int64).alias("token_rows"),
    )
    token_query = (
        scan.select(tokens=tokens)
        .drop_nulls()
        .group_by(_fine_bin("tokens"))
        .agg(
            pl.len().cast(pl.Int64).alias("n"), pl.col("tokens").min().alias("lo"), pl.col("tokens").max().alias("hi")
        )
    )
    cells, token_bins = pl.collect_all([cells_query, token_query], engine="streaming")

    sums = [pl.col(c).sum() for c in ("docs", "chars", "tokens", "token_rows")]
    t = cells.select(*sums, pl.col("chars_min").min(), pl.col("chars_max").max()).row(0, named=True)
    has_chars, has_tokens = length is not None and t["docs"] > 0, t["token_rows"] > 0

    def group(row: dict, name: str) -> Group:
        return Group(
            name,
            row["docs"],
            row["chars"] if has_chars else None,
            row["tokens"] if has_tokens and row["token_rows"] else None,
        )

    by_group = cells.group_by("group").agg(sums).iter_rows(named=True)
    by_language = cells.group_by("language").agg(sums).iter_rows(named=True)
    char_hist = cells.drop_nulls("bin").group_by("bin").agg(pl.col("docs").sum()) if has_chars else None
    return CorpusStats(
        rows=t["docs"],
        chars=t["chars"] if has_chars else None,
        chars_min=t["chars_min"],
        chars_max=t["chars_max"],
        token_rows=t["token_rows"],
        tokens=t["tokens"] if has_tokens else None,
        tokens_min=token_bins["lo"].min(),
        tokens_max=token_bins["hi"].max(),
        char_hist=dict(sorted(zip(char_hist["bin"], char_hist["docs"]))) if char_hist is not None else {},
        token_hist=dict(sorted(zip(token_bins["bin"], token_bins["n"]))),
        group_column=group_column,
        groups=sorted((group(r, r["group"]) for r in by_group), key=lambda g: (-g.docs, g.name))
        if group_column
        else [],
        languages={r["language"]: group(r, r["language"]) for r in by_language},
    )


def approx_quantile(hist: dict[int, int], q: float, lo: int | None, hi: int | None) -> int | None:
    """The q-quantile read off a fine log histogram (within ~2.4%), clamped to the exact min and max."""
    total = sum(hist.values())
    if not total:
        return None
    cumulative = 0
    for b in sorted(hist):
        cumulative += hist[b]
        if cumulative >= q * total:
            value = round(10 ** ((b + 0.5) / FINE_BINS_PER_DECADE))
            return max(lo if lo is not None else value, min(hi if hi is not None else value, value))
    return None
