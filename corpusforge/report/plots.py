"""The report's PNG plots, drawn with matplotlib on bare Agg figures (no pyplot): the funnel, the token funnel, the
languages, the length histograms and the contributions by source. `draw_plots` writes those that apply to a build.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

from corpusforge.report.aggregate import FINE_BINS_PER_DECADE, CorpusStats, ReportError, approx_quantile

PLOTS = ("funnel.png", "tokens_funnel.png", "languages.png", "lengths.png", "sources.png")
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


def draw_plots(manifest: dict, stats: CorpusStats, plot_dir: Path) -> set[str]:
    """Draw the plots that apply to this build into ``plot_dir``; return the names drawn."""
    matplotlib = _matplotlib()
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
    return plots
