"""The report's charts, as inline SVG (`corpusforge.report.svg`): the funnel, the token funnel, the languages, the
length histograms and the contributions by source. `draw_plots` returns those that apply to a build.

The matplotlib helpers at the end (`figure`, `save_png`, `RC`, `plot_label`) are for the scorecard's PNG chart,
which is drawn with matplotlib; the build report does not import it.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

from corpusforge.report.aggregate import FINE_BINS_PER_DECADE, CorpusStats, ReportError, approx_quantile
from corpusforge.report.svg import Histogram, Panel, Series, bar_chart, histograms

PLOTS = ("funnel", "tokens_funnel", "languages", "lengths", "sources")
MAX_BARS = 40
TOP_N = 20  # languages / sources drawn in a plot; the tables list all of them
KEPT, IDENTIFIED, DROP_COLORS = "#3b6ea5", "#b9cbe3", ("#d62728", "#ff7f0e", "#e377c2", "#8c564b", "#bcbd22")
DROP_COLORS += ("#9467bd", "#17becf", "#f7b6d2", "#c49c94")
OTHER_COLOR = "#9a9a9a"
MAX_REASONS = len(DROP_COLORS)  # more drop reasons than colours: the rarest are drawn as one "other reasons"


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


def _top(items: list[tuple[str, list[float]]], n: int, what: str) -> list[tuple[str, list[float]]]:
    """The first n items, the rest summed into one 'other (k what)' item."""
    if len(items) <= n:
        return items
    rest = items[n - 1 :]
    summed = [sum(values[i] for _, values in rest) for i in range(len(rest[0][1]))]
    return [*items[: n - 1], (f"other ({len(rest)} {what})", summed)]


def plot_funnel(steps: list[dict]) -> str:
    reason_totals: dict[str, int] = {}
    dropped_per_step = []
    for s in steps:
        dropped = dict(s["dropped"])
        unexplained = s["in"] - s["out"] - sum(dropped.values())
        if unexplained > 0:
            dropped["(no reason given)"] = unexplained
        dropped_per_step.append(dropped)
        for reason, n in dropped.items():
            reason_totals[reason] = reason_totals.get(reason, 0) + n
    ranked = sorted(reason_totals, key=lambda r: (-reason_totals[r], r))
    shown = ranked if len(ranked) <= MAX_REASONS else ranked[: MAX_REASONS - 1]
    series = [Series("kept", KEPT, [s["out"] for s in steps])]
    series += [
        Series(f"dropped: {reason}", DROP_COLORS[i], [d.get(reason, 0) for d in dropped_per_step])
        for i, reason in enumerate(shown)
    ]
    if len(shown) < len(ranked):
        rest = [sum(n for r, n in d.items() if r not in shown) for d in dropped_per_step]
        series.append(Series("dropped: other reasons", OTHER_COLOR, rest))
    notes = []
    for s in steps:
        note = f"{s['in']:,} → {s['out']:,}"
        if s["in"] and s["out"] < s["in"]:
            note += f"  (−{1 - s['out'] / s['in']:.1%})"
        notes.append(note)
    panel = Panel("documents", [x for x in series if any(x.values)], stacked=True, notes=notes, headroom=1.32)
    return bar_chart(
        "plot-funnel", "Documents per step: kept, and dropped by reason", [s["step"] for s in steps], [panel]
    )


def plot_token_funnel(steps: list[dict]) -> str:
    tokens_in, tokens_out = [s["tokens_in"] or 0 for s in steps], [s["tokens_out"] or 0 for s in steps]
    notes = [f"{a:,} → {b:,}" for a, b in zip(tokens_in, tokens_out)]
    panel = Panel(
        "tokens",
        [Series("tokens in", IDENTIFIED, tokens_in), Series("tokens out", KEPT, tokens_out)],
        notes=notes,
        headroom=1.32,
    )
    return bar_chart(
        "plot-tokens_funnel", "Tokens per step: received and passed on", [s["step"] for s in steps], [panel]
    )


def plot_languages(identified: dict[str, int], output: dict[str, int]) -> str:
    names = sorted(set(identified) | set(output), key=lambda k: (-max(identified.get(k, 0), output.get(k, 0)), k))
    items = _top([(n, [identified.get(n, 0), output.get(n, 0)]) for n in names], TOP_N, "languages")
    labels = [n for n, _ in items]
    if identified:
        series = [
            Series("identified", IDENTIFIED, [v[0] for _, v in items]),
            Series("in the output", KEPT, [v[1] for _, v in items]),
        ]
        notes = [f"{kept:,} / {ident:,}" for _, (ident, kept) in items]
        title = "Languages: documents identified by the language step, and kept in the output (kept / identified)"
    else:
        series = [Series("in the output", KEPT, [v[1] for _, v in items])]
        notes = [f"{kept:,}" for _, (_, kept) in items]
        title = "Languages of the output rows"
    return bar_chart("plot-languages", title, labels, [Panel("documents", series, notes=notes)])


def plot_lengths(stats: CorpusStats) -> str:
    panels = [("characters", stats.char_hist, stats.chars_min, stats.chars_max)] if stats.char_hist else []
    if stats.token_hist:
        panels.append(("tokens", stats.token_hist, stats.tokens_min, stats.tokens_max))
    drawn = []
    for unit, hist, lo, hi in panels:
        edges, counts = display_bins(hist)
        median = approx_quantile(hist, 0.5, lo, hi)
        drawn.append(
            Histogram(
                title=f"Length of the output documents in {unit}",
                xlabel=f"{unit} per document (log scale; min {lo:,}, max {hi:,})",
                edges=edges,
                counts=counts,
                marker=median + 0.5,  # a bar [n, n+1) stands for the integer n: mark its middle
                marker_label=f"median ≈ {median:,}",
                color=KEPT,
            )
        )
    return histograms("plot-lengths", "Document lengths (rows per log-spaced bin)", drawn)


def plot_sources(stats: CorpusStats) -> str:
    metrics = [("documents", lambda g: g.docs)]
    if stats.chars is not None:
        metrics.append(("characters", lambda g: g.chars or 0))
    if stats.tokens is not None:
        metrics.append(("tokens", lambda g: g.tokens or 0))
    what = f"{stats.group_column}s"
    items = _top([(g.name, [get(g) for _, get in metrics]) for g in stats.groups], TOP_N, what)
    panels = []
    for k, (metric, _) in enumerate(metrics):
        values = [v[k] for _, v in items]
        total = sum(values) or 1
        panels.append(Panel(metric, [Series("", KEPT, values)], notes=[f"{v / total:.0%}" for v in values]))
    return bar_chart(
        "plot-sources",
        f"Contributions by {stats.group_column}: " + ", ".join(m for m, _ in metrics),
        [n for n, _ in items],
        panels,
    )


def draw_plots(manifest: dict, stats: CorpusStats) -> dict[str, str]:
    """The charts that apply to this build, by name (PLOTS), as SVG markup."""
    plots: dict[str, str] = {}
    if manifest["steps"]:
        plots["funnel"] = plot_funnel(manifest["steps"])
    token_steps = [s for s in manifest["steps"] if "tokens_in" in s and "tokens_out" in s]
    if token_steps:
        plots["tokens_funnel"] = plot_token_funnel(token_steps)
    languages = manifest.get("languages", {})
    if languages.get("output") or languages.get("identified"):
        plots["languages"] = plot_languages(languages.get("identified", {}), languages.get("output", {}))
    if stats.char_hist or stats.token_hist:
        plots["lengths"] = plot_lengths(stats)
    if stats.groups:
        plots["sources"] = plot_sources(stats)
    return plots


# The scorecard's chart (corpusforge.eval.scorecard.plot) is drawn with matplotlib, on bare Agg figures.


def _matplotlib():
    try:
        import matplotlib
    except ImportError as err:
        raise ReportError("this chart needs matplotlib: pip install matplotlib") from err
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
    """A label matplotlib's font can draw: CJK/Thai and control characters become \\uXXXX escapes, `$` cannot start
    mathtext, long names are cut."""
    drawable = _drawable()
    out = "".join(ch if ch.isprintable() and ord(ch) in drawable else ascii(ch)[1:-1] for ch in text)
    out = out if len(out) <= limit else out[: limit - 1] + "…"
    return out.replace("$", r"\$")


def _figure(height: float, width: float = 8.0, ncols: int = 1, nrows: int = 1, **kwargs):
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Agg canvas on a bare Figure: no pyplot, so no global backend switch and no figure left open in the caller.
    fig = Figure(figsize=(width, max(height, 1.6)), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kwargs).ravel()


def _save(fig, path: Path) -> None:
    # No Software/date metadata: the same build gives byte-identical PNGs.
    fig.savefig(path, format="png", metadata={"Software": None})
