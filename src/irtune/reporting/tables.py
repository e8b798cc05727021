"""Rich tables for the terminal."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from irtune.evaluation.sweep import Frontier
from irtune.reporting.rows import CONTAMINATED as CONTAMINATED_MARK
from irtune.reporting.rows import (
    HEADERS,
    LEGEND,
    comparison_rows,
    metric_label,
    setup_lines,
    significance_note,
    title,
)
from irtune.results.compare import Comparison
from irtune.results.metrics import HEADLINE_METRICS
from irtune.results.schema import ResultsFile


def results_table(result: ResultsFile) -> Table:
    title = result.label or "evaluation"
    if result.contaminated:
        title += f"  [bold red]{CONTAMINATED_MARK}[/]"
    table = Table(
        "dataset", "split", "queries", *[metric_label(m) for m in HEADLINE_METRICS], "search", title=title
    )
    search = escape(result.retriever.label())
    for entry in result.datasets:
        name = entry.dataset + (" [bold red]⚠[/]" if entry.contaminated else "")
        selection = entry.queries.selection
        split = entry.split + ("" if selection == "all" else f" ({selection})")
        table.add_row(
            name,
            split,
            str(entry.queries.count),
            *[f"{entry.metrics[m]:.4f}" for m in HEADLINE_METRICS],
            search + _retrieval_note(entry.retrieval),
        )
    return table


def _retrieval_note(retrieval: dict[str, Any]) -> str:
    """What the retriever reported for a dataset, in a few words (index recall, weights)."""
    notes = []
    if index := retrieval.get("index"):
        notes.append(f"recall@100 vs exact {index['recall@100_vs_exact']:.3f}")
    notes += [f"{k} {v}" for k, v in retrieval.items() if k != "index" and isinstance(v, int | float | str)]
    return f" ({escape(', '.join(notes))})" if notes else ""


def comparison_table(comparison: Comparison) -> Table:
    """The table, headed by each run's setup and captioned by the correction used and any
    caveats (printed loudly: they qualify every number above them)."""
    heading = [title(comparison), *(escape(line) for line in setup_lines(comparison))]
    caption = [escape(significance_note(comparison)), escape(f"* {LEGEND}")]
    caption += [f"[bold yellow]⚠ caveat: {escape(c)}[/]" for c in comparison.caveats]
    table = Table(
        *HEADERS,
        title="\n".join(heading),
        caption="\n".join(caption),
        caption_justify="left",
        caption_style="none",
    )
    for row in comparison_rows(comparison):
        style = "red" if row.regression else ("bold green" if row.significant else None)
        table.add_row(*row.cells, style=style)
    return table


def frontier_table(frontier: Frontier, metric: str = "ndcg@10") -> Table:
    """One row per setting and dataset: bytes per document, the metric, its change from full
    precision with the Holm-corrected p, and search time per query."""
    table = Table(
        "setting",
        "dataset",
        "bytes/doc",
        metric_label(metric),
        "Δ vs full",
        "p (Holm)",
        "search ms/query",
        title=escape(
            f"efficiency frontier: each setting against full = {frontier.baseline} (paired "
            "randomization test, Holm over every setting × dataset × metric)"
        ),
    )
    for row in frontier.rows(metric):
        delta, p = row.get("delta"), row.get("p_holm")
        table.add_row(
            str(row["setting"]),
            str(row["dataset"]),
            f"{row['bytes_per_document']:g}",
            f"{row[metric]:.4f}",
            "" if delta is None else f"{delta:+.4f}",
            "" if p is None else f"{p:.3g}",
            f"{row['search_ms_per_query']:.2f}",
        )
    return table
