"""Evaluate a model (dense) or BM25 on BEIR datasets; write results.json and TREC run files."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from irtune.data.beir import BeirDataset
from irtune.errors import IrtuneError
from irtune.fileio import atomic_path, sha256_text, write_json_atomic
from irtune.leakage import TrainingQueries, find_overlap
from irtune.metrics import DEFAULT_METRICS, evaluate_run, mean_metrics, parse_metric, rank_documents
from irtune.models import LoadedModel
from irtune.progress import progress_bar
from irtune.provenance import environment
from irtune.retrieval import ann, bm25
from irtune.retrieval.dense import exact_search
from irtune.retrieval.encode import PRECISIONS, EmbeddingShards, encode_corpus_cached, encode_texts

DOC_TEXT_RECIPE = "title+' '+text, stripped"
RESULTS_FORMAT = "irtune-results-v1"


@dataclass
class EvalSettings:
    split: str = "test"
    retriever: str = "dense"  # "dense" or "bm25"
    batch_size: int = 32
    precision: str = "fp32"
    top_k: int = 1000
    metrics: tuple[str, ...] = DEFAULT_METRICS
    ignore_identical_ids: bool = True
    cache_dir: Path | None = None
    index: str = "exact"
    index_params: dict[str, Any] = field(default_factory=dict)
    store_dtype: str = "float32"
    devices: tuple[str, ...] = ()  # several: a multi-process encoding pool (GPUs or CPU workers)

    def __post_init__(self) -> None:
        checks = {
            "retriever": (self.retriever, ("dense", "bm25")),
            "precision": (self.precision, PRECISIONS),
            "index": (self.index, ann.INDEX_TYPES),
            "store-dtype": (self.store_dtype, ("float32", "float16")),
        }
        for option, (value, allowed) in checks.items():
            if value not in allowed:
                raise IrtuneError(f"--{option} must be one of {', '.join(allowed)}, not {value!r}")
        _check_top_k(self.top_k, self.metrics)

    def describe(self) -> dict[str, Any]:
        out = asdict(self)
        out["metrics"] = list(self.metrics)
        out["cache_dir"] = str(self.cache_dir) if self.cache_dir else None
        out["approximate"] = self.index not in ("exact", "flat")
        return out


def _check_top_k(top_k: int, metrics: Sequence[str]) -> None:
    """A metric cut deeper than the kept ranking would be computed on a truncated list
    (Recall@1000 of a top-100 run is Recall@100 under another name), so refuse it."""
    try:
        deepest = max((parse_metric(m) for m in metrics), key=lambda spec: spec.k, default=None)
    except ValueError as exc:
        raise IrtuneError(str(exc)) from None
    if deepest is not None and top_k < deepest.k:
        raise IrtuneError(
            f"--top-k {top_k} is below the deepest metric cutoff: {deepest.name} would be "
            f"computed on a truncated ranking; use --top-k {deepest.k} or more"
        )


@dataclass
class QuerySelection:
    """Which of a split's queries are evaluated (all, or a held-out part from a split file)."""

    name: str = "all"
    query_ids: frozenset[str] | None = None
    source_sha256: str | None = None


@dataclass
class DatasetEvaluation:
    entry: dict[str, Any]
    run: dict[str, dict[str, float]] = field(repr=False)


def corpus_content_key(dataset: BeirDataset) -> str:
    return sha256_text(dataset.corpus_hash(), DOC_TEXT_RECIPE)


def selected_queries(dataset: BeirDataset, split: str, selection: QuerySelection) -> list[str]:
    qids = dataset.relevant_queries(split)
    if selection.query_ids is not None:
        unknown = selection.query_ids - set(dataset.qrels(split))
        if unknown:
            raise IrtuneError(
                f'{dataset.name}: {len(unknown)} selected query ids are not in split "{split}" '
                f"(e.g. {sorted(unknown)[:3]})"
            )
        qids = [q for q in qids if q in selection.query_ids]
    if not qids:
        raise IrtuneError(f'{dataset.name}: no query with a relevant document in split "{split}"')
    return qids


def dense_corpus(
    model: LoadedModel, dataset: BeirDataset, settings: EvalSettings
) -> tuple[list[str], EmbeddingShards]:
    doc_ids = dataset.doc_ids
    with progress_bar(f"encode {dataset.name} corpus", len(doc_ids)) as advance:
        shards = encode_corpus_cached(
            model,
            dataset.iter_texts(),
            corpus_content_key(dataset),
            settings.cache_dir,
            batch_size=settings.batch_size,
            precision=settings.precision,
            on_progress=advance,
            store_dtype=settings.store_dtype,
            devices=settings.devices,
            count=len(doc_ids),
        )
    return doc_ids, shards


def retrieve(
    dataset: BeirDataset,
    qids: Sequence[str],
    settings: EvalSettings,
    model: LoadedModel | None,
    timings: dict[str, float],
    index_info: dict[str, Any],
) -> dict[str, dict[str, float]]:
    """TREC-style run: for each query, its top_k documents with scores."""
    query_texts = [dataset.queries[q] for q in qids]
    extra = 1 if settings.ignore_identical_ids else 0  # room for a dropped self-match
    started = time.perf_counter()
    if settings.retriever == "bm25":
        doc_ids = dataset.doc_ids
        # bm25s indexes the whole corpus in memory; its texts are only held while indexing.
        scores, indices = bm25.bm25_search(list(dataset.iter_texts()), query_texts, settings.top_k + extra)
        timings["bm25_s"] = time.perf_counter() - started
    else:
        if model is None:
            raise IrtuneError("dense retrieval needs a model (-m)")
        doc_ids, shards = dense_corpus(model, dataset, settings)
        timings["encode_corpus_s"] = time.perf_counter() - started
        started = time.perf_counter()
        query_vectors = encode_texts(
            model, query_texts, model.prompts.query, settings.batch_size, settings.precision
        )
        timings["encode_queries_s"] = time.perf_counter() - started
        started = time.perf_counter()
        scores, indices = exact_search(query_vectors, shards.iter_with_offsets(), settings.top_k + extra)
        timings["search_s"] = time.perf_counter() - started
        if settings.index != "exact":
            scores, indices = _approximate(settings, shards, query_vectors, indices, timings, index_info)
    run: dict[str, dict[str, float]] = {}
    for row, qid in enumerate(qids):
        hits = {
            doc_ids[i]: float(s)
            for i, s in zip(indices[row], scores[row], strict=True)
            if np.isfinite(s) and not (settings.ignore_identical_ids and doc_ids[i] == qid)
        }
        run[qid] = dict(list(hits.items())[: settings.top_k])
    return run


def _approximate(
    settings: EvalSettings,
    shards: EmbeddingShards,
    query_vectors: np.ndarray,
    exact_indices: np.ndarray,
    timings: dict[str, float],
    index_info: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """Search a FAISS index and measure its recall against the exact top-100."""
    started = time.perf_counter()
    index = ann.build_index(
        shards.iter_with_offsets(), query_vectors.shape[1], settings.index, settings.index_params
    )
    timings["index_build_s"] = time.perf_counter() - started
    started = time.perf_counter()
    extra = 1 if settings.ignore_identical_ids else 0
    scores, indices = ann.faiss_search(index, query_vectors, settings.top_k + extra)
    timings["index_search_s"] = time.perf_counter() - started
    index_info.update(
        {
            "params": {**ann.DEFAULT_PARAMS[settings.index], **settings.index_params},
            "recall@100_vs_exact": ann.ann_recall(indices, exact_indices, 100),
            "recall@10_vs_exact": ann.ann_recall(indices, exact_indices, 10),
        }
    )
    return scores, indices


def evaluate_dataset(
    dataset: BeirDataset,
    settings: EvalSettings,
    model: LoadedModel | None = None,
    selection: QuerySelection | None = None,
) -> DatasetEvaluation:
    selection = selection or QuerySelection()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    qrels = dataset.qrels(settings.split)
    qids = selected_queries(dataset, settings.split, selection)
    timings["load_s"] = time.perf_counter() - started
    index_info: dict[str, Any] = {"type": settings.index}
    run = retrieve(dataset, qids, settings, model, timings, index_info)
    started = time.perf_counter()
    per_query = evaluate_run(
        {q: qrels[q] for q in qids}, run, settings.metrics, settings.ignore_identical_ids
    )
    timings["metrics_s"] = time.perf_counter() - started
    contamination = _contamination(model, dataset, qids)
    entry = {
        "dataset": dataset.name,
        "split": settings.split,
        "retriever": settings.retriever if settings.retriever == "dense" else bm25.describe(),
        "index": index_info if settings.retriever == "dense" else None,
        "queries": {
            "selection": selection.name,
            "selection_sha256": selection.source_sha256,
            "count": len(qids),
            "ids_sha256": sha256_text(*sorted(qids)),
        },
        "corpus_size": len(dataset.doc_ids),
        "data_files_sha256": dataset.file_hashes(settings.split),
        "metrics": mean_metrics(per_query),
        "per_query": per_query,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "contaminated": bool(contamination["contaminated"]),
        "contamination": contamination,
    }
    return DatasetEvaluation(entry=entry, run=run)


def _contamination(model: LoadedModel | None, dataset: BeirDataset, qids: Sequence[str]) -> dict:
    if model is None or not model.training:
        return {"contaminated": False, "model_contaminated": False, "overlap": []}
    evaluated = {q: dataset.queries[q] for q in qids}
    overlaps = []
    for data in model.training.get("train_queries", []):
        training = TrainingQueries.from_json(data)
        overlap = find_overlap(training, dataset.name, evaluated)
        if overlap.count:
            overlaps.append({"train_set": f"{training.dataset}:{training.split}", **overlap.to_json()})
    return {
        "contaminated": model.contaminated or bool(overlaps),
        "model_contaminated": model.contaminated,
        "overlap": overlaps,
    }


def write_run_file(path: Path, run: dict[str, dict[str, float]], tag: str) -> None:
    """TREC run file. Scores are written round-trippable (repr: shortest exact form), not
    rounded: rounding ties near-equal scores, and trec_eval re-ranks ties by document id,
    so a re-read run would be ordered (and scored) differently from the evaluated one."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for qid, scores in run.items():
            for rank, doc in enumerate(rank_documents(scores), start=1):
                out.write(f"{qid} Q0 {doc} {rank} {float(scores[doc])!r} {tag}\n")


def results_document(
    evaluations: Sequence[DatasetEvaluation],
    settings: EvalSettings,
    model: LoadedModel | None,
    label: str,
) -> dict[str, Any]:
    return {
        "format": RESULTS_FORMAT,
        "label": label,
        "model": model.describe() if model else None,
        "settings": settings.describe(),
        "environment": environment(),
        "contaminated": any(e.entry["contaminated"] for e in evaluations),
        "datasets": [e.entry for e in evaluations],
    }


def write_results(
    out_dir: Path,
    evaluations: Sequence[DatasetEvaluation],
    settings: EvalSettings,
    model: LoadedModel | None,
    label: str,
) -> Path:
    """results.json plus one TREC run file per dataset (`runs/<dataset>.<split>.trec`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for evaluation in evaluations:
        entry = evaluation.entry
        run_path = out_dir / "runs" / f"{entry['dataset']}.{entry['split']}.trec"
        write_run_file(run_path, evaluation.run, tag=label)
        entry["run_file"] = str(run_path.relative_to(out_dir))
    path = out_dir / "results.json"
    write_json_atomic(path, results_document(evaluations, settings, model, label))
    return path
