"""Charts as inline SVG (matplotlib): the report needs no network to display them."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: charts are rendered to SVG, never to a window
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist

from irtune.reporting.rows import metric_label
from irtune.results.compare import Comparison
from irtune.results.model import TrainingSummary
from irtune.results.schema import ResultsFile

# seaborn's "deep" palette
COLORS = (
    "#4c72b0",
    "#dd8452",
    "#55a868",
    "#c44e52",
    "#8172b3",
    "#937860",
    "#da8bc3",
    "#8c8c8c",
    "#ccb974",
    "#64b5cd",
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def run_colors(labels: Sequence[str]) -> dict[str, str]:
    """One color per run label, in report order: every chart of a report draws a run in the
    same color, so its legend is read once."""
    colors: dict[str, str] = {}
    for label in labels:
        colors.setdefault(label, COLORS[len(colors) % len(COLORS)])
    return colors


def to_svg(fig: plt.Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]  # drop the XML prologue so it can be inlined


def scatter(comparison: Comparison) -> str:
    """Baseline vs candidate for every (dataset, metric), with the y = x diagonal."""
    fig, ax = plt.subplots(figsize=(5.5, 5.0))
    for i, metric in enumerate(comparison.metrics):
        for j, row in enumerate(comparison.datasets):
            m = row.metric(metric)
            ax.scatter(
                m.baseline,
                m.candidate,
                color=COLORS[i % len(COLORS)],
                marker=MARKERS[j % len(MARKERS)],
                s=60,
                edgecolor="black",
                linewidth=0.5,
                label=f"{metric_label(metric)} · {row.dataset}",
            )
    low = min(min(m.baseline, m.candidate) for r in comparison.datasets for m in r.metrics)
    high = max(max(m.baseline, m.candidate) for r in comparison.datasets for m in r.metrics)
    pad = 0.05 * (high - low or 1)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], "--", color="gray", label="no change")
    ax.set(
        xlabel=f"baseline ({comparison.baseline_label})",
        ylabel=f"candidate ({comparison.candidate_label})",
        title="Baseline vs candidate (above the line = better)",
    )
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    ax.grid(alpha=0.3)
    return to_svg(fig)


def radar(comparison: Comparison, dataset: str, colors: Mapping[str, str]) -> str:
    row = next(r for r in comparison.datasets if r.dataset == dataset)
    names = list(comparison.metrics)
    angles = np.linspace(0, 2 * math.pi, len(names), endpoint=False).tolist()
    fig, ax = plt.subplots(figsize=(4.2, 4.2), subplot_kw={"polar": True})
    for values, label, color in (
        (
            [row.metric(n).baseline for n in names],
            comparison.baseline_label,
            colors[comparison.baseline_label],
        ),
        (
            [row.metric(n).candidate for n in names],
            comparison.candidate_label,
            colors[comparison.candidate_label],
        ),
    ):
        ax.plot(angles + angles[:1], values + values[:1], color=color, label=label)
        ax.fill(angles + angles[:1], values + values[:1], color=color, alpha=0.15)
    ax.set_xticks(angles, [metric_label(n) for n in names], fontsize=8)
    values = [v for n in names for v in (row.metric(n).baseline, row.metric(n).candidate)]
    ax.set_ylim(max(0.0, min(values) - 0.15), min(1.0, max(values) + 0.05))  # zoom on the differences
    ax.set_title(dataset, pad=18)
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, -0.28))
    return to_svg(fig)


def metric_bars(comparisons: list[Comparison], colors: Mapping[str, str]) -> str:
    """One panel per metric: baseline and every candidate across datasets."""
    first = comparisons[0]
    datasets = [r.dataset for r in first.datasets]
    metrics = first.metrics
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.4), squeeze=False)
    series = [(first.baseline_label, lambda r, n: r.metric(n).baseline, first)]
    series += [(c.candidate_label, lambda r, n: r.metric(n).candidate, c) for c in comparisons]
    width = 0.8 / len(series)
    for ax, name in zip(axes[0], metrics, strict=True):
        for k, (label, value, comp) in enumerate(series):
            rows = {r.dataset: r for r in comp.datasets}
            heights = [value(rows[d], name) if d in rows else 0 for d in datasets]
            ax.bar(
                np.arange(len(datasets)) + k * width,
                heights,
                width,
                label=label,
                color=colors[label],
            )
        ax.set_xticks(
            np.arange(len(datasets)) + width * (len(series) - 1) / 2, datasets, rotation=20, fontsize=8
        )
        ax.set_title(metric_label(name))
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=len(series), fontsize=8)
    return to_svg(fig)


def delta_histogram(comparison: Comparison, dataset: str, metric: str = "ndcg@10") -> str:
    row = next(r for r in comparison.datasets if r.dataset == dataset)
    deltas = np.array(row.deltas[metric])
    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    ax.hist(deltas, bins=30, color=COLORS[2], edgecolor="white")
    ax.axvline(0, color="black", linewidth=1)
    ax.axvline(deltas.mean(), color=COLORS[3], linestyle="--", label=f"mean {deltas.mean():+.4f}")
    ax.set(
        title=f"{dataset}: per-query Δ {metric_label(metric)}",
        xlabel="candidate − baseline",
        ylabel="queries",
    )
    ax.legend(fontsize=7)
    return to_svg(fig)


def frontier(results: list[ResultsFile], metric: str = "ndcg@10") -> str | None:
    """Quality against bytes per document, one panel per dataset and one line per model: the
    efficiency frontier of runs that search cheaper vectors (fewer dims, int8, binary). None
    unless some model was run at two sizes or more."""
    lines: dict[tuple[str, str], list[tuple[float, float, str]]] = {}
    for result in results:
        size = result.retriever.params.get("bytes_per_document")
        if size is None or result.model is None:
            continue
        setting = str(result.retriever.params.get("compression", "full")).split(" (")[0]
        for entry in result.datasets:
            lines.setdefault((entry.dataset, result.model.name), []).append(
                (float(size), entry.metrics[metric], setting)
            )
    if not any(len({p[0] for p in points}) > 1 for points in lines.values()):
        return None
    datasets = sorted({d for d, _ in lines})
    models = sorted({m for _, m in lines})
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.8 * len(datasets), 3.8), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for k, model in enumerate(models):
            points = sorted(lines.get((dataset, model), []))
            if not points:
                continue
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            ax.plot(xs, ys, marker=MARKERS[k % len(MARKERS)], color=COLORS[k % len(COLORS)], label=model)
            for x, y, setting in points:
                ax.annotate(setting, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log", base=2)
        ax.set(title=dataset, xlabel="bytes per document (log scale)", ylabel=metric_label(metric))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return to_svg(fig)


def _loss_points(training: TrainingSummary) -> tuple[list[int], list[float]]:
    """Loss per optimizer step across epochs (a resumed or per-epoch trainer restarts its
    step count: later epochs are shifted past the earlier ones)."""
    xs: list[int] = []
    ys: list[float] = []
    offset = 0
    last_epoch = None
    for point in training.loss:
        if last_epoch is not None and point.epoch != last_epoch and xs and point.step <= xs[-1] - offset:
            offset = xs[-1]
        last_epoch = point.epoch
        xs.append(offset + point.step)
        ys.append(point.loss)
    return xs, ys


def training_curves(
    results: list[ResultsFile], colors: Mapping[str, str], metric: str = "ndcg@10"
) -> str | None:
    """Two panels per report: training loss per step, and dev `metric` per epoch (0 = the
    base model) and per interpolation weight α, the point dev selection chose marked. None
    when no run records a training curve."""
    runs = [(r.label, t) for r in results if r.model and (t := r.model.training) and (t.loss or t.curve)]
    if not runs:
        return None
    fig, (loss_ax, epoch_ax, alpha_ax) = plt.subplots(1, 3, figsize=(13.5, 3.4))
    for label, training in runs:
        color = colors[label]
        xs, ys = _loss_points(training)
        if xs:
            loss_ax.plot(xs, ys, color=color, label=label, linewidth=1.2)
        selected = training.selected
        base_dev = (selected.base_dev or {}).get(metric)
        epochs = [(p.epoch, p.dev[metric]) for p in training.curve if p.dev]
        if base_dev is not None:
            epochs.insert(0, (0, base_dev))
        if epochs:
            epoch_ax.plot(*zip(*epochs, strict=True), marker="o", color=color, label=label)
            chosen = [(e, v) for e, v in epochs if e == selected.epoch]
            if chosen:
                epoch_ax.plot(*chosen[0], marker="*", markersize=16, color=color, markeredgecolor="black")
        alphas = [(p.alpha, p.dev[metric]) for p in selected.interpolation]
        if alphas:
            alpha_ax.plot(*zip(*alphas, strict=True), marker="o", color=color, label=label)
            shipped = [(a, v) for a, v in alphas if a == selected.alpha]
            if shipped:
                alpha_ax.plot(*shipped[0], marker="*", markersize=16, color=color, markeredgecolor="black")
    loss_ax.set(title="Training loss", xlabel="optimizer step", ylabel="loss")
    epoch_ax.set(
        title=f"Dev {metric_label(metric)} per epoch (★ chosen)",
        xlabel="epoch (0 = base model)",
        ylabel="dev",
    )
    epoch_ax.xaxis.get_major_locator().set_params(integer=True)
    alpha_ax.set(
        title=f"Dev {metric_label(metric)} per interpolation α (★ shipped)",
        xlabel="α (0 = base weights, 1 = fine-tuned)",
        ylabel="dev",
    )
    for ax in (loss_ax, epoch_ax, alpha_ax):
        ax.grid(alpha=0.3)
    loss_ax.legend(fontsize=7)
    fig.tight_layout()
    return to_svg(fig)


def domain_deltas(
    comparisons: list[Comparison], colors: Mapping[str, str], metric: str = "ndcg@10"
) -> str | None:
    """Δ `metric` against the baseline, with 95% CI, for every fine-tuned run on every
    evaluated dataset: solid bars where the run trained on the dataset, hatched where it did
    not (transfer or forgetting). None unless two or more fine-tuned runs were compared."""
    tuned = [c for c in comparisons if c.kind == "vs baseline" and c.credits_training and metric in c.metrics]
    if len(tuned) < 2:
        return None
    datasets = sorted({d.dataset for c in tuned for d in c.datasets})
    fig, ax = plt.subplots(figsize=(max(5.5, 2.6 * len(datasets)), 3.8))
    width = 0.8 / len(tuned)
    for k, c in enumerate(tuned):
        rows = {d.dataset: d for d in c.datasets}
        for i, dataset in enumerate(datasets):
            if (row := rows.get(dataset)) is None:
                continue
            m, own = row.metric(metric), row.trained_on
            x = i + k * width
            ax.bar(
                x,
                m.delta,
                width,
                color=colors[c.candidate_label],
                hatch="" if own else "//",
                edgecolor="black",
                linewidth=0.5,
                label=c.candidate_label,
            )
            ax.errorbar(
                x, m.delta, yerr=[[m.delta - m.ci_low], [m.ci_high - m.delta]], color="black", capsize=3
            )
            if m.significant:
                ax.annotate(
                    "*", (x, max(m.ci_high, 0)), ha="center", xytext=(0, 2), textcoords="offset points"
                )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(datasets)) + width * (len(tuned) - 1) / 2, datasets)
    ax.set(
        ylabel=f"Δ {metric_label(metric)} vs baseline",
        title=f"Δ {metric_label(metric)} vs {tuned[0].baseline_label} (95% CI; hatched = not trained on; "
        "* Holm-significant)",
    )
    ax.title.set_fontsize(9)
    ax.grid(axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    unique: dict[str, Artist] = {}
    for handle, label in zip(handles, labels, strict=True):
        unique.setdefault(label, handle)
    ax.legend(unique.values(), unique.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    return to_svg(fig)
