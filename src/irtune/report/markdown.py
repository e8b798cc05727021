"""Markdown tables (for pull requests and model cards)."""

from __future__ import annotations

from irtune.compare import Comparison
from irtune.report.rows import HEADERS, comparison_rows, title


def markdown_report(comparisons: list[Comparison]) -> str:
    lines = ["# irtune comparison", ""]
    if any(c.contaminated for c in comparisons):
        lines += [
            "> **⚠ Contaminated results below**: some models were trained on evaluated "
            "queries; their numbers do not measure generalisation.",
            "",
        ]
    for comparison in comparisons:
        lines += [
            f"## {title(comparison)}",
            "",
            "| " + " | ".join(HEADERS) + " |",
            "|" + "---|" * len(HEADERS),
        ]
        for row in comparison_rows(comparison):
            cells = [f"**{c}**" if row.regression and i == 4 else c for i, c in enumerate(row.cells)]
            lines.append("| " + " | ".join(cells) + " |")
        lines += [
            "",
            "`*` significant at 0.05 after Holm correction across datasets "
            "(paired randomization test, 10,000 permutations); W/T/L = per-query wins/ties/losses.",
            "",
        ]
    return "\n".join(lines)
