"""Formatted comparison rows shared by the terminal, HTML and Markdown views."""

from __future__ import annotations

from dataclasses import dataclass

from irtune.results.compare import Comparison, MetricComparison, RunSetup
from irtune.results.significance import N_RESAMPLES

HEADERS = ("dataset", "metric", "baseline", "candidate", "Δ", "Δ %", "95% CI of Δ", "p (Holm)", "W/T/L")
CONTAMINATED = "⚠ contaminated"
LEGEND = "significant at 0.05 after that correction; W/T/L = per-query wins/ties/losses"  # after "*"


@dataclass(frozen=True)
class Row:
    cells: tuple[str, ...]
    regression: bool
    significant: bool
    contaminated: bool


def metric_label(name: str) -> str:
    """ndcg@10 -> NDCG@10, recall@100 -> Recall@100, p@5 -> P@5, mrr@10 -> MRR@10."""
    family, _, k = name.partition("@")
    return {"recall": "Recall"}.get(family, family.upper()) + "@" + k


def _metric_cells(dataset: str, m: MetricComparison) -> tuple[str, ...]:
    return (
        dataset,
        metric_label(m.metric),
        f"{m.baseline:.4f}",
        f"{m.candidate:.4f}",
        f"{m.delta:+.4f}",
        f"{100 * m.relative:+.1f}%",
        f"[{m.ci_low:+.4f}, {m.ci_high:+.4f}]",
        f"{m.p_holm:.4f}" + (" *" if m.significant else ""),
        f"{m.wins}/{m.ties}/{m.losses}",
    )


def comparison_rows(comparison: Comparison) -> list[Row]:
    rows = []
    for d in comparison.datasets:
        name = d.dataset + (f" {CONTAMINATED}" if d.contaminated else "")
        for m in d.metrics:
            rows.append(Row(_metric_cells(name, m), m.delta < 0, m.significant, d.contaminated))
    summary = comparison.summary()
    for metric, s in summary.items():
        rows.append(
            Row(
                (
                    "average",
                    metric_label(metric),
                    f"{s['baseline']:.4f}",
                    f"{s['candidate']:.4f}",
                    f"{s['delta']:+.4f}",
                    f"{100 * s['relative']:+.1f}%",
                    "",
                    f"{s['significant_wins']} sig. wins / {s['significant_losses']} sig. losses",
                    f"{s['improved_datasets']}/{len(comparison.datasets)} improved",
                ),
                s["delta"] < 0,
                False,
                comparison.contaminated,
            )
        )
    return rows


def title(comparison: Comparison) -> str:
    mark = f" {CONTAMINATED}" if comparison.contaminated else ""
    return f"{comparison.candidate_label} vs {comparison.baseline_label}{mark}"


def setup_label(setup: RunSetup) -> str:
    """'dense · fp32 · exact search · max length 256 · top 1000': the settings that decide
    what a run's numbers mean, shown next to them rather than only in the provenance."""
    return setup.label + ("" if setup.top_k is None else f" · top {setup.top_k}")


def setup_lines(comparison: Comparison) -> list[str]:
    """One line per run: 'baseline (<label>): <setup>', then the candidate's."""
    runs = (
        ("baseline", comparison.baseline_label, comparison.baseline_setup),
        ("candidate", comparison.candidate_label, comparison.candidate_setup),
    )
    return [f"{role} ({label}): {setup_label(setup)}" for role, label, setup in runs if setup is not None]


def significance_note(comparison: Comparison) -> str:
    """'p: paired randomization test (10,000 permutations), Holm-corrected over all 8 tests
    (2 datasets × 4 metrics)': which family was corrected decides what p means."""
    corrected = comparison.correction.describe() if comparison.correction else "not corrected"
    return f"p: paired randomization test ({N_RESAMPLES:,} permutations), {corrected}"
