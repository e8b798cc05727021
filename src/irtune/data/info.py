"""Summary statistics of a BEIR dataset (`irtune data info`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from irtune.data.beir import BeirDataset


def _words(text: str) -> int:
    return len(text.split())


def dataset_info(dataset: BeirDataset) -> dict[str, Any]:
    doc_lengths = [_words(doc.full_text()) for doc in dataset.corpus.values()]
    query_lengths = [_words(text) for text in dataset.real_queries.values()]
    splits: dict[str, Any] = {}
    for split in dataset.splits():
        qrels = dataset.qrels(split)
        grades = Counter(g for judged in qrels.values() for g in judged.values())
        relevant = sum(n for g, n in grades.items() if g > 0)
        with_relevant = len(dataset.relevant_queries(split))
        splits[split] = {
            "queries": len(qrels),
            "queries_with_relevant": with_relevant,
            "pairs": sum(grades.values()),
            "relevant_pairs": relevant,
            "relevant_per_query": relevant / with_relevant if with_relevant else 0.0,
            "grades": dict(sorted(grades.items())),
            "synthetic": dataset.is_synthetic(split),
        }
    return {
        "name": dataset.name,
        "path": str(dataset.root),
        "corpus": {
            "count": len(doc_lengths),
            "mean_words": sum(doc_lengths) / len(doc_lengths),
            "max_words": max(doc_lengths),
        },
        "queries": {
            "count": len(query_lengths),
            "generated": len(dataset.synthetic_queries),
            "mean_words": sum(query_lengths) / len(query_lengths) if query_lengths else 0.0,
        },
        "splits": splits,
    }
