"""The build report: HTML tables that match the manifest and the shards, SVG charts that draw them, clear errors."""

from __future__ import annotations

import json
import math
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import polars as pl
import pytest

import corpusforge as cf
from corpusforge.corpus.finished import CorpusError
from corpusforge.corpus.ledger import Ledger
from corpusforge.report import (
    FINE_BINS_PER_DECADE,
    MAX_BARS,
    approx_quantile,
    display_bins,
    plot_label,
    write_report,
)
from corpusforge.report.svg import cut, log_ticks, nice_ticks, text_width
from tests.support import make_recipe, write_jsonl

FORUM = "論壇 $forum"  # a CJK name with a mathtext character: must reach the tables and the charts intact


@cf.step(name="report_test_count_tokens")
def count_tokens(doc):
    """Stands in for the `tokens` step: one token per two characters."""
    doc.metadata["n_tokens"] = len(doc.text) // 2 + 1
    return doc


class Page(HTMLParser):
    """The tables (by id, rows of cell texts) and the charts (ids of the inline SVGs) of a report."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self._table = self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id", ""), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = ""
        elif tag == "svg":
            self.images.append(attrs["id"])

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._table[-1].append(self._cell)
            self._cell = None
        elif tag == "table":
            self._table = None

    def rows(self, table_id: str) -> dict[str, list[str]]:
        """Body rows keyed by their first cell (the header row dropped)."""
        return {row[0]: row for row in self.tables[table_id][1:]}


def _build(tmp_path, real_texts, steps, name="report"):
    web = [{"text": t} for t in real_texts["zh_Hant"][:40] + real_texts["en"][:30]]
    forum = [{"text": t} for t in real_texts["th"][:20] + real_texts["ja"][:25] + real_texts["zh_Hant"][40:50]]
    write_jsonl(tmp_path / "web" / "a.jsonl", web)
    write_jsonl(tmp_path / "forum" / "b.jsonl", forum)
    recipe = make_recipe(tmp_path, str(tmp_path / "web" / "*.jsonl"), steps=steps, name=name)
    recipe["sources"] = [
        {"name": "web", "glob": str(tmp_path / "web" / "*.jsonl")},
        {"name": FORUM, "glob": str(tmp_path / "forum" / "*.jsonl")},
    ]
    return cf.run(cf.Recipe.from_dict(recipe))


STEPS = [{"language": {"keep": ["zh_Hant", "th"], "min_score": 0.5}}, {"length": {"min_chars": 5}}]


@pytest.fixture(scope="module")
def built(tmp_path_factory, real_texts):
    return _build(tmp_path_factory.mktemp("report"), real_texts, STEPS)


@pytest.fixture(scope="module")
def report(built):
    path = write_report(built.path)
    return path, Page(path.read_text(encoding="utf-8"))


def test_report_funnel_table_matches_manifest(built, report):
    path, page = report
    assert path == built.path / "report.html"
    steps = built.manifest["steps"]
    assert [s["step"] for s in steps] == ["read:web", f"read:{FORUM}", "language", "length", "write"]
    funnel = page.rows("funnel")
    assert list(funnel) == [s["step"] for s in steps]
    for s in steps:
        assert funnel[s["step"]][1:4] == [f"{s['in']:,}", f"{s['out']:,}", f"{s['in'] - s['out']:,}"]
        for reason, n in s["dropped"].items():
            assert f"{reason}: {n:,}" in funnel[s["step"]][5]
    dropped = {s["step"]: s["dropped"] for s in steps}
    assert dropped["language"]["language_not_kept"] > 0 and dropped["length"]["too_short"] > 0
    text = path.read_text(encoding="utf-8")
    read = sum(s["in"] for s in steps if s["step"].startswith("read:"))
    assert f"<dt>documents read</dt><dd>{read:,}</dd>" in text
    assert f"<dt>rows written</dt><dd>{built.manifest['rows']:,} in " in text
    assert "No token counts" in text and "no <code>tokens</code> step" in text


def test_report_language_and_source_tables_match_shards(built, report):
    _, page = report
    languages = page.rows("languages")
    output, identified = built.manifest["languages"]["output"], built.manifest["languages"]["identified"]
    assert set(languages) == set(output) | set(identified)
    for lang, n in identified.items():
        assert languages[lang][1:3] == [f"{n:,}", f"{output.get(lang, 0):,}"]
    assert {"zh_Hant", "th"} <= set(output) and "ja" in identified

    by_source = (
        built.scan()
        .group_by("source")
        .agg(pl.len().alias("rows"), pl.col("text").str.len_chars().cast(pl.Int64).sum().alias("chars"))
        .collect()
    )
    sources = page.rows("sources")
    assert set(sources) == {"web", FORUM}  # the CJK name reaches the HTML intact
    for row in by_source.iter_rows(named=True):
        assert sources[row["source"]][1] == f"{row['rows']:,}"
        assert sources[row["source"]][3] == f"{row['chars']:,}"


def charts(text: str) -> dict[str, ET.Element]:
    """The inline SVGs of a page, parsed as XML (a chart that is not well-formed fails here)."""
    found = {}
    for markup in re.findall(r"<svg .*?</svg>", text, flags=re.S):
        element = ET.fromstring(markup)
        found[element.get("id")] = element
    return found


SVG = "{http://www.w3.org/2000/svg}"


def bar_tips(chart: ET.Element) -> list[tuple[str, ET.Element]]:
    """(tooltip, rect) of each bar: the tooltip names the row, the series and the value drawn."""
    return [(r.find(f"{SVG}title").text, r) for r in chart.iter(f"{SVG}rect") if r.get("class") == "bar"]


def test_report_charts_draw_the_manifest(built, report):
    path, page = report
    assert sorted(page.images) == [f"plot-{n}" for n in ("funnel", "languages", "lengths", "sources")]
    drawn = charts(path.read_text(encoding="utf-8"))
    assert sorted(drawn) == sorted(page.images)
    # each funnel bar carries its count; the kept bars' widths are in the ratio of the steps' outputs
    bars = {tip: float(r.get("width")) for tip, r in bar_tips(drawn["plot-funnel"])}
    steps = built.manifest["steps"]
    kept = [bars[f"{s['step']}: kept {s['out']:,}"] for s in steps if s["out"]]
    widest = max(s["out"] for s in steps)
    for s, width in zip([s for s in steps if s["out"]], kept):
        assert width == pytest.approx(max(kept) * s["out"] / widest, abs=0.2), s["step"]
    for s in steps:
        for reason, n in s["dropped"].items():
            assert f"{s['step']}: dropped: {reason} {n:,}" in bars
    # the source names, CJK and all, are drawn as they are (escaped only by XML)
    labels = [t.text for t in drawn["plot-sources"].iter(f"{SVG}text")]
    assert FORUM in labels and "web" in labels
    # every length bar is a row count of the histogram, and they add up to the rows
    counts = [int(tip.rpartition(": ")[2].replace(",", "")) for tip, _ in bar_tips(drawn["plot-lengths"])]
    assert sum(counts) == built.manifest["rows"] * (2 if "tokens" in page.rows("lengths") else 1)


def test_report_is_deterministic_and_drops_stale_plots(built, report):
    path, _ = report
    before = path.read_bytes()
    stale = built.path / "report" / "tokens_funnel.png"  # what an earlier version drew, recorded in the ledger
    stale.parent.mkdir(exist_ok=True)
    Ledger(built.path).record(stale)
    stale.write_bytes(b"stale")
    write_report(str(built.path))
    assert path.read_bytes() == before and not stale.exists()


def test_report_with_token_counts(tmp_path, real_texts):
    result = _build(tmp_path, real_texts, [*STEPS, {"report_test_count_tokens": {}}], name="tokens")
    expected = result.scan().select(pl.col("n_tokens").sum()).collect().item()
    text = write_report(result.path).read_text(encoding="utf-8")
    page = Page(text)
    assert "No token counts" not in text and f"{expected:,} tokens in the output" in text
    assert "plot-lengths" in page.images and "plot-tokens_funnel" not in page.images
    assert page.rows("lengths").keys() == {"characters", "tokens"}
    sources = page.rows("sources")
    assert sum(int(row[5].replace(",", "")) for row in sources.values()) == expected

    # a manifest with per-step token counts gets a token funnel
    manifest = json.loads((result.path / "manifest.json").read_text(encoding="utf-8"))
    for i, step in enumerate(manifest["steps"]):
        step["tokens_in"], step["tokens_out"] = 1000 * (10 - i), 1000 * (9 - i)
    (result.path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    text = write_report(result.path).read_text(encoding="utf-8")
    page = Page(text)
    assert "plot-tokens_funnel" in page.images
    bars = [tip for tip, _ in bar_tips(charts(text)["plot-tokens_funnel"])]
    assert "language: tokens in 8,000" in bars and "language: tokens out 7,000" in bars
    assert page.rows("tokens")["language"][1:] == ["8,000", "7,000"]


SCRIPT = '<script>alert("x")</script>'


@cf.filter(name="report_test_drop_with_markup")
def drop_with_markup(doc):
    """Drops every third document with a reason that is markup."""
    return len(doc.text) % 3 != 0 or (False, f"{SCRIPT} & co")


def test_report_escapes_user_text(tmp_path, real_texts):
    write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in real_texts["en"][:30]])
    recipe = make_recipe(tmp_path, str(tmp_path / "in.jsonl"), steps=[{"report_test_drop_with_markup": {}}])
    recipe |= {"name": f"name {SCRIPT}", "description": f"<b>description</b> {SCRIPT}"}
    recipe["sources"][0]["name"] = f"src {SCRIPT}"
    result = cf.run(cf.Recipe.from_dict(recipe))
    assert result.manifest["steps"][1]["dropped"][f"{SCRIPT} & co"] > 0
    text = write_report(result.path).read_text(encoding="utf-8")
    # the page has no script and no <b> of its own: any such tag is user text that was not escaped
    assert "<script" not in text and "<b>" not in text
    assert "<h1>Build report: name &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</h1>" in text
    assert "&lt;b&gt;description&lt;/b&gt;" in text and "&amp; co" in text
    page = Page(text)  # and the escaped text reads back as what the user wrote
    assert f"read:src {SCRIPT}" in page.rows("funnel")
    assert page.rows("funnel")["report_test_drop_with_markup"][5].startswith(f"{SCRIPT} & co: ")
    assert list(page.rows("sources")) == [f"src {SCRIPT}"]


def test_report_of_an_empty_output(tmp_path, real_texts):
    write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in real_texts["en"][:10]])
    recipe = make_recipe(tmp_path, str(tmp_path / "in.jsonl"), steps=[{"language": {"keep": ["th"]}}])
    result = cf.run(cf.Recipe.from_dict(recipe))
    assert result.manifest["rows"] == 0
    text = write_report(result.path).read_text(encoding="utf-8")
    page = Page(text)
    assert page.rows("funnel")["language"][1:3] == ["10", "0"]
    assert "No rows with text in the output" in text
    assert "plot-lengths" not in page.images and "plot-funnel" in page.images


def test_report_errors_name_what_is_missing(tmp_path, built):
    with pytest.raises(CorpusError, match="does not exist"):
        write_report(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="not a corpusforge output: manifest.json is missing"):
        write_report(tmp_path / "empty")
    (tmp_path / "unfinished" / ".corpusforge").mkdir(parents=True)
    with pytest.raises(CorpusError, match="unfinished build: manifest.json is missing.*rerun"):
        write_report(tmp_path / "unfinished")
    copy = tmp_path / "copy"
    shutil.copytree(built.path, copy)
    shard = built.manifest["shards"][0]["file"]
    (copy / shard).unlink()
    with pytest.raises(cf.CorpusforgeError, match=f"shard\\(s\\) {shard} listed in manifest.json are missing"):
        write_report(copy)


def test_plot_labels_and_bins():
    label = plot_label(FORUM)
    assert label.isascii() and "\\u8ad6" in label and "\\$forum" in label
    assert plot_label("zh_Hant") == "zh_Hant" and plot_label("a\nb") == "a\\nb"
    assert len(plot_label("x" * 100)) == 28

    def fine_hist(values):  # the binning report.aggregate does in polars
        hist = {}
        for v in values:
            b = math.floor(math.log10(max(v, 1)) * FINE_BINS_PER_DECADE + 1e-9)
            hist[b] = hist.get(b, 0) + 1
        return hist

    # every integer from 5 to 84 once: no empty bar (log bins narrower than 1 would leave gaps), each bar's count
    # is the number of integers it covers (the last bar may reach past 84), and the edges span the data
    edges, counts = display_bins(fine_hist(range(5, 85)))
    assert len(counts) <= MAX_BARS and len(edges) == len(counts) + 1 and all(counts)
    widths = [b - a for a, b in zip(edges, edges[1:])]
    assert (
        counts[:-1] == widths[:-1] and 1 <= counts[-1] <= widths[-1] and edges[0] == 5 and edges[-2] <= 84 < edges[-1]
    )

    values = [round(10 ** (i / 1000)) for i in range(5000)]  # log-uniform over 1 … 100,000
    hist = fine_hist(values)
    edges, counts = display_bins(hist)
    assert len(counts) <= MAX_BARS and sum(counts) == len(values) and edges == sorted(set(edges))
    median = approx_quantile(hist, 0.5, min(values), max(values))
    assert abs(median - 10**2.5) / 10**2.5 < 0.03
    assert approx_quantile({}, 0.5, None, None) is None


def test_chart_axes_and_labels():
    assert nice_ticks(2364) == [0, 500, 1000, 1500, 2000]
    assert nice_ticks(3) == [0, 1, 2, 3]  # counts: no fractional ticks
    assert log_ticks(132, 457) == [200, 300, 400]  # under a decade: round numbers, not one lonely 200
    assert log_ticks(5, 84) == [5, 10, 20, 50]
    assert log_ticks(3, 50_000) == [10, 100, 1000, 10_000]
    assert text_width("論壇") == pytest.approx(text_width("ab") / 0.58)  # a CJK character takes a full em
    assert text_width("ที่") == text_width("ท")  # Thai vowel and tone marks sit on their consonant
    assert cut("a\nb") == "a\\nb" and len(cut("x" * 100)) == 28
