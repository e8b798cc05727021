"""Model card (README.md) for a fine-tuned model: data, splits, hyperparameters, dev metrics."""

from __future__ import annotations

from typing import Any


def model_card(meta: dict[str, Any]) -> str:
    base = meta["base_model"]
    selected = meta["selected"]
    lines = [
        "---",
        "library_name: sentence-transformers",
        "tags: [sentence-transformers, feature-extraction, irtune]",
        "---",
        f"# Fine-tuned {base['name']} (irtune)",
        "",
    ]
    if selected.get("alpha") == 0:
        lines += [
            "> **Note**: these are the base model's weights, unchanged. Dev selection chose "
            "interpolation alpha 0: no fine-tuned candidate (epoch or interpolation) beat the base "
            "model on the dev queries.",
            "",
        ]
    if meta["contaminated"]:
        lines += [
            "> **⚠ CONTAMINATED**: this model was trained on queries that are also evaluated "
            f"(protocol `{meta['protocol']}`). Its scores on those datasets are not a measure of "
            "generalisation.",
            "",
        ]
    lines += [
        f"- Base model: `{base['name']}` (weights sha256 `{base['weights_sha256'][:16]}…`)",
        f"- Prompts: query `{base['prompts']['query']!r}`, document `{base['prompts']['document']!r}`",
        f"- Max sequence length: {base['max_seq_length']}",
        f"- Protocol: {meta['protocol']}",
        "",
        "## Training data",
        "",
        "| training set | queries | split plan | selected on | evaluated on |",
        "|---|---|---|---|---|",
    ]
    for t in meta["train_sets"]:
        plan = t["plan"]
        lines.append(f"| {t['spec']} | {t['queries']} | {plan['method']} | {plan['dev']} | {plan['eval']} |")
    config = meta["config"]
    lines += [
        "",
        "## Hyperparameters",
        "",
        *[
            f"- {key}: {config[key]}"
            for key in (
                "loss",
                "epochs",
                "batch_size",
                "learning_rate",
                "warmup_steps",
                "max_steps",
                "max_positives_per_query",
                "hard_negatives",
                "num_negatives",
                "relative_margin",
                "seed",
            )
        ],
        "",
        "## Selection (dev queries, never the evaluated ones)",
        "",
        f"- Criterion: {selected['criterion']}",
        *[
            f"- Dev documents ({name}): {docs['kind']}, {docs['documents']:,} documents, "
            f"{docs['queries']} dev queries"
            for name, docs in selected.get("dev_documents", {}).items()
        ],
        f"- Best epoch: {selected['epoch']}, interpolation alpha: {selected['alpha']}",
    ]
    if "interpolation" in selected:
        lines += ["", "| alpha | dev NDCG@10 | dev Recall@100 |", "|---|---|---|"]
        for point in selected["interpolation"]:
            lines.append(
                f"| {point['alpha']:.2f} | {point['dev']['ndcg@10']:.4f} | {point['dev']['recall@100']:.4f} |"
            )
    lines += [
        "",
        f"Training wall time: {meta['wall_time_s']:.0f} s. Full provenance: `irtune_training.json`.",
        "",
    ]
    return "\n".join(lines)
