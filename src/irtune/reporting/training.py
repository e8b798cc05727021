"""A fine-tuned model's training record as rows a person reads: data, loss, negatives,
selection and what shipped (the raw record stays in irtune_training.json)."""

from __future__ import annotations

from typing import Any


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def training_rows(training: dict[str, Any]) -> list[tuple[str, str]]:
    config: dict[str, Any] = training.get("config", {})
    selected: dict[str, Any] = training.get("selected", {})
    rows = [
        (
            "trained on",
            "; ".join(
                f"{t['spec']}: {t['queries']:,} queries ({t['plan'].get('method', '')})"
                for t in training.get("train_sets", [])
            ),
        ),
        (
            "protocol",
            str(training.get("protocol")) + (" — ⚠ CONTAMINATED" if training.get("contaminated") else ""),
        ),
        (
            "loss and schedule",
            f"{config.get('loss')}, {_plural(config.get('epochs', 0), 'epoch')}, "
            f"batch {config.get('batch_size')}, "
            f"learning rate {config.get('learning_rate')}, warmup {config.get('warmup_steps')} steps"
            + (f", at most {config['max_steps']} steps" if config.get("max_steps") else ""),
        ),
        (
            "hard negatives",
            f"{config.get('num_negatives')} per row, mined from the base model's ranks "
            f"{config.get('negatives_range_min')}–{config.get('negatives_range_max')}, relative margin "
            f"{config.get('relative_margin')}"
            if config.get("hard_negatives")
            else "none (in-batch negatives only)",
        ),
    ]
    caps = [
        f"{config[key]} {what}"
        for key, what in (
            ("max_positives_per_query", "positives per query"),
            ("max_pairs_per_dataset", "pairs per dataset"),
        )
        if config.get(key)
    ]
    if caps:
        rows.append(("per-epoch caps", ", ".join(caps)))
    if selected:
        docs = selected.get("dev_documents", {})
        rows.append(
            (
                "selection",
                f"{selected.get('criterion')}; "
                + "; ".join(
                    f"{name}: {d['queries']} dev queries over {d['kind']} ({d['documents']:,} documents)"
                    for name, d in docs.items()
                ),
            )
        )
        base = (selected.get("base_dev") or {}).get("ndcg@10")
        chosen = (selected.get("dev") or {}).get("ndcg@10")
        scores = (
            f"; dev NDCG@10 {base:.4f} (base) → {chosen:.4f}"
            if base is not None and chosen is not None
            else ""
        )
        rows.append(
            (
                "shipped",
                f"epoch {selected.get('epoch')}, interpolation α {selected.get('alpha')} "
                f"({selected.get('shipped', 'fine-tuned')}){scores}",
            )
        )
    if training.get("wall_time_s") is not None:
        rows.append(("training wall time", f"{training['wall_time_s']:.0f} s"))
    return rows
