"""High-level operations shared by the CLI and the pipeline."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast

from irtune.compare import Comparison, compare, load_results
from irtune.data.registry import resolve_dataset
from irtune.data.splits import load_plan, plan_sha256
from irtune.errors import IrtuneError
from irtune.evaluate import (
    EvalSettings,
    QuerySelection,
    evaluate_dataset,
    results_document,
    write_results,
)
from irtune.fileio import write_text_atomic
from irtune.models import SPLITS_DIR, LoadedModel, load_model
from irtune.report.html import html_report
from irtune.report.markdown import markdown_report
from irtune.retrieval.ann import INDEX_TYPES
from irtune.retrieval.encode import PRECISIONS

log = logging.getLogger(__name__)


def selections_from_files(split_files: Sequence[Path]) -> dict[str, tuple[str, QuerySelection]]:
    """dataset name -> (split, selection of its `eval` queries) from irtune split files."""
    selections: dict[str, tuple[str, QuerySelection]] = {}
    for path in split_files:
        plan = load_plan(path)
        part = plan.eval
        selections[plan.dataset] = (
            part.split,
            QuerySelection(f"eval part of {path.name}", part.query_ids, plan_sha256(path)),
        )
    return selections


def _model_split_files(model: LoadedModel | None, explicit: Sequence[Path]) -> list[Path]:
    """Split plans saved with a fine-tuned model, so that by default it is evaluated on the
    queries it did not train on (explicit --split-file entries take precedence)."""
    if model is None or model.training is None:
        return []
    folder = Path(model.location) / SPLITS_DIR
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
    split: str = "test",
    retriever: str = "dense",
    out_dir: Path | None = None,
    split_files: Sequence[Path] = (),
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    query_prompt: str | None = None,
    doc_prompt: str | None = None,
    max_seq_length: int | None = None,
    batch_size: int = 32,
    precision: str = "fp32",
    device: str | None = None,
    top_k: int = 1000,
    ignore_identical_ids: bool = True,
    strict: bool = False,
    label: str | None = None,
    index: str = "exact",
    index_params: dict[str, Any] | None = None,
    store_dtype: str = "float32",
    devices: Sequence[str] = (),
) -> dict[str, Any]:
    if index not in INDEX_TYPES:
        raise IrtuneError(f"--index must be one of {', '.join(INDEX_TYPES)}, not {index!r}")
    if store_dtype not in ("float32", "float16"):
        raise IrtuneError(f"--store-dtype must be float32 or float16, not {store_dtype!r}")
    if retriever not in ("dense", "bm25"):
        raise IrtuneError(f"--retriever must be dense or bm25, not {retriever!r}")
    if precision not in PRECISIONS:
        raise IrtuneError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if retriever == "dense" and model_spec is None:
        raise IrtuneError("dense retrieval needs a model: -m minilm, a hub id or a folder")
    model = None
    if retriever == "dense":
        model = load_model(model_spec, device, max_seq_length, query_prompt, doc_prompt)  # type: ignore[arg-type]
    selections = selections_from_files([*_model_split_files(model, split_files), *split_files])
    evaluations = []
    for name in datasets:
        dataset = resolve_dataset(name, data_dir, strict)
        eval_split, selection = selections.get(dataset.name, (split, QuerySelection()))
        settings = EvalSettings(
            split=eval_split,
            retriever=cast(Literal["dense", "bm25"], retriever),
            batch_size=batch_size,
            precision=precision,
            top_k=top_k,
            ignore_identical_ids=ignore_identical_ids,
            cache_dir=cache_dir,
            index=index,
            index_params=index_params or {},
            store_dtype=store_dtype,
            devices=tuple(devices),
        )
        evaluations.append(evaluate_dataset(dataset, settings, model, selection))
    label = label or (model_spec if retriever == "dense" else "bm25") or "run"
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
