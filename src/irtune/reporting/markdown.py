"""Markdown tables (for pull requests and model cards)."""

from __future__ import annotations

from irtune.reporting.rows import HEADERS, LEGEND, comparison_rows, setup_lines, significance_note, title
from irtune.reporting.seeds import seeds_markdown
from irtune.reporting.verdict import domain_answer, verdict
from irtune.results.compare import Comparison


def markdown_report(comparisons: list[Comparison]) -> str:
    lines = ["# irtune comparison", ""]
    if any(c.contaminated for c in comparisons):
        lines += [
            "> **⚠ Contaminated results below**: some models were trained on evaluated "
            "queries; their numbers do not measure generalisation.",
            "",
        ]
    lines += ["## Verdict", "", *[f"- {s}" for s in verdict(comparisons)], ""]
    matches, transfer = domain_answer(comparisons)
    if matches or transfer:
        lines += ["## Domain model vs per-dataset models", "", *[f"- {s}" for s in [*matches, *transfer]], ""]
    lines += seeds_markdown(comparisons)
    for comparison in comparisons:
        lines += [f"## {title(comparison)}", ""]
        lines += [f"- {line}" for line in setup_lines(comparison)] + [""]
        lines += [f"> **⚠ Caveat:** {caveat}" for caveat in comparison.caveats]
        lines += [""] if comparison.caveats else []
        lines += [
            "| " + " | ".join(HEADERS) + " |",
            "|" + "---|" * len(HEADERS),
        ]
        for row in comparison_rows(comparison):
            cells = [f"**{c}**" if row.regression and i == 4 else c for i, c in enumerate(row.cells)]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"{significance_note(comparison)}; `*` {LEGEND}.", ""]
    return "\n".join(lines)
