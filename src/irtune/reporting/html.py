"""The self-contained HTML report: tables, charts (inline SVG) and provenance."""

from __future__ import annotations

import html
import statistics
from pathlib import Path
from typing import Any

from irtune import __version__
from irtune.core.provenance import now_iso
from irtune.reporting import charts, queries_html
from irtune.reporting.queries import analyse_report
from irtune.reporting.rows import (
    HEADERS,
    LEGEND,
    comparison_rows,
    setup_label,
    setup_lines,
    significance_note,
    title,
)
from irtune.reporting.seeds import seeds_html
from irtune.reporting.training import training_rows
from irtune.reporting.verdict import domain_answer, verdict
from irtune.results.compare import Comparison, RunSetup
from irtune.results.model import TrainingSummary
from irtune.results.schema import ResultsFile

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1rem 0;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f3f3f3} td:first-child,td:nth-child(2){text-align:left}
tr.regression td:nth-child(5),tr.regression td:nth-child(6){color:#b00020;font-weight:bold}
tr.significant td{background:#eef7ee} tr.regression.significant td{background:#fbeaea}
.banner{background:#fff3cd;border:2px solid #d39e00;padding:.75rem;font-weight:bold}
.contaminated{color:#b00020;font-weight:bold}
.caveat{background:#fff3cd;border:2px solid #d39e00;padding:.5rem;margin:.5rem 0;font-weight:bold}
table.comparison caption{caption-side:bottom;text-align:left;font-size:.8rem;padding-top:.3rem}
ul.setup{margin:.25rem 0;font-size:.9rem}
.charts{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
.chart svg{max-width:100%;height:auto}
code{font-size:.8rem}
#verdict li{margin:.2rem 0} #verdict{font-size:1rem}
table.training th{text-align:left;background:#f8f8f8} table.training td{text-align:left}
"""


def _table(comparison: Comparison) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    body = []
    for row in comparison_rows(comparison):
        classes = " ".join(
            c
            for c, on in (
                ("regression", row.regression),
                ("significant", row.significant),
                ("contaminated-row", row.contaminated),
            )
            if on
        )
        cells = "".join(f"<td>{html.escape(c)}</td>" for c in row.cells)
        body.append(f'<tr class="{classes}">{cells}</tr>')
    caption = f"{html.escape(significance_note(comparison))}; * {html.escape(LEGEND)}"
    return f'<table class="comparison"><caption>{caption}</caption><tr>{head}</tr>{"".join(body)}</table>'


def _setup_and_caveats(comparison: Comparison) -> str:
    """Each run's setup, then the caveats, loud, above the table they qualify."""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in setup_lines(comparison))
    caveats = "".join(f'<div class="caveat">⚠ Caveat: {html.escape(c)}</div>' for c in comparison.caveats)
    return f'<ul class="setup">{items}</ul>{caveats}'


def _summary(comparisons: list[Comparison]) -> str:
    rows = []
    for c in comparisons:
        deltas = [x for d in c.datasets for x in d.deltas["ndcg@10"]]
        s = c.summary()["ndcg@10"]
        rows.append(
            f"<tr><td>{html.escape(title(c))}</td><td>{s['delta']:+.4f}</td>"
            f"<td>{100 * s['relative']:+.1f}%</td><td>{statistics.fmean(deltas):+.4f}</td>"
            f"<td>{statistics.median(deltas):+.4f}</td>"
            f"<td>{s['improved_datasets']}/{len(c.datasets)}</td>"
            f"<td>{s['significant_wins']}</td><td>{s['significant_losses']}</td></tr>"
        )
    return (
        '<table class="summary"><tr><th>comparison</th><th>mean Δ NDCG@10 (datasets)</th>'
        "<th>Δ %</th><th>mean per-query Δ</th><th>median per-query Δ</th>"
        "<th>datasets improved</th><th>significant wins</th><th>significant losses</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _verdict(comparisons: list[Comparison]) -> str:
    items = "".join(f"<li>{html.escape(s)}</li>" for s in verdict(comparisons))
    return f'<section id="verdict"><h2>Verdict</h2><ul>{items}</ul></section>'


def _domain(comparisons: list[Comparison], colors: dict[str, str]) -> list[str]:
    """The domain study's two questions, answered in words and one chart."""
    matches, transfer = domain_answer(comparisons)
    chart = charts.domain_deltas(comparisons, colors)
    if not (matches or transfer or chart):
        return []
    parts = ['<section id="domain"><h2>Domain model vs per-dataset models</h2>']
    if matches:
        parts.append(
            "<p>Does the model tuned on several datasets match the one tuned on each alone, on its "
            "own dataset? (paired test of the two tuned models)</p>"
        )
        parts.append("<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in matches) + "</ul>")
    if transfer:
        parts.append(
            "<p>What does a per-dataset model do to the other datasets? (against the base model)</p>"
        )
        parts.append("<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in transfer) + "</ul>")
    if chart:
        parts.append(f'<div class="chart" id="chart-domain">{chart}</div>')
    parts.append("</section>")
    return parts


def _tuned(results: list[ResultsFile]) -> list[tuple[ResultsFile, TrainingSummary]]:
    return [(r, r.model.training) for r in results if r.model and r.model.training]


def _training_curves(results: list[ResultsFile], colors: dict[str, str]) -> list[str]:
    curves = charts.training_curves([result for result, _ in _tuned(results)], colors)
    if curves is None:
        return []
    return ["<h2>Training and selection</h2>", f'<div class="chart" id="chart-training">{curves}</div>']


def _training_tables(results: list[ResultsFile]) -> list[str]:
    """Each fine-tuned model's training record as a table a person reads."""
    parts = []
    for result, training in _tuned(results):
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in training_rows(training)
        )
        parts.append(f'<h3>{html.escape(result.label)}</h3><table class="training">{rows}</table>')
    return ['<h2 id="training">How each model was trained</h2>', *parts] if parts else []


def _provenance(result: ResultsFile) -> str:
    model = result.model
    env = result.environment
    items: list[tuple[str, Any]] = [
        ("label", result.label),
        ("file", result.path),
        ("model", model.name if model else result.retriever.name),
        ("weights sha256", model.weights_sha256 if model else None),
        ("prompts", model.prompts if model else None),
        ("max length", model.max_seq_length if model else None),
        ("retriever / search", setup_label(RunSetup.of(result))),
        ("retriever", result.retriever.description),
        ("training", 'see "How each model was trained"' if model and model.training else None),
        ("irtune / commit", f"{env.get('irtune_version')} / {env.get('git_commit')}"),
        (
            "date / host",
            f"{env.get('date')} / {env.get('host')} ({env.get('cpu')}, GPUs: {env.get('gpus') or 'none'})",
        ),
    ]
    for entry in result.datasets:
        q = entry.queries
        items.append(
            (
                f"{entry.dataset}:{entry.split}",
                f"{q.count} queries ({q.selection}); files "
                + ", ".join(f"{k} {v[:12]}" for k, v in entry.data_files_sha256.items())
                + (f"; retrieval {entry.retrieval}" if entry.retrieval else "")
                + (" — CONTAMINATED" if entry.contaminated else ""),
            )
        )
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th>"
        f"<td style='text-align:left'><code>{html.escape(str(v))}</code></td></tr>"
        for k, v in items
        if v is not None
    )
    mark = ' <span class="contaminated">⚠ contaminated</span>' if result.contaminated else ""
    return f"<h3>{html.escape(result.label)}{mark}</h3><table>{rows}</table>"


def html_report(
    comparisons: list[Comparison], results: list[ResultsFile], data_dir: Path | None = None
) -> str:
    """The answer first (verdict in words, then the training and selection curves), the
    tables and charts that back it next, with each comparison's per-query analysis (query
    texts and titles from the datasets under `data_dir`), provenance last."""
    against = [c for c in comparisons if c.kind == "vs baseline"]
    head_to_head = [c for c in comparisons if c.kind == "head to head"]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>irtune report</title>"
        f"<style>{STYLE}{queries_html.STYLE}</style></head><body>",
        "<h1>irtune report</h1>",
    ]
    if any(c.contaminated for c in comparisons):
        parts.append(
            '<div class="banner" id="contamination-banner">⚠ Some results are CONTAMINATED: '
            "the model was trained on queries that were evaluated. Those numbers do not "
            "measure generalisation and are marked wherever they appear.</div>"
        )
    parts.append(_verdict(comparisons))
    colors = charts.run_colors([r.label for r in results])
    parts += _training_curves(results, colors)
    parts += _domain(comparisons, colors)
    parts.append(seeds_html(comparisons))
    parts.append(
        f"<p>Generated {now_iso()} by irtune {__version__}. All numbers were measured by irtune "
        "with trec_eval semantics; significance: paired randomization test (10,000 permutations), "
        "Holm-corrected over every (candidate, dataset, metric) test of this report as one family "
        "(the count is under each table); CIs: 10,000 bootstrap resamples of per-query differences.</p>"
    )
    parts += ["<h2>Summary</h2>", _summary(against)]
    parts += [
        '<h2>Metrics across datasets</h2><div class="chart" id="chart-bars">',
        charts.metric_bars(against, colors),
        "</div>",
    ]
    if frontier := charts.frontier(results):
        parts += [
            "<h2>Quality against bytes per document</h2>",
            "<p>Runs of one model that search cheaper document vectors (fewer dimensions, int8, "
            "binary): the efficiency frontier. Each point is a results file; its paired test against "
            "the baseline is in the tables below.</p>",
            f'<div class="chart" id="chart-frontier">{frontier}</div>',
        ]
    ordered = [*against, *head_to_head]
    for i, (c, analysis) in enumerate(zip(ordered, analyse_report(ordered, results, data_dir), strict=True)):
        parts += [
            f"<h2>{html.escape(title(c))}</h2>",
            _setup_and_caveats(c),
            _table(c),
            '<div class="charts">',
            f'<div class="chart chart-scatter" id="chart-scatter-{i}">{charts.scatter(c)}</div>',
        ]
        parts += [
            f'<div class="chart chart-radar">{charts.radar(c, d.dataset, colors)}</div>' for d in c.datasets
        ]
        parts += [
            f'<div class="chart chart-hist">{charts.delta_histogram(c, d.dataset)}</div>' for d in c.datasets
        ]
        parts += ["</div>", queries_html.per_query_section(analysis, title(c), i)]
    parts += _training_tables(results)
    parts.append("<h2>Provenance</h2>")
    parts += [_provenance(r) for r in results]
    parts.append(f"<script>{queries_html.SCRIPT}</script></body></html>")
    return "\n".join(parts)
