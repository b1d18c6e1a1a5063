"""The language-alignment chart (``align.png``): response language by prompt language, models side by side."""

from __future__ import annotations

import textwrap
from pathlib import Path

from corpusforge.eval.scorecard.results import CLASSES, PROMPT_SETS, ScorecardResult
from corpusforge.lang.names import language_name
from corpusforge.report import RC, _figure, _save, plot_label

MODEL_COLORS = ("#3b6ea5", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def plot_alignment(result: ScorecardResult, path: Path) -> None:
    """Two panels (English prompts, target prompts); in each, a group of bars per answer language with one bar
    per model, heights = share of the classified responses, whiskers = its 95% interval."""
    import matplotlib  # heavy: imported when a chart is drawn

    target = language_name(result.language)

    # tick labels under four bars: short, wrapped ("Traditional Chinese (Taiwan)" overlapped its neighbours)
    groups = {"en": "English", "target": textwrap.fill(target, 14), "other": "other", "degenerate": "degenerate"}
    n = len(result.models)
    width = 0.8 / n
    with matplotlib.rc_context(RC):
        fig, axes = _figure(3.4, width=max(8.0, 3.2 + 1.1 * n), ncols=2, sharey=True)
        for ax, prompt_set in zip(axes, PROMPT_SETS):
            for j, m in enumerate(result.models):
                cell = m.cells[prompt_set]
                xs = [i - 0.4 + width * (j + 0.5) for i in range(len(CLASSES))]
                heights = [100 * (cell.shares[c] or 0.0) for c in CLASSES]
                # whiskers: the 95% interval of each share (Wilson; clustered by prompt with several samples)
                intervals = [cell.of_class(c).interval or (0.0, 0.0) for c in CLASSES]
                errors = [
                    [max(h - 100 * lo, 0.0) for h, (lo, _) in zip(heights, intervals)],
                    [max(100 * hi - h, 0.0) for h, (_, hi) in zip(heights, intervals)],
                ]
                bars = ax.bar(
                    xs,
                    heights,
                    width=width * 0.92,
                    color=MODEL_COLORS[j % len(MODEL_COLORS)],
                    label=plot_label(m.name),
                    yerr=errors if cell.determined else None,
                    error_kw={"elinewidth": 0.7, "capsize": 1.5, "ecolor": "#444"},
                )
                if n <= 4:
                    ax.bar_label(bars, labels=[f"{h:.0f}" for h in heights], fontsize=7, padding=1)
            ax.set_xticks(range(len(CLASSES)), [groups[c] for c in CLASSES], fontsize=8)
            prompts = "English" if prompt_set == "en" else target
            ax.set_title(f"{prompts} prompts")
            # Undetermined and failed responses are outside the bars: say how many bars rest on.
            classified = (
                f"{plot_label(m.name, 16)} {m.cells[prompt_set].determined}/{m.cells[prompt_set].answers}"
                for m in result.models
            )
            ax.set_xlabel("classified: " + ", ".join(classified), fontsize=7, color="#555")
            ax.set_ylim(0, 108)
        axes[0].set_ylabel("% of classified responses")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(n, 4), fontsize=8, frameon=False)
        fig.suptitle(f"Response language by prompt language ({target})", fontsize=10)
        _save(fig, path)
