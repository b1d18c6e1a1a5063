"""The build report: one HTML page (OUT/report.html) with PNG plots (OUT/report/*.png) for a finished build.

    corpusforge report out/quickstart        # or, from Python: corpusforge.report.write_report("out/quickstart")

It shows the funnel (documents in/out per step with drop reasons, tokens per step where counted), the languages
identified and kept, length histograms (characters; tokens when a `tokens` step filled `n_tokens`) and what each
source contributed. Counts come from manifest.json. Lengths are aggregated by polars over the shards in a streaming
query that reads `text` once (fixed log-spaced bins, so no sampling and no text held in Python), which keeps the
report cheap on outputs far larger than memory. The page is self-contained (inline CSS, PNGs beside it, no network) and deterministic: the
same build gives the same bytes.
"""

from __future__ import annotations

import html
import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from corpusforge.errors import CorpusforgeError
from corpusforge.shards.writer import WORK_DIR

REPORT_HTML = "report.html"
REPORT_DIR = "report"
PLOTS = ("funnel.png", "tokens_funnel.png", "languages.png", "lengths.png", "sources.png")
FINE_BINS_PER_DECADE = 50  # histogram resolution of the aggregation pass (~4.7% wide bins); plots merge them
MAX_BARS = 40
TOP_N = 20  # languages / sources drawn in a plot; the tables list all of them
KEPT, IDENTIFIED, DROP_COLORS = "#3b6ea5", "#b9cbe3", ("#d62728", "#ff7f0e", "#e377c2", "#8c564b", "#bcbd22")
DROP_COLORS += ("#9467bd", "#17becf", "#f7b6d2", "#c49c94")
OTHER_COLOR = "#9a9a9a"
MAX_REASONS = len(DROP_COLORS)  # more drop reasons than colours: the rarest are drawn as one "other reasons"


class ReportError(CorpusforgeError):
    """The folder is not a finished build: no manifest.json, or a shard the manifest lists is missing."""


# ------------------------------------------------------------------------------------------------ loading
def load_finished_build(out: Path) -> dict:
    """The manifest of a finished build, or a ReportError saying what is missing and what to do."""
    if not out.exists():
        raise ReportError(f"{out} does not exist: pass the output folder of a `corpusforge run`")
    if not out.is_dir():
        raise ReportError(f"{out} is not a folder: pass the output folder of a `corpusforge run`")
    manifest_file = out / "manifest.json"
    if not manifest_file.exists():
        if (out / WORK_DIR).exists():
            raise ReportError(
                f"{out} is an unfinished build: manifest.json is missing (it is written when every task has "
                "finished); rerun the same `corpusforge run` command to resume it"
            )
        raise ReportError(f"{out} is not a corpusforge output: manifest.json is missing")
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ReportError(f"{manifest_file} is not valid JSON ({err}); rerun the build to rewrite it") from err
    absent = [key for key in ("recipe", "steps", "shards", "rows") if key not in manifest]
    if absent:
        raise ReportError(f"{manifest_file} lacks {', '.join(absent)}: not a manifest written by corpusforge run")
    missing = [s["file"] for s in manifest["shards"] if not (out / s["file"]).exists()]
    if missing:
        raise ReportError(
            f"{out} is incomplete: shard(s) {', '.join(missing)} listed in manifest.json are missing; "
            "rerun the build (add --overwrite if its recipe changed)"
        )
    return manifest


# -------------------------------------------------------------------------------------------- aggregation
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


def display_bins(hist: dict[int, int]) -> tuple[list[int], list[int]]:
    """Merge fine log bins into at most MAX_BARS bars: (edges, counts), len(edges) == len(counts) + 1.

    Lengths are integers, so the edges are snapped to integers: a bar covers the values [edges[k], edges[k+1]).
    Below ~20 a log bin is narrower than 1 and may hold no integer at all; such bars are merged into the next one
    instead of drawing a comb of empty gaps.
    """
    lo, hi = min(hist), max(hist)
    width = max(1, math.ceil((hi - lo + 1) / MAX_BARS))
    raw = [0] * math.ceil((hi - lo + 1) / width)
    for b, n in hist.items():
        raw[(b - lo) // width] += n
    snapped = [math.ceil(10 ** ((lo + k * width) / FINE_BINS_PER_DECADE) - 1e-9) for k in range(len(raw) + 1)]
    edges, counts, carry = [snapped[0]], [], 0
    for k, n in enumerate(raw):
        if snapped[k + 1] > edges[-1]:
            edges.append(snapped[k + 1])
            counts.append(n + carry)
            carry = 0
        else:
            carry += n
    if carry:  # only reachable with a histogram that no integer data can produce; keep the total anyway
        if counts:
            counts[-1] += carry
        else:
            edges, counts = [edges[0], edges[0] + 1], [carry]
    return edges, counts


# ---------------------------------------------------------------------------------------------- plotting
def _matplotlib():
    try:
        import matplotlib
    except ImportError as err:
        raise ReportError("the build report needs matplotlib: pip install matplotlib") from err
    return matplotlib


RC = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: the same glyphs (and the same PNG bytes) everywhere
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.dpi": 110,
}


@lru_cache(maxsize=1)
def _drawable() -> frozenset[int]:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(font_manager.findfont("DejaVu Sans")).get_charmap())


def plot_label(text: str, limit: int = 28) -> str:
    """A label the plot font can draw: CJK/Thai and control characters become \\uXXXX escapes (the HTML tables show
    the real names), `$` cannot start mathtext, long names are cut."""
    drawable = _drawable()
    out = "".join(ch if ch.isprintable() and ord(ch) in drawable else ascii(ch)[1:-1] for ch in text)
    out = out if len(out) <= limit else out[: limit - 1] + "…"
    return out.replace("$", r"\$")


def _figure(height: float, width: float = 8.0, ncols: int = 1, nrows: int = 1, **kwargs):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Agg canvas on a bare Figure: no pyplot, so no global backend switch and no figure left open in the caller.
    fig = Figure(figsize=(width, max(height, 1.6)), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kwargs).ravel()


def _save(fig, path: Path) -> None:
    # No Software/date metadata: the same build gives byte-identical PNGs.
    fig.savefig(path, format="png", metadata={"Software": None})


def compact(value: float) -> str:
    """Axis tick text: 950, 9,500, 95k, 9.5M, 1.2B, 3T."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= max(scale, 1e4):
            return f"{value / scale:.3g}{suffix}"
    return f"{value:,.0f}"


def _count_axis(ax, axis: str = "x") -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    which = getattr(ax, f"{axis}axis")
    which.set_major_locator(MaxNLocator(nbins=5, integer=True))
    which.set_major_formatter(FuncFormatter(lambda v, _: compact(v)))


def _top(items: list[tuple[str, list[float]]], n: int, what: str) -> list[tuple[str, list[float]]]:
    """The first n items, the rest summed into one 'other (k what)' item."""
    if len(items) <= n:
        return items
    rest = items[n - 1 :]
    summed = [sum(values[i] for _, values in rest) for i in range(len(rest[0][1]))]
    return [*items[: n - 1], (f"other ({len(rest)} {what})", summed)]


def plot_funnel(steps: list[dict], path: Path) -> None:
    reason_totals: dict[str, int] = {}
    for s in steps:
        for reason, n in s["dropped"].items():
            reason_totals[reason] = reason_totals.get(reason, 0) + n
        unexplained = s["in"] - s["out"] - sum(s["dropped"].values())
        if unexplained > 0:
            reason_totals["(no reason given)"] = reason_totals.get("(no reason given)", 0) + unexplained
    ranked = sorted(reason_totals, key=lambda r: (-reason_totals[r], r))
    shown = ranked if len(ranked) <= MAX_REASONS else ranked[: MAX_REASONS - 1]
    colors = {r: DROP_COLORS[i] for i, r in enumerate(shown)}
    other = "other reasons" if len(shown) < len(ranked) else None

    fig, (ax,) = _figure(1.2 + 0.42 * len(steps))
    y = list(range(len(steps)))
    ax.barh(y, [s["out"] for s in steps], color=KEPT, label="kept")
    left = [float(s["out"]) for s in steps]
    for reason in [*shown, *([other] if other else [])]:
        widths = []
        for s in steps:
            dropped = dict(s["dropped"])
            unexplained = s["in"] - s["out"] - sum(dropped.values())
            if unexplained > 0:
                dropped["(no reason given)"] = unexplained
            if reason == other:
                widths.append(sum(n for r, n in dropped.items() if r not in colors))
            else:
                widths.append(dropped.get(reason, 0))
        if any(widths):
            ax.barh(
                y, widths, left=left, color=colors.get(reason, OTHER_COLOR), label=f"dropped: {plot_label(reason)}"
            )
            left = [a + b for a, b in zip(left, widths)]
    widest = max([*left, 1.0])
    for i, s in enumerate(steps):
        note = f"{s['in']:,} → {s['out']:,}"
        if s["in"] and s["out"] < s["in"]:
            note += f"  (−{1 - s['out'] / s['in']:.1%})"
        ax.text(left[i] + widest * 0.01, i, note, va="center", fontsize=8)
    _finish_step_plot(fig, ax, steps, widest, "documents", "Documents per step: kept, and dropped by reason", path)


def _finish_step_plot(fig, ax, steps: list[dict], widest: float, xlabel: str, title: str, path: Path) -> None:
    """Axes, labels and legend shared by the per-step bar charts; saves the figure."""
    ax.set_yticks(list(range(len(steps))), [plot_label(s["step"]) for s in steps])
    ax.invert_yaxis()
    ax.set_xlim(0, widest * 1.32)
    _count_axis(ax)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    _save(fig, path)


def plot_token_funnel(steps: list[dict], path: Path) -> None:
    fig, (ax,) = _figure(1.2 + 0.42 * len(steps))
    y = list(range(len(steps)))
    tokens_in, tokens_out = [s["tokens_in"] or 0 for s in steps], [s["tokens_out"] or 0 for s in steps]
    ax.barh([i - 0.2 for i in y], tokens_in, height=0.4, color=IDENTIFIED, label="tokens in")
    ax.barh([i + 0.2 for i in y], tokens_out, height=0.4, color=KEPT, label="tokens out")
    widest = max([*tokens_in, *tokens_out, 1])
    for i, (t_in, t_out) in enumerate(zip(tokens_in, tokens_out)):
        ax.text(max(t_in, t_out) + widest * 0.01, i, f"{t_in:,} → {t_out:,}", va="center", fontsize=8)
    _finish_step_plot(fig, ax, steps, widest, "tokens", "Tokens per step: received and passed on", path)


def plot_languages(identified: dict[str, int], output: dict[str, int], path: Path) -> None:
    names = sorted(set(identified) | set(output), key=lambda k: (-max(identified.get(k, 0), output.get(k, 0)), k))
    items = _top([(n, [identified.get(n, 0), output.get(n, 0)]) for n in names], TOP_N, "languages")
    fig, (ax,) = _figure(1.2 + 0.32 * len(items))
    y = list(range(len(items)))
    widest = max(max(v) for _, v in items) or 1
    if identified:
        ax.barh([i - 0.2 for i in y], [v[0] for _, v in items], height=0.4, color=IDENTIFIED, label="identified")
        ax.barh([i + 0.2 for i in y], [v[1] for _, v in items], height=0.4, color=KEPT, label="in the output")
        for i, (_, (ident, kept)) in enumerate(items):
            ax.text(max(ident, kept) + widest * 0.01, i, f"{kept:,} / {ident:,}", va="center", fontsize=8)
        ax.set_title(
            "Languages: documents identified by the language step, and kept in the output (kept / identified)"
        )
    else:
        ax.barh(y, [v[1] for _, v in items], color=KEPT, label="in the output")
        for i, (_, (_, kept)) in enumerate(items):
            ax.text(kept + widest * 0.01, i, f"{kept:,}", va="center", fontsize=8)
        ax.set_title("Languages of the output rows")
    ax.set_yticks(y, [plot_label(n) for n, _ in items])
    ax.invert_yaxis()
    ax.set_xlim(0, widest * 1.25)
    _count_axis(ax)
    ax.set_xlabel("documents")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    _save(fig, path)


def _histogram(ax, hist: dict[int, int], lo: int, hi: int, unit: str) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    edges, counts = display_bins(hist)
    ax.stairs(counts, edges, fill=True, color=KEPT, alpha=0.85)
    ax.set_xscale("log")
    median = approx_quantile(hist, 0.5, lo, hi)
    # a bar [n, n+1) stands for the integer n: mark its middle
    ax.axvline(median + 0.5, color="#d62728", linewidth=1, linestyle="--", label=f"median ≈ {median:,}")
    ax.set_xlim(edges[0], edges[-1])
    if edges[-1] / edges[0] < 100:  # less than two decades: label 1-2-5 ticks, not only powers of ten
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"{unit} per document (log scale; min {lo:,}, max {hi:,})")
    ax.set_ylabel("documents")
    _count_axis(ax, "y")
    ax.legend(loc="upper right", fontsize=8)


def plot_lengths(stats: CorpusStats, path: Path) -> None:
    panels = [("characters", stats.char_hist, stats.chars_min, stats.chars_max)] if stats.char_hist else []
    if stats.token_hist:
        panels.append(("tokens", stats.token_hist, stats.tokens_min, stats.tokens_max))
    fig, axes = _figure(2.8 * len(panels), nrows=len(panels))
    for ax, (unit, hist, lo, hi) in zip(axes, panels):
        _histogram(ax, hist, lo, hi, unit)
        ax.set_title(f"Length of the output documents in {unit}")
    _save(fig, path)


def plot_sources(stats: CorpusStats, path: Path) -> None:
    metrics = [("documents", lambda g: g.docs)]
    if stats.chars is not None:
        metrics.append(("characters", lambda g: g.chars or 0))
    if stats.tokens is not None:
        metrics.append(("tokens", lambda g: g.tokens or 0))
    what = f"{stats.group_column}s"
    items = _top([(g.name, [get(g) for _, get in metrics]) for g in stats.groups], TOP_N, what)
    fig, axes = _figure(1.0 + 0.32 * len(items), width=3.0 + 2.6 * len(metrics), ncols=len(metrics), sharey=True)
    y = list(range(len(items)))
    for k, (ax, (metric, _)) in enumerate(zip(axes, metrics)):
        values = [v[k] for _, v in items]
        total = sum(values) or 1
        ax.barh(y, values, color=KEPT)
        for i, v in enumerate(values):
            ax.text(v, i, f" {v / total:.0%}", va="center", fontsize=8)
        ax.set_xlim(0, max([*values, 1]) * 1.25)
        _count_axis(ax)
        ax.set_xlabel(metric)
        ax.set_title(f"{metric} by {stats.group_column}")
    axes[0].set_yticks(y, [plot_label(n) for n, _ in items])
    axes[0].invert_yaxis()
    _save(fig, path)


# ------------------------------------------------------------------------------------------------- HTML
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;max-width:62rem;margin:2rem auto;
padding:0 1rem;color:#1d1d1f;line-height:1.45}
h1{margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.sub{color:#555;margin-top:0}table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}
th,td{border-bottom:1px solid #e4e4e4;padding:.25rem .7rem;text-align:left;vertical-align:top}
th{background:#f4f6f9}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.9rem}
.note{background:#fff8e5;border-left:4px solid #f0b400;padding:.4rem .8rem}code,pre{font-size:.85rem}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto}dl{display:grid;grid-template-columns:max-content auto;
gap:.15rem 1rem}dt{color:#555}dd{margin:0}
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _num(value: int | float | None) -> str:
    return "—" if value is None else f"{value:,}"


def _pct(part: int | None, whole: int | None) -> str:
    return "—" if part is None or not whole else f"{part / whole:.1%}"


def _table(table_id: str, header: list[str], rows: list[list], numeric: set[int]) -> str:
    def cell(tag: str, i: int, value) -> str:
        return f'<{tag} class="num">{_e(value)}</{tag}>' if i in numeric else f"<{tag}>{_e(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f'<table id="{_e(table_id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _figure_html(name: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img src="{_e(REPORT_DIR + "/" + name)}" alt="{_e(alt)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _tokens_step(manifest: dict) -> dict | None:
    for step in manifest["recipe"].get("steps", []):
        if isinstance(step, dict) and "tokens" in step:
            return step["tokens"] or {}
    return None


def render_html(out: Path, manifest: dict, stats: CorpusStats, plots: set[str]) -> str:
    recipe = manifest["recipe"]
    name = recipe.get("name", "(unnamed recipe)")
    steps = manifest["steps"]
    parts = [
        f"<h1>Build report: {_e(name)}</h1>",
        f'<p class="sub">{_e(recipe.get("description") or "")}</p>',
        "<dl>",
    ]
    tokens_cfg = _tokens_step(manifest)
    facts = [
        ("output folder", str(out)),
        ("built", f"{manifest.get('created_at', '?')} in {manifest.get('seconds') or '?'} s"),
        ("corpusforge", manifest.get("corpusforge_version", "?")),
        ("recipe fingerprint", manifest.get("recipe_fingerprint", "?")),
        ("documents read", _num(sum(s["in"] for s in steps if s["step"].startswith("read:")))),
        ("rows written", f"{manifest['rows']:,} in {len(manifest['shards'])} shard(s)"),
        ("characters", _num(stats.chars)),
        ("tokens", _num(stats.tokens) if stats.tokens is not None else "not counted"),
    ]
    parts += [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts]
    parts.append("</dl>")

    # funnel
    parts.append("<h2>Funnel</h2>")
    if "funnel.png" in plots:
        parts.append(
            _figure_html(
                "funnel.png",
                "documents per step",
                "Each bar is one pipeline step, in order (read:<source> for each source, then the recipe's steps, "
                "then write). Its length is the documents the step received; blue is what it passed on, the coloured "
                "segments what it dropped, by reason. The numbers read in → out.",
            )
        )
    rows = []
    for s in steps:
        reasons = ", ".join(f"{r}: {n:,}" for r, n in sorted(s["dropped"].items(), key=lambda kv: (-kv[1], kv[0])))
        rows.append([s["step"], f"{s['in']:,}", f"{s['out']:,}", f"{s['in'] - s['out']:,}", _pct(s["out"], s["in"])])
        rows[-1].append(reasons or "—")
    parts.append(_table("funnel", ["step", "in", "out", "dropped", "kept", "drop reasons"], rows, {1, 2, 3, 4}))

    # tokens
    parts.append("<h2>Tokens</h2>")
    token_steps = [s for s in steps if "tokens_in" in s and "tokens_out" in s]
    if token_steps:
        if "tokens_funnel.png" in plots:
            parts.append(_figure_html("tokens_funnel.png", "tokens per step", "Tokens received and passed on."))
        rows = [[s["step"], _num(s["tokens_in"]), _num(s["tokens_out"])] for s in token_steps]
        parts.append(_table("tokens", ["step", "tokens in", "tokens out"], rows, {1, 2}))
    if stats.tokens is not None:
        tokenizer = tokens_cfg.get("tokenizer") if tokens_cfg else None
        sentence = f"{stats.tokens:,} tokens in the output ({stats.token_rows:,} of {stats.rows:,} rows counted"
        sentence += f" with the tokenizer {tokenizer})." if tokenizer else ")."
        if not token_steps:
            sentence += " The manifest records no per-step token counts, so only the output total is known."
        parts.append(f"<p>{_e(sentence)}</p>")
    elif not token_steps and tokens_cfg is None:
        parts.append(
            '<p class="note">No token counts: <code>n_tokens</code> is empty in every row because the recipe has no '
            "<code>tokens</code> step. Add one to count tokens with your model's tokenizer.</p>"
        )
    elif not token_steps:
        parts.append('<p class="note">No token counts: no output row has <code>n_tokens</code>.</p>')

    # languages
    parts.append("<h2>Languages</h2>")
    languages = manifest.get("languages", {})
    identified, output = languages.get("identified", {}), languages.get("output", {})
    if "languages.png" in plots:
        caption = (
            "Light bars: documents the language step assigned to each language (before its keep/min_score "
            "filter); dark bars: rows of that language in the output."
            if identified
            else "Rows of each language in the output (this recipe has no language step, so nothing was identified)."
        )
        parts.append(_figure_html("languages.png", "language distribution", caption))
    names = sorted(set(identified) | set(output), key=lambda k: (-output.get(k, 0), -identified.get(k, 0), k))
    rows = []
    for lang in names:
        g = stats.languages.get(lang)
        rows.append(
            [
                lang,
                _num(identified.get(lang)) if identified else "—",
                _num(output.get(lang, 0)),
                _pct(output.get(lang, 0), manifest["rows"]),
                _num(g.chars if g else None),
                _num(g.tokens if g else None),
            ]
        )
    header = ["language", "identified", "output rows", "share of output", "output characters", "output tokens"]
    parts.append(_table("languages", header, rows, {1, 2, 3, 4, 5}))

    # lengths
    parts.append("<h2>Document lengths</h2>")
    if "lengths.png" in plots:
        caption = (
            "Characters of each output row's text as written (including chat-template markup when a tag step ran)"
            + ("; below it, n_tokens per row" if stats.token_hist else "")
            + f". Computed over all {stats.rows:,} rows by one streaming query, no sampling; bars are log-spaced bins, "
            "the dashed line marks the median."
        )
        parts.append(_figure_html("lengths.png", "length histograms", caption))
        rows = []
        for unit, hist, lo, hi, total, n in (
            ("characters", stats.char_hist, stats.chars_min, stats.chars_max, stats.chars, stats.rows),
            ("tokens", stats.token_hist, stats.tokens_min, stats.tokens_max, stats.tokens, stats.token_rows),
        ):
            if hist:
                q = [approx_quantile(hist, p, lo, hi) for p in (0.1, 0.5, 0.9)]
                rows.append([unit, _num(lo), *(f"≈{v:,}" for v in q), _num(hi), f"{total / n:,.1f}"])
        header = ["per document", "min", "p10", "median", "p90", "max", "mean"]
        parts.append(_table("lengths", header, rows, {1, 2, 3, 4, 5, 6}))
        parts.append('<p class="sub">Quantiles marked ≈ are read off the histogram (within about 2.5%).</p>')
    else:
        parts.append("<p>No rows with text in the output: nothing to plot.</p>")

    # sources
    column = stats.group_column or "source"
    parts.append(f"<h2>Contributions by {_e(column)}</h2>")
    if "sources.png" in plots:
        parts.append(
            _figure_html(
                "sources.png",
                f"contributions by {column}",
                f"What each {column} contributed to the output; percentages are shares of the output total.",
            )
        )
    rows = [
        [g.name, _num(g.docs), _pct(g.docs, stats.rows), _num(g.chars), _pct(g.chars, stats.chars), _num(g.tokens)]
        for g in stats.groups
    ]
    header = [column, "rows", "share of rows", "characters", "share of characters", "tokens"]
    parts.append(_table("sources", header, rows, {1, 2, 3, 4, 5}))

    # provenance
    parts.append("<h2>Provenance</h2>")
    inputs = [[i.get("source", ""), i.get("path", ""), _num(i.get("bytes"))] for i in manifest.get("inputs", [])]
    parts.append(_table("inputs", ["source", "input file", "bytes"], inputs, {2}))
    versions = [[k, v] for k, v in manifest.get("versions", {}).items()]
    parts.append(
        f"<details><summary>Package versions</summary>{_table('versions', ['package', 'version'], versions, set())}</details>"
    )
    recipe_json = json.dumps(recipe, indent=2, ensure_ascii=False)
    parts.append(f"<details><summary>Resolved recipe</summary><pre>{_e(recipe_json)}</pre></details>")
    parts.append(
        f'<p class="sub">Made from manifest.json and the shards; regenerate with <code>corpusforge report {_e(out)}</code>.</p>'
    )
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(name)} — corpusforge build report</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


# ------------------------------------------------------------------------------------------------ entry
def write_report(out: str | Path) -> Path:
    """Write OUT/report.html and its plots under OUT/report/ for a finished build; return the HTML's path."""
    out = Path(out)
    manifest = load_finished_build(out)
    stats = aggregate(out, manifest)
    matplotlib = _matplotlib()
    plot_dir = out / REPORT_DIR
    plot_dir.mkdir(exist_ok=True)
    plots: set[str] = set()
    with matplotlib.rc_context(RC):
        if manifest["steps"]:
            plot_funnel(manifest["steps"], plot_dir / "funnel.png")
            plots.add("funnel.png")
        token_steps = [s for s in manifest["steps"] if "tokens_in" in s and "tokens_out" in s]
        if token_steps:
            plot_token_funnel(token_steps, plot_dir / "tokens_funnel.png")
            plots.add("tokens_funnel.png")
        languages = manifest.get("languages", {})
        if languages.get("output") or languages.get("identified"):
            plot_languages(languages.get("identified", {}), languages.get("output", {}), plot_dir / "languages.png")
            plots.add("languages.png")
        if stats.char_hist or stats.token_hist:
            plot_lengths(stats, plot_dir / "lengths.png")
            plots.add("lengths.png")
        if stats.groups:
            plot_sources(stats, plot_dir / "sources.png")
            plots.add("sources.png")
    for name in set(PLOTS) - plots:  # a plot of an earlier report that no longer applies
        (plot_dir / name).unlink(missing_ok=True)
    page = out / REPORT_HTML
    tmp = page.with_name(f".{page.name}.tmp")
    tmp.write_text(render_html(out, manifest, stats, plots), encoding="utf-8")
    os.replace(tmp, page)
    return page
