"""High-level operations shared by the CLI and the pipeline."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from irtune.compare import Comparison, compare, load_results
from irtune.data.registry import resolve_dataset
from irtune.data.splits import load_plan
from irtune.errors import IrtuneError
from irtune.evaluate import (
    EvalSettings,
    QuerySelection,
    evaluate_dataset,
    results_document,
    write_results,
)
from irtune.fileio import sha256_file, write_text_atomic
from irtune.models import SPLITS_DIR, LoadedModel, ModelOptions
from irtune.report.html import html_report
from irtune.report.markdown import markdown_report

log = logging.getLogger(__name__)


def selections_from_files(split_files: Sequence[Path]) -> dict[str, tuple[str, QuerySelection]]:
    """dataset name -> (split, selection of its `eval` queries) from irtune split files."""
    selections: dict[str, tuple[str, QuerySelection]] = {}
    for path in split_files:
        plan = load_plan(path)
        part = plan.eval
        selections[plan.dataset] = (
            part.split,
            QuerySelection(f"eval part of {path.name}", part.query_ids, sha256_file(path)),
        )
    return selections


def _model_split_files(model: LoadedModel | None, explicit: Sequence[Path]) -> list[Path]:
    """Split plans saved with a fine-tuned model, so that by default it is evaluated on the
    queries it did not train on (explicit --split-file entries take precedence)."""
    if model is None or model.training is None or model.folder is None:
        return []
    folder = model.folder / SPLITS_DIR  # for a hub id, its cache snapshot (not the id as a path)
    found = sorted(folder.glob("*.split.json")) if folder.is_dir() else []
    if found:
        log.warning(
            "%s: evaluating on the held-out queries of its split plans in %s "
            "(evaluate the baseline with the same --split-file)",
            model.name,
            folder,
        )
    return found


def run_evaluation(
    model_spec: str | None,
    datasets: Sequence[str],
    settings: EvalSettings,
    model_options: ModelOptions | None = None,
    out_dir: Path | None = None,
    split_files: Sequence[Path] = (),
    data_dir: Path | None = None,
    strict: bool = False,
    label: str | None = None,
) -> dict[str, Any]:
    """Evaluate on each dataset (its `eval` queries where a split file names them)."""
    model = None
    if settings.retriever == "dense":
        if model_spec is None:
            raise IrtuneError("dense retrieval needs a model: -m minilm, a hub id or a folder")
        model = (model_options or ModelOptions()).load(model_spec)
    selections = selections_from_files([*_model_split_files(model, split_files), *split_files])
    evaluations = []
    for name in datasets:
        dataset = resolve_dataset(name, data_dir, strict)
        split, selection = selections.get(dataset.name, (settings.split, QuerySelection()))
        evaluations.append(evaluate_dataset(dataset, replace(settings, split=split), model, selection))
    label = label or (model_spec if settings.retriever == "dense" else "bm25") or "run"
    if out_dir is not None:
        write_results(out_dir, evaluations, settings, model, label)
    return results_document(evaluations, settings, model, label)


def load_comparisons(
    results: Sequence[Path], baseline: Path | None = None
) -> tuple[list[Comparison], list[dict[str, Any]]]:
    """Compare every result with the baseline (default: the first result given)."""
    loaded = [load_results(p) for p in results]
    if baseline is not None:
        base = load_results(baseline)
        candidates = loaded
    else:
        if len(loaded) < 2:
            raise IrtuneError("give at least two results, or --baseline and one result")
        base, candidates = loaded[0], loaded[1:]
    return [compare(base, c) for c in candidates], [base, *candidates]


def write_report(
    results: Sequence[Path], out: Path, baseline: Path | None = None
) -> tuple[Path, Path, list[Comparison]]:
    """report.html (self-contained) and report.md next to it."""
    comparisons, loaded = load_comparisons(results, baseline)
    write_text_atomic(out, html_report(comparisons, loaded))
    markdown = out.with_suffix(".md")
    write_text_atomic(markdown, markdown_report(comparisons))
    return out, markdown, comparisons
