"""Rich tables for the terminal."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from irtune.compare import Comparison
from irtune.metrics import HEADLINE_METRICS
from irtune.report.rows import CONTAMINATED as CONTAMINATED_MARK
from irtune.report.rows import HEADERS, comparison_rows, title


def results_table(result: dict[str, Any]) -> Table:
    title = result.get("label") or "evaluation"
    if result.get("contaminated"):
        title += f"  [bold red]{CONTAMINATED_MARK}[/]"
    table = Table(
        "dataset", "split", "queries", *[m.upper().replace("@", "@") for m in HEADLINE_METRICS], title=title
    )
    for entry in result["datasets"]:
        name = entry["dataset"] + (" [bold red]⚠[/]" if entry["contaminated"] else "")
        selection = entry["queries"]["selection"]
        split = entry["split"] + ("" if selection == "all" else f" ({selection})")
        table.add_row(
            name,
            split,
            str(entry["queries"]["count"]),
            *[f"{entry['metrics'][m]:.4f}" for m in HEADLINE_METRICS],
        )
    return table


def comparison_table(comparison: Comparison) -> Table:
    table = Table(*HEADERS, title=title(comparison))
    for row in comparison_rows(comparison):
        style = "red" if row.regression else ("bold green" if row.significant else None)
        table.add_row(*row.cells, style=style)
    return table
