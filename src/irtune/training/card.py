"""The model card (README.md) of a fine-tuned model: sentence-transformers' generated card,
kept, with irtune's facts added where the Hugging Face Hub reads them (YAML metadata:
`base_model`, `datasets`, `license`, tags, and a `model-index` of held-out test metrics)
and in words (training data, splits, hyperparameters, dev selection).

The model-index only ever holds test-split numbers of this exact model (weights hash
checked), never the dev numbers selection used; a contaminated number carries the mark in
its name. huggingface_hub's ModelCard does the YAML, so the card parses as the Hub parses it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from irtune.core.files import write_text_atomic
from irtune.errors import IrtuneError
from irtune.models.lineage import TRAINING_METADATA, TrainingRecord
from irtune.results.metrics import HEADLINE_METRICS
from irtune.results.model import Selection
from irtune.results.schema import ResultsFile

# irtune's aliases and the hub models they are; their licenses, from the hub cards
HUB_IDS = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "mpnet": "sentence-transformers/all-mpnet-base-v2",
}
LICENSES = {
    "sentence-transformers/all-MiniLM-L6-v2": "apache-2.0",
    "sentence-transformers/all-mpnet-base-v2": "apache-2.0",
}
IRTUNE_HEADING = "## Fine-tuned with irtune"
TEST_HEADING = "## Held-out test results (irtune)"
METRIC_TYPES = {
    "ndcg@10": "ndcg_at_10",
    "ndcg@100": "ndcg_at_100",
    "map@100": "map_at_100",
    "recall@100": "recall_at_100",
}


def _data(card: ModelCard) -> ModelCardData:
    return cast(ModelCardData, card.data)  # a ModelCard's data is ModelCardData; typed as its base


def base_model_id(name: str, location: str | None = None) -> str | None:
    """The hub id of the base model: an alias's model, or a model that was loaded from the hub
    by its id (its recorded location is the id itself); None for a local folder."""
    if name.lower() in HUB_IDS:
        return HUB_IDS[name.lower()]
    loaded_from_hub = location is None or location == name
    if loaded_from_hub and re.fullmatch(r"[\w.-]+/[\w.-]+", name) and not Path(name).expanduser().exists():
        return name
    return None


def dataset_id(name: str, public_dataset: str | None) -> str:
    """A BEIR dataset's official files by its hub id (BeIR/<name>), whatever the folder is called;
    any other files (a slice, an edited copy, a user's own data) by the folder's name."""
    return f"BeIR/{public_dataset}" if public_dataset else name


def lineage_line(record: TrainingRecord) -> str:
    """`base` → `m1` (trained on a:train) → this model (trained on b:train): the models this one
    was fine-tuned through, oldest first, each with what it trained on."""
    chain = record.lineage()[::-1]
    made = [f"`{r.base_model.name}`" for r in chain[1:]] + ["this model"]
    steps = [f"`{chain[0].base_model.name}`"] + [
        f"{name} (trained on {', '.join(t.spec for t in r.train_sets)}"
        f"{', contaminated' if r.contaminated else ''})"
        for r, name in zip(chain, made, strict=True)
    ]
    return " → ".join(steps)


HYPERPARAMETERS = (
    "loss",
    "epochs",
    "batch_size",
    "learning_rate",
    "warmup_steps",
    "max_steps",
    "max_positives_per_query",
    "max_pairs_per_dataset",
    "hard_negatives",
    "num_negatives",
    "relative_margin",
    "seed",
)


def _irtune_section(record: TrainingRecord) -> list[str]:
    base, selected = record.base_model, record.selected
    lines = [IRTUNE_HEADING, ""]
    if selected.alpha == 0:
        lines += [
            "> **Note**: these are the base model's weights, unchanged. Dev selection chose "
            "interpolation alpha 0: no fine-tuned candidate (epoch or interpolation) beat the base "
            "model on the dev queries.",
            "",
        ]
    if record.lineage_contaminated:
        lines += [
            "> **⚠ CONTAMINATED**: this model, or a model it was fine-tuned from, was trained on "
            f"queries that are also evaluated (protocol `{record.protocol}`). Its scores on those "
            "datasets are not a measure of generalisation.",
            "",
        ]
    lines += [
        f"- Base model: `{base.name}` (weights sha256 `{base.weights_sha256[:16]}…`)",
        f"- Lineage: {lineage_line(record)}",
        f"- Prompts: query `{base.prompts.get('query', '')!r}`, "
        f"document `{base.prompts.get('document', '')!r}`",
        f"- Max sequence length: {base.max_seq_length}",
        f"- Protocol: {record.protocol}",
        "",
        "### Training data",
        "",
        "| training set | queries | split plan | selected on | evaluated on |",
        "|---|---|---|---|---|",
        *[
            f"| {t.spec} | {t.queries} | {t.plan.method} | {t.plan.dev} | {t.plan.eval} |"
            for t in record.train_sets
        ],
    ]
    config = record.config.model_dump()
    lines += ["", "### Hyperparameters", "", *[f"- {key}: {config[key]}" for key in HYPERPARAMETERS]]
    return (
        lines
        + _selection_section(selected)
        + [
            "",
            f"Training wall time: {record.wall_time_s:.0f} s. Full provenance: `{TRAINING_METADATA}`.",
            "",
        ]
    )


def _selection_section(selected: Selection) -> list[str]:
    lines = [
        "",
        "### Selection (dev queries, never the evaluated ones)",
        "",
        f"- Criterion: {selected.criterion}",
        *[
            f"- Dev documents ({name}): {docs.kind}, {docs.documents:,} documents, {docs.queries} dev queries"
            for name, docs in selected.dev_documents.items()
        ],
        f"- Best epoch: {selected.epoch}, interpolation alpha: {selected.alpha}",
    ]
    if selected.interpolation:
        lines += ["", "| alpha | dev NDCG@10 | dev Recall@100 |", "|---|---|---|"]
        for point in selected.interpolation:
            lines.append(
                f"| {point.alpha:.2f} | {point.dev['ndcg@10']:.4f} | {point.dev['recall@100']:.4f} |"
            )
    return lines


def _without_section(text: str, heading: str) -> str:
    """The card without an earlier `heading` section (up to the next `## ` heading)."""
    if heading not in text:
        return text
    head, _, tail = text.partition(heading)
    rest = tail.split("\n## ", 1)
    return head.rstrip() + ("\n\n## " + rest[1] if len(rest) > 1 else "\n")


def _insert_after_title(text: str, section: str) -> str:
    """irtune's section right after the card's first H1 (sentence-transformers' title), so the
    generated card reads on unchanged below it."""
    lines = text.splitlines()
    at = next((i + 1 for i, line in enumerate(lines) if line.startswith("# ")), 0)
    return "\n".join([*lines[:at], "", section.rstrip(), "", *lines[at:]]) + "\n"


def model_card(record: TrainingRecord, generated: str | None = None) -> str:
    """`generated`: the README.md sentence-transformers wrote when saving the model (None: a
    card with irtune's section alone)."""
    base_name = record.base_model.name
    card = ModelCard(
        generated if generated and generated.startswith("---") else "---\n---\n" + (generated or "")
    )
    data = _data(card)
    data.library_name = "sentence-transformers"
    tags = list(data.tags or [])
    data.tags = tags + [t for t in ("sentence-transformers", "feature-extraction", "irtune") if t not in tags]
    hub_id = base_model_id(base_name, record.base_model.location)
    data.base_model = hub_id  # None (a local folder) drops a path sentence-transformers may have put there
    data.datasets = sorted(
        {
            dataset_id(t.dataset, t.public_dataset)
            for r in record.lineage()  # every ancestor's training data
            for t in r.train_sets
        }
    )
    if hub_id in LICENSES:
        data.license = LICENSES[hub_id]
    text = _without_section(card.text, IRTUNE_HEADING) if card.text.strip() else ""
    text = text if text.strip() else f"# Fine-tuned {base_name} (irtune)\n"
    card.text = _insert_after_title(text, "\n".join(_irtune_section(record)))
    return str(card)


def _checked(model_dir: Path, record: TrainingRecord, result: ResultsFile) -> None:
    where = f"{result.path or result.label}"
    if result.model is None or result.model.weights_sha256 != record.weights_sha256:
        raise IrtuneError(
            f"{where}: these results are of another model than {model_dir} (weights sha256 differ); "
            "the card only takes this model's own test results"
        )
    if result.retriever.name != "dense":
        raise IrtuneError(
            f"{where}: a {result.retriever.name} run is not the model's own score; give a dense run"
        )
    dense = result.retriever.dense_parts()
    part = dense[0] if dense else None
    if result.retriever.approximate or (part is not None and "compression" in part.params):
        raise IrtuneError(
            f"{where}: an approximate index or compressed vectors is not the model's own score; "
            "give an exact, full-vector run"
        )
    if len({e.dataset for e in result.datasets}) != len(result.datasets):
        raise IrtuneError(f"{where}: a dataset appears twice; give one test result per dataset")
    if dev := [e.dataset for e in result.datasets if e.split != "test"]:
        raise IrtuneError(
            f"{where}: {dev[0]} was evaluated on another split than test; the card reports held-out test "
            "results only (never the dev queries selection used)"
        )


def _eval_result(result: ResultsFile, entry: Any, metric: str, contaminated: bool) -> EvalResult:
    name = f"{metric.upper().replace('RECALL', 'Recall')}"
    if entry.queries.selection != "all":
        name += f" ({entry.queries.count} held-out queries: {entry.queries.selection})"
    if contaminated:
        name += " ⚠ CONTAMINATED: trained on evaluated queries"
    dense = result.retriever.dense_parts()
    return EvalResult(
        metric_args={  # how the number was measured, machine-readable beside the name
            "queries": entry.queries.count,
            "query_selection": entry.queries.selection,
            "precision": dense[0].precision if dense else None,
            "contaminated": contaminated,
            "measured_by": "irtune",
        },
        task_type="retrieval",
        dataset_type=dataset_id(entry.dataset, entry.public_dataset),
        dataset_name=entry.dataset,
        dataset_split=entry.split,
        metric_type=METRIC_TYPES[metric],
        metric_value=round(float(entry.metrics[metric]), 5),
        metric_name=name,
    )


def add_test_results(model_dir: Path, results: Sequence[ResultsFile]) -> int:
    """Write the model's held-out test metrics into its card's model-index (and a table in
    words), replacing earlier ones of the same datasets; returns how many datasets it holds."""
    record = TrainingRecord.read(model_dir / TRAINING_METADATA)
    for result in results:
        _checked(model_dir, record, result)
    readme = model_dir / "README.md"
    card = ModelCard(readme.read_text(encoding="utf-8")) if readme.is_file() else ModelCard("---\n---\n")
    data = _data(card)
    entries = {e.dataset: (result, e) for result in results for e in result.datasets}
    if len(entries) != sum(len(r.datasets) for r in results):
        raise IrtuneError(
            f"{model_dir}: the results give one dataset twice; give one test result per dataset"
        )
    kept = [r for r in data.eval_results or [] if r.dataset_name not in entries]
    data.eval_results = kept + [
        _eval_result(r, e, m, e.contaminated)  # a contaminated ancestor marks it on read
        for r, e in entries.values()
        for m in HEADLINE_METRICS
    ]
    data.model_name = data.model_name or model_dir.name
    by_dataset: dict[tuple[str, str], dict[str, EvalResult]] = {}
    for r in data.eval_results:
        by_dataset.setdefault((r.dataset_name, r.dataset_split or ""), {})[r.metric_type] = r
    rows = []
    for (dataset, split), metrics in by_dataset.items():
        values = [metrics.get(METRIC_TYPES[m]) for m in HEADLINE_METRICS]
        marked = any("CONTAMINATED" in (v.metric_name or "") for v in values if v)
        first = next((v for v in values if v), None)
        args = (first.metric_args or {}) if first else {}
        queries = f"{args.get('queries', '')} ({args.get('query_selection', '')})" if args else ""
        rows.append(
            f"| {dataset} | {split} | {queries} | {args.get('precision') or ''} | "
            + " | ".join("" if v is None else f"{v.metric_value:.4f}" for v in values)
            + (" | ⚠ contaminated |" if marked else " | |")
        )
    table = [
        TEST_HEADING,
        "",
        "| dataset | split | queries | precision | NDCG@10 | NDCG@100 | MAP@100 | Recall@100 | |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Measured by irtune (trec_eval semantics) on queries the model never trained or was selected on.",
    ]
    text = card.text
    if TEST_HEADING in text:  # replace the table written before
        head, _, tail = text.partition(TEST_HEADING)
        rest = tail.split("\n## ", 1)
        text = head + "\n".join(table) + ("\n\n## " + rest[1] if len(rest) > 1 else "\n")
    elif IRTUNE_HEADING in text:
        text = text.replace(IRTUNE_HEADING, "\n".join(table) + "\n\n" + IRTUNE_HEADING, 1)
    else:
        text = text.rstrip() + "\n\n" + "\n".join(table) + "\n"
    card.text = text
    write_text_atomic(readme, str(card))
    return len({r.dataset_name for r in data.eval_results})
