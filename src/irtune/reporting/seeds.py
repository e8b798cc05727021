"""The gain over training seeds, per recipe: each seed's test gain, their mean and range, and
the two-level bootstrap CI (seeds and queries resampled), for the report, its Markdown twin
and the terminal."""

from __future__ import annotations

import html

from rich.markup import escape
from rich.table import Table

from irtune.reporting.rows import CONTAMINATED, metric_label
from irtune.results.compare import Comparison, SeedRuns

FAMILY_NOTE = (
    "Seeds are not tests: each recipe enters the Holm family once, through one run (the best on "
    "dev among the seeds given); the other seeds are measured, not tested. The recipe CIs resample seeds and "
    "queries (one query draw shared by the drawn seeds, paired with the baseline) and are a "
    "family of their own, corrected together."
)


def recipes(comparisons: list[Comparison]) -> list[tuple[Comparison, SeedRuns]]:
    return [(c, c.seeds) for c in comparisons if c.seeds is not None]


def headers(runs: SeedRuns) -> list[str]:
    return ["dataset", "metric", *(f"seed {s}" for s in runs.seeds), "mean Δ", "range", runs.describe_level()]


def rows(runs: SeedRuns) -> list[list[str]]:
    """One row per dataset and metric; the tested seed's gain is starred, a contaminated
    dataset marked."""
    table = []
    for d in runs.datasets:
        for m in d.metrics:
            gains = [
                f"{g:+.4f}" + ("*" if s == runs.shipped else "")
                for s, g in zip(runs.seeds, m.gains, strict=True)
            ]
            table.append(
                [
                    f"{d.dataset}:{d.split} ({d.queries} q)" + (f" {CONTAMINATED}" if d.contaminated else ""),
                    metric_label(m.metric),
                    *gains,
                    f"{m.mean:+.4f}",
                    f"{min(m.gains):+.4f} … {max(m.gains):+.4f}",
                    f"[{m.ci_low:+.4f}, {m.ci_high:+.4f}]",
                ]
            )
    return table


def heading(c: Comparison, runs: SeedRuns) -> str:
    return f"Recipe of {c.candidate_label} over {len(runs.seeds)} seeds (vs {c.baseline_label})"


def shipped_note(runs: SeedRuns) -> str:
    return f"* the run tested: {runs.reason}"


def seeds_html(comparisons: list[Comparison]) -> str:
    """The report's section on gains over seeds ('' without a recipe trained over seeds)."""
    found = recipes(comparisons)
    if not found:
        return ""
    parts = ['<section id="seeds"><h2>Gains over training seeds</h2>', f"<p>{html.escape(FAMILY_NOTE)}</p>"]
    for c, runs in found:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers(runs))
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows(runs)
        )
        parts.append(
            f"<h3>{html.escape(heading(c, runs))}</h3>"
            f'<table class="seeds"><caption>{html.escape(shipped_note(runs))}</caption>'
            f"<tr>{head}</tr>{body}</table>"
        )
    return "".join(parts) + "</section>"


def seeds_markdown(comparisons: list[Comparison]) -> list[str]:
    found = recipes(comparisons)
    if not found:
        return []
    lines = ["## Gains over training seeds", "", FAMILY_NOTE, ""]
    for c, runs in found:
        cells = headers(runs)
        lines += [f"### {heading(c, runs)}", "", "| " + " | ".join(cells) + " |", "|" + "---|" * len(cells)]
        lines += ["| " + " | ".join(row) + " |" for row in rows(runs)]
        lines += ["", shipped_note(runs), ""]
    return lines


def seeds_table(c: Comparison, runs: SeedRuns) -> Table:
    caption = escape(f"{shipped_note(runs)}. {FAMILY_NOTE}")
    table = Table(*map(escape, headers(runs)), title=escape(heading(c, runs)), caption=caption)
    for row in rows(runs):
        table.add_row(*map(escape, row))
    return table
