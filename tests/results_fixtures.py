"""Hand-made results.json documents for compare/report tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

from irtune.core.files import sha256_text
from irtune.results.metrics import HEADLINE_METRICS
from irtune.results.schema import RESULTS_FORMAT
from irtune.retrieval.settings import RetrievalSettings


def results_doc(
    label: str,
    datasets: dict[str, dict[str, float]],
    shift: float = 0.0,
    contaminated: bool = False,
    seed: int = 0,
    n_queries: int = 50,
    *,
    settings: dict | None = None,
    max_seq_length: int = 256,
    trained_on: tuple[str, ...] = (),
) -> dict:
    """Per-query values drawn around a per-dataset level; `shift` moves every query.

    `settings` overrides RetrievalSettings' defaults (retriever, precision, index, top_k, ...),
    recorded as `irtune eval` records them (a BM25 run gets no model and no index);
    `trained_on` gives the model a training record (training_summary) on those datasets."""
    rng = random.Random(seed)
    chosen = RetrievalSettings(**(settings or {}))
    dense = chosen.retriever == "dense"
    retriever = {"name": "bm25", "description": "bm25s 0.2 (method=lucene)", "encodes": False}
    retrieval: dict = {}
    if dense:
        retriever = {
            "name": "dense",
            "description": "dense (inner product over cached embeddings)",
            "encodes": True,
            "precision": chosen.precision,
            "max_seq_length": max_seq_length,
            "store_dtype": chosen.store_dtype,
            "index": chosen.index,
            "index_params": {},
        }
        if chosen.index not in ("exact", "flat"):
            retrieval = {"index": {"type": chosen.index, "params": {}, "recall@100_vs_exact": 0.97}}
    entries = []
    for name, levels in datasets.items():
        qids = [f"{name}-q{i}" for i in range(n_queries)]
        per_query = {}
        for i, q in enumerate(qids):
            noise = random.Random(f"{name}{i}").uniform(-0.2, 0.2)  # shared by all runs: paired
            per_query[q] = {
                m: min(1.0, max(0.0, levels[m] + noise + shift + rng.uniform(-0.02, 0.02)))
                for m in HEADLINE_METRICS
            }
        metrics = {m: sum(v[m] for v in per_query.values()) / len(per_query) for m in HEADLINE_METRICS}
        entries.append(
            {
                "dataset": name,
                "split": "test",
                "queries": {
                    "selection": "all",
                    "selection_sha256": None,
                    "count": len(qids),
                    "ids_sha256": sha256_text(*sorted(qids)),
                },
                "corpus_size": 1000,
                "query_ids_in_corpus": 0,
                "data_files_sha256": {"corpus.jsonl": name},
                "metrics": metrics,
                "per_query": per_query,
                "timings_s": {},
                "retrieval": retrieval,
                "contaminated": contaminated,
                "contamination": {
                    "contaminated": contaminated,
                    "model_contaminated": contaminated,
                    "overlap": [],
                },
            }
        )
    return {
        "format": RESULTS_FORMAT,
        "label": label,
        "model": {
            "name": label,
            "weights_sha256": "ab" * 32,
            "prompts": {"query": "", "document": ""},
            "max_seq_length": max_seq_length,
            "contaminated": contaminated,
            "training": training_summary(trained_on) if trained_on else None,
        }
        if dense
        else None,
        "retriever": retriever,
        "settings": chosen.describe().model_dump(mode="json"),
        "environment": {
            "irtune_version": "test",
            "git_commit": None,
            "date": "2026-11-26",
            "host": "h",
            "cpu": "cpu",
            "gpus": [],
        },
        "contaminated": contaminated,
        "datasets": entries,
    }


def training_summary(datasets: tuple[str, ...], *, epochs: int = 2, chosen_epoch: int = 2) -> dict:
    """What a results file repeats of a model's irtune_training.json (TrainingRecord.summary)."""
    return {
        "base_model": {"name": "base", "weights_sha256": "ab" * 32},  # results_doc's model: its base
        "train_sets": [
            {
                "spec": f"{name}:train (held-out subset)",
                "dataset": name,
                "split": "train",
                "queries": 640,
                "subset_of_split": True,
                "plan": {
                    "method": "train split with a held-out dev slice; test reported",
                    "dev": "train",
                    "eval": "test",
                },
            }
            for name in datasets
        ],
        "contaminated": False,
        "leakage": [],
        "protocol": "honest",
        "config": {
            "loss": "mnrl",
            "epochs": epochs,
            "batch_size": 32,
            "learning_rate": 3e-5,
            "warmup_steps": 10,
            "max_steps": None,
            "hard_negatives": True,
            "num_negatives": 1,
            "negatives_range_min": 0,
            "negatives_range_max": 50,
            "relative_margin": 0.05,
            "max_positives_per_query": 2,
            "max_pairs_per_dataset": None,
        },
        "selected": {
            "epoch": chosen_epoch,
            "alpha": 0.5,
            "shipped": "fine-tuned",
            "criterion": "dev ndcg@10, every candidate and the base scored on the same documents",
            "dev_documents": {
                name: {"kind": "full corpus", "documents": 1000, "queries": 160} for name in datasets
            },
            "base_dev": {"ndcg@10": 0.68, "recall@100": 0.93},
            "dev": {"ndcg@10": 0.71, "recall@100": 0.95},
            "interpolation": [
                {"alpha": a, "dev": {"ndcg@10": v, "recall@100": 0.94}}
                for a, v in ((0.0, 0.68), (0.5, 0.71), (1.0, 0.70))
            ],
        },
        "curve": [
            {"epoch": e, "steps": 20 * e, "dev": {"ndcg@10": 0.68 + 0.01 * e, "recall@100": 0.94}}
            for e in range(1, epochs + 1)
        ],
        "loss": [
            {"epoch": 1 + (s - 1) // 20, "step": s, "loss": 1.0 / s} for s in range(2, 20 * epochs + 1, 2)
        ],
        "wall_time_s": 788.2,
    }


LEVELS = {
    "scifact": {"ndcg@10": 0.64, "ndcg@100": 0.67, "map@100": 0.60, "recall@100": 0.92},
    "nfcorpus": {"ndcg@10": 0.31, "ndcg@100": 0.29, "map@100": 0.14, "recall@100": 0.31},
}


def write(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path
