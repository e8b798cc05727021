"""A fine-tuned model's training record as rows a person reads: data, loss, negatives,
selection and what shipped (the raw record stays in irtune_training.json)."""

from __future__ import annotations

from irtune.results.model import Selection, TrainingSettings, TrainingSummary


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def training_rows(training: TrainingSummary) -> list[tuple[str, str]]:
    config = training.config
    rows = [
        (
            "trained on",
            "; ".join(f"{t.spec}: {t.queries:,} queries ({t.plan.method})" for t in training.train_sets),
        ),
        ("protocol", training.protocol + (" — ⚠ CONTAMINATED" if training.contaminated else "")),
        (
            "loss and schedule",
            f"{config.loss}, {_plural(config.epochs, 'epoch')}, batch {config.batch_size}, "
            f"learning rate {config.learning_rate}, warmup {config.warmup_steps} steps"
            + (f", at most {config.max_steps} steps" if config.max_steps else ""),
        ),
        ("hard negatives", _negatives(config)),
    ]
    caps = [
        f"{value} {what}"
        for value, what in (
            (config.max_positives_per_query, "positives per query"),
            (config.max_pairs_per_dataset, "pairs per dataset"),
        )
        if value
    ]
    if caps:
        rows.append(("per-epoch caps", ", ".join(caps)))
    rows += _selection_rows(training.selected)
    if training.wall_time_s is not None:
        rows.append(("training wall time", f"{training.wall_time_s:.0f} s"))
    return rows


def _negatives(config: TrainingSettings) -> str:
    if not config.hard_negatives:
        return "none (in-batch negatives only)"
    return (
        f"{config.num_negatives} per row, mined from the base model's ranks "
        f"{config.negatives_range_min}–{config.negatives_range_max}, relative margin {config.relative_margin}"
    )


def _selection_rows(selected: Selection) -> list[tuple[str, str]]:
    documents = "; ".join(
        f"{name}: {d.queries} dev queries over {d.kind} ({d.documents:,} documents)"
        for name, d in selected.dev_documents.items()
    )
    base = (selected.base_dev or {}).get("ndcg@10")
    chosen = (selected.dev or {}).get("ndcg@10")
    scores = (
        f"; dev NDCG@10 {base:.4f} (base) → {chosen:.4f}" if base is not None and chosen is not None else ""
    )
    return [
        ("selection", f"{selected.criterion}; {documents}"),
        ("shipped", f"epoch {selected.epoch}, interpolation α {selected.alpha} ({selected.shipped}){scores}"),
    ]
