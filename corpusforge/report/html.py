"""The report page: report.html.jinja rendered by jinja2 with autoescape on, so recipe names, source names, drop
reasons and the recipe itself reach the page escaped by the template engine. This module only turns the manifest
and the aggregated stats into the figures the template lays out.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from markupsafe import Markup

from corpusforge.report.aggregate import CorpusStats, approx_quantile


def _num(value: int | float | None) -> str:
    return "—" if value is None else f"{value:,}"


def _pct(part: int | None, whole: int | None) -> str:
    return "—" if part is None or not whole else f"{part / whole:.1%}"


@lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    return env


def _tokens_step(manifest: dict) -> dict | None:
    for step in manifest["recipe"].get("steps", []):
        if isinstance(step, dict) and "tokens" in step:
            return step["tokens"] or {}
    return None


def _funnel_rows(steps: list[dict]) -> list[list[str]]:
    rows = []
    for s in steps:
        reasons = ", ".join(f"{r}: {n:,}" for r, n in sorted(s["dropped"].items(), key=lambda kv: (-kv[1], kv[0])))
        dropped = f"{s['in'] - s['out']:,}"
        if s.get("counts"):  # a step's own tallies (the pii step's identifiers per kind)
            reasons = "; ".join(
                filter(None, [reasons, "counted " + ", ".join(f"{k}: {n:,}" for k, n in s["counts"].items())])
            )
        rows.append([s["step"], f"{s['in']:,}", f"{s['out']:,}", dropped, _pct(s["out"], s["in"]), reasons or "—"])
    return rows


def _language_rows(manifest: dict, stats: CorpusStats) -> list[list[str]]:
    languages = manifest.get("languages", {})
    identified, output = languages.get("identified", {}), languages.get("output", {})
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
    return rows


def _length_rows(stats: CorpusStats) -> list[list[str]]:
    rows = []
    for unit, hist, lo, hi, total, n in (
        ("characters", stats.char_hist, stats.chars_min, stats.chars_max, stats.chars, stats.rows),
        ("tokens", stats.token_hist, stats.tokens_min, stats.tokens_max, stats.tokens, stats.token_rows),
    ):
        if hist:
            q = [approx_quantile(hist, p, lo, hi) for p in (0.1, 0.5, 0.9)]
            rows.append([unit, _num(lo), *(f"≈{v:,}" for v in q), _num(hi), f"{total / n:,.1f}"])
    return rows


def render_html(out: Path, manifest: dict, stats: CorpusStats, plots: dict[str, str]) -> str:
    """The page for a build, with ``plots`` (SVG markup by chart name) inline."""
    recipe, steps = manifest["recipe"], manifest["steps"]
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
    token_steps = [s for s in steps if "tokens_in" in s and "tokens_out" in s]
    tokens_cfg = _tokens_step(manifest)
    group = [
        [g.name, _num(g.docs), _pct(g.docs, stats.rows), _num(g.chars), _pct(g.chars, stats.chars), _num(g.tokens)]
        for g in stats.groups
    ]
    return (
        _environment()
        .get_template("report.html.jinja")
        .render(
            name=recipe.get("name", "(unnamed recipe)"),
            description=recipe.get("description") or "",
            out=str(out),
            facts=facts,
            plots={name: Markup(svg) for name, svg in plots.items()},  # svg.py escaped their text
            stats=stats,
            funnel=_funnel_rows(steps),
            token_steps=[[s["step"], _num(s["tokens_in"]), _num(s["tokens_out"])] for s in token_steps],
            has_tokens_step=tokens_cfg is not None,
            tokenizer=tokens_cfg.get("tokenizer") if tokens_cfg else None,
            identified=bool(manifest.get("languages", {}).get("identified")),
            languages=_language_rows(manifest, stats),
            lengths=_length_rows(stats),
            group_column=stats.group_column or "source",
            groups=group,
            inputs=[
                [i.get("source", ""), i.get("path", ""), _num(i.get("bytes"))] for i in manifest.get("inputs", [])
            ],
            versions=[[k, v] for k, v in manifest.get("versions", {}).items()],
            recipe_json=json.dumps(recipe, indent=2, ensure_ascii=False),
        )
    )
