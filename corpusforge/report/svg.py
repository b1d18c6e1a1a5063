"""Charts as inline SVG: horizontal bar charts (grouped or stacked, one or more panels side by side) and log-scale
histograms. The report embeds them in its one HTML page; they cost milliseconds where matplotlib cost a second (most
of it the import), they draw any script the browser can (no font table to escape CJK or Thai labels against), and
the same input gives the same bytes.

Every piece of text is escaped here, so the page may insert the result as markup.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from html import escape

WIDTH = 760  # the viewBox width; the page scales it to its column
FONT = 12
ROW = 24  # pitch of one bar row
LABEL_MAX = 28  # characters of a row label; longer ones are cut with "…" (the tables carry the full names)
GRID = "#e6e6e6"
INK = "#1d1d1f"
MUTED = "#555"


@dataclass(frozen=True)
class Series:
    """One colour of bars: a value per row; ``name`` goes in the legend."""

    name: str
    color: str
    values: list[float]


@dataclass(frozen=True)
class Panel:
    """One x axis of a bar chart. Series are drawn side by side in a row, or one after the other when stacked;
    ``notes`` (one per row, or none) are written after each row's bars."""

    xlabel: str
    series: list[Series]
    stacked: bool = False
    notes: list[str] | None = None
    headroom: float = 1.25  # the axis reaches this many times the longest bar, leaving room for the notes


@dataclass(frozen=True)
class Histogram:
    """Counts over ``edges`` (len(edges) == len(counts) + 1, positive, increasing), drawn on a log x axis, with a
    dashed line at ``marker`` labelled ``marker_label``."""

    title: str
    xlabel: str
    edges: list[int]
    counts: list[int]
    marker: float
    marker_label: str
    color: str


def compact(value: float) -> str:
    """Axis tick text: 950, 9,500, 95k, 9.5M, 1.2B, 3T."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= max(scale, 1e4):
            return f"{value / scale:.3g}{suffix}"
    return f"{value:,.0f}"


def text_width(text: str, size: float = FONT) -> float:
    """An estimate of the drawn width: wide (CJK) characters take a full em, combining marks (Thai vowels and tone
    marks) none, the rest about half."""
    width = 0.0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) == "Mn":
            continue
        width += 1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.58
    return width * size


def cut(text: str, limit: int = LABEL_MAX) -> str:
    """A label on one line: control characters shown as escapes, long names cut."""
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """0 and multiples of a 1-2-5 step up to ``high`` (integers: counts have no fractional ticks)."""
    if high <= 0:
        return [0]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(1, step)
    return [k * step for k in range(int(high // step) + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten within [low, high]; with 1-2-5 steps when the range spans less than two decades, and evenly
    spaced round numbers when it spans less than one."""
    if high / low < 10:
        step = nice_ticks(high - low, 4)[1] if high > low else 1
        return [k * step for k in range(math.ceil(low / step), math.floor(high / step) + 1)]
    subs = (1, 2, 5) if high / low < 100 else (1,)
    ticks = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        ticks += [s * 10**exponent for s in subs if low <= s * 10**exponent <= high]
    return ticks


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, text: str, anchor: str = "start", size: float = FONT, fill: str = INK, **attrs) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" text-anchor="{anchor}" fill="{fill}"{extra}>'
        f"{escape(text)}</text>"
    )


def _rect(x: float, y: float, w: float, h: float, color: str, tip: str) -> str:
    return (
        f'<rect class="bar" x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" fill="{color}">'
        f"<title>{escape(tip)}</title></rect>"
    )


def _svg(chart_id: str, title: str, height: float, body: list[str]) -> str:
    return (
        f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {WIDTH} {_n(height)}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="system-ui,-apple-system,&quot;Segoe UI&quot;,&quot;Noto Sans&quot;,sans-serif">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _legend(entries: list[tuple[str, str]], x0: float, y: float) -> tuple[list[str], float]:
    """Swatches in rows across the chart; returns the markup and the y below it."""
    body, x = [], x0
    for name, color in entries:
        width = 18 + text_width(name, FONT - 1) + 16
        if x > x0 and x + width > WIDTH - 8:
            x, y = x0, y + 16
        body.append(f'<rect x="{_n(x)}" y="{_n(y - 9)}" width="11" height="11" fill="{color}"/>')
        body.append(_text(x + 15, y, name, size=FONT - 1))
        x += width
    return body, y + 16


def bar_chart(chart_id: str, title: str, labels: list[str], panels: list[Panel]) -> str:
    """Horizontal bars, one row per label (top to bottom in the given order), panels side by side sharing the rows."""
    shown = [cut(label) for label in labels]
    left = 8 + max([text_width(s) for s in shown] + [0]) + 8
    body = [_text(8, 17, title, size=FONT + 1, font_weight="600")]
    legend = list(dict.fromkeys((s.name, s.color) for p in panels for s in p.series if s.name))
    legend_body, top = _legend(legend, left, 38)
    body += legend_body
    top += 2
    height = top + ROW * len(labels) + 40
    gap = 18
    panel_width = (WIDTH - left - 12 - gap * (len(panels) - 1)) / len(panels)
    for y, label in enumerate(shown):
        body.append(_text(left - 8, top + ROW * y + ROW / 2 + 4, label, anchor="end"))
    for k, panel in enumerate(panels):
        x0 = left + k * (panel_width + gap)
        totals = [
            sum(s.values[i] for s in panel.series) if panel.stacked else max([s.values[i] for s in panel.series])
            for i in range(len(labels))
        ]
        high = max([*totals, 1]) * panel.headroom
        scale = panel_width / high
        bottom = top + ROW * len(labels)
        for tick in nice_ticks(high / panel.headroom * 1.05):
            x = x0 + tick * scale
            body.append(f'<line x1="{_n(x)}" y1="{_n(top)}" x2="{_n(x)}" y2="{_n(bottom)}" stroke="{GRID}"/>')
            body.append(_text(x, bottom + 14, compact(tick), anchor="middle", size=FONT - 1, fill=MUTED))
        body.append(f'<line x1="{_n(x0)}" y1="{_n(top)}" x2="{_n(x0)}" y2="{_n(bottom)}" stroke="{MUTED}"/>')
        body.append(_text(x0 + panel_width / 2, bottom + 30, panel.xlabel, anchor="middle", fill=MUTED))
        thick = (ROW - 6) / (1 if panel.stacked else len(panel.series))
        for i, label in enumerate(labels):
            y, x = top + ROW * i + 3, x0
            for j, s in enumerate(panel.series):
                value = s.values[i]
                if value <= 0:
                    continue
                tip = f"{label}: {s.name + ' ' if s.name else ''}{value:,.0f}"
                if panel.stacked:
                    body.append(_rect(x, y, value * scale, thick, s.color, tip))
                    x += value * scale
                else:
                    body.append(_rect(x0, y + j * thick, value * scale, thick, s.color, tip))
            if panel.notes:
                end = x0 + totals[i] * scale + 4
                body.append(_text(end, top + ROW * i + ROW / 2 + 4, panel.notes[i], size=FONT - 1, fill=MUTED))
    return _svg(chart_id, title, height, body)


def histograms(chart_id: str, title: str, panels: list[Histogram]) -> str:
    """Log-x histograms stacked one above the other."""
    body = [_text(8, 17, title, size=FONT + 1, font_weight="600")]
    left, right, plot_height, top = 64, WIDTH - 16, 150, 30
    for panel in panels:
        lo, hi = panel.edges[0], panel.edges[-1]
        span = math.log10(hi) - math.log10(lo) or 1.0

        def xpos(value: float, lo=lo, span=span) -> float:
            return left + (math.log10(value) - math.log10(lo)) / span * (right - left)

        ceiling = max([*panel.counts, 1]) * 1.1
        bottom = top + 18 + plot_height
        body.append(_text(left, top + 10, panel.title, fill=MUTED))
        for tick in nice_ticks(ceiling, 4):
            y = bottom - tick / ceiling * plot_height
            body.append(f'<line x1="{left}" y1="{_n(y)}" x2="{right}" y2="{_n(y)}" stroke="{GRID}"/>')
            body.append(_text(left - 6, y + 4, compact(tick), anchor="end", size=FONT - 1, fill=MUTED))
        for a, b, n in zip(panel.edges, panel.edges[1:], panel.counts):
            if n:
                h = n / ceiling * plot_height
                tip = f"{a:,}–{b - 1:,}: {n:,}"
                body.append(_rect(xpos(a), bottom - h, max(xpos(b) - xpos(a) - 0.5, 0.5), h, panel.color, tip))
        for tick in log_ticks(lo, hi):
            body.append(_text(xpos(tick), bottom + 14, f"{tick:,.0f}", anchor="middle", size=FONT - 1, fill=MUTED))
        x = xpos(min(max(panel.marker, lo), hi))
        body.append(
            f'<line x1="{_n(x)}" y1="{_n(bottom - plot_height)}" x2="{_n(x)}" y2="{_n(bottom)}" stroke="#d62728" '
            f'stroke-dasharray="4 3"/>'
        )
        beyond_middle = x > (left + right) / 2  # the label goes on the side with room
        body.append(
            _text(
                x - 4 if beyond_middle else x + 4,
                bottom - plot_height + 10,
                panel.marker_label,
                anchor="end" if beyond_middle else "start",
                size=FONT - 1,
            )
        )
        body.append(f'<line x1="{left}" y1="{_n(bottom)}" x2="{right}" y2="{_n(bottom)}" stroke="{MUTED}"/>')
        body.append(_text((left + right) / 2, bottom + 30, panel.xlabel, anchor="middle", fill=MUTED))
        top = bottom + 44
    return _svg(chart_id, title, top, body)
