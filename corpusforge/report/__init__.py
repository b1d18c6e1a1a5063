"""The build report: one HTML page (OUT/report.html) with PNG plots (OUT/report/*.png) for a finished build.

    corpusforge report out/quickstart        # or, from Python: corpusforge.report.write_report("out/quickstart")

It shows the funnel (documents in/out per step with drop reasons, tokens per step where counted), the languages
identified and kept, length histograms (characters; tokens when a `tokens` step filled `n_tokens`) and what each
source contributed. Counts come from manifest.json. Lengths are aggregated by polars over the shards in a streaming
query that reads `text` once (fixed log-spaced bins, so no sampling and no text held in Python), which keeps the
report cheap on outputs far larger than memory. The page is one self-contained file (inline CSS and SVG charts, no
network, no matplotlib) and deterministic: the same build gives the same bytes. Writing it takes a fraction of a
second, most of it the polars pass.

Three parts: `aggregate` (manifest + one polars pass → `CorpusStats`), `plots` (the charts, drawn by `svg`) and
`html` (report.html.jinja, rendered with autoescape).
"""

from __future__ import annotations

from pathlib import Path

from corpusforge.corpus.layout import REPORT_DIR, REPORT_HTML
from corpusforge.corpus.ledger import Ledger
from corpusforge.report.aggregate import (
    FINE_BINS_PER_DECADE,
    CorpusStats,
    Group,
    ReportError,
    aggregate,
    approx_quantile,
    load_finished_build,
)
from corpusforge.report.html import render_html
from corpusforge.report.plots import (
    MAX_BARS,
    PLOTS,
    RC,
    TOP_N,
    display_bins,
    draw_plots,
    plot_funnel,
    plot_label,
    plot_languages,
    plot_lengths,
    plot_sources,
    plot_token_funnel,
)

# the figure helpers corpusforge.eval.scorecard.evaluate draws its own plots with
from corpusforge.report.plots import _figure as _figure
from corpusforge.report.plots import _save as _save
from corpusforge.report.svg import compact

__all__ = [
    "FINE_BINS_PER_DECADE",
    "MAX_BARS",
    "PLOTS",
    "RC",
    "REPORT_DIR",
    "REPORT_HTML",
    "TOP_N",
    "CorpusStats",
    "Group",
    "ReportError",
    "aggregate",
    "approx_quantile",
    "compact",
    "display_bins",
    "draw_plots",
    "load_finished_build",
    "plot_funnel",
    "plot_label",
    "plot_languages",
    "plot_lengths",
    "plot_sources",
    "plot_token_funnel",
    "render_html",
    "write_report",
]


def write_report(out: str | Path) -> Path:
    """Write OUT/report.html for a finished build; return its path. The page is recorded in the build's ledger
    before it is written; files of an earlier report that no longer apply (the PNG plots under OUT/report/ that
    earlier versions drew) are removed, so the ledger's report entries are this report's files."""
    out = Path(out)
    manifest = load_finished_build(out)
    stats = aggregate(out, manifest)
    ledger = Ledger(out)
    ledger.write(out / REPORT_HTML, render_html(out, manifest, stats, draw_plots(manifest, stats)))
    ledger.remove(lambda rel: rel.startswith(f"{REPORT_DIR}/"))
    return out / REPORT_HTML
