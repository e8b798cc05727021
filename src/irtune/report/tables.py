"""Rich tables for the terminal."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from irtune.compare import Comparison
from irtune.metrics import HEADLINE_METRICS
from irtune.report.rows import CONTAMINATED as CONTAMINATED_MARK
from irtune.report.rows import (
    HEADERS,
    LEGEND,
    comparison_rows,
    metric_label,
    setup_lines,
    significance_note,
    title,
)


def results_table(result: dict[str, Any]) -> Table:
    title = result.get("label") or "evaluation"
    if result.get("contaminated"):
        title += f"  [bold red]{CONTAMINATED_MARK}[/]"
    table = Table(
        "dataset", "split", "queries", *[metric_label(m) for m in HEADLINE_METRICS], "search", title=title
    )
    for entry in result["datasets"]:
        name = entry["dataset"] + (" [bold red]⚠[/]" if entry["contaminated"] else "")
        selection = entry["queries"]["selection"]
        split = entry["split"] + ("" if selection == "all" else f" ({selection})")
        index = entry.get("index") or {}
        if index.get("type", "exact") == "exact":
            search = "exact" if index else "bm25"
        else:
            search = f"{index['type']} (recall@100 vs exact {index['recall@100_vs_exact']:.3f})"
        table.add_row(
            name,
            split,
            str(entry["queries"]["count"]),
            *[f"{entry['metrics'][m]:.4f}" for m in HEADLINE_METRICS],
            search,
        )
    return table


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
