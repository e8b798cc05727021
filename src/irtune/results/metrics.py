"""Retrieval metrics with trec_eval semantics (pytrec_eval is the oracle in the tests).

- ranking: score descending, ties broken by document id descending (as trec_eval);
- relevant: grade > 0; NDCG uses the grade as linear gain and an ideal ranking built
  from every judged-relevant document, retrieved or not;
- MAP@k and Recall@k divide by R = number of relevant documents (not min(k, R));
- P@k divides by k; MRR@k is the reciprocal rank of the first relevant hit within k;
- queries without any relevant document are skipped; a query with relevant documents
  but no retrieved ones scores 0 (trec_eval's `-c`);
- a retrieved document whose id equals the query id is dropped unless asked otherwise
  (BEIR's default, which matters on Quora).

Written here rather than calling pytrec_eval at run time because irtune needs
per-query values for arbitrary cut-offs (MRR@k has no trec_eval cut) and a pure-Python
path with no C extension at install time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

HEADLINE_METRICS = ("ndcg@10", "ndcg@100", "map@100", "recall@100")
DEFAULT_METRICS = (
    "ndcg@1", "ndcg@3", "ndcg@5", "ndcg@10", "ndcg@100",
    "map@10", "map@100",
    "recall@10", "recall@100", "recall@1000",
    "p@1", "p@10",
    "mrr@10",
)  # fmt: skip
METRIC_FAMILIES = ("ndcg", "map", "recall", "p", "mrr")

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class MetricSpec:
    family: str
    k: int

    @property
    def name(self) -> str:
        return f"{self.family}@{self.k}"


def parse_metric(name: str) -> MetricSpec:
    match = re.fullmatch(r"(ndcg|map|recall|p|mrr)@(\d+)", name.strip().lower())
    if not match or int(match.group(2)) < 1:
        raise ValueError(f"unknown metric {name!r} (expected e.g. ndcg@10, map@100, p@5)")
    return MetricSpec(match.group(1), int(match.group(2)))


def rank_documents(scores: Mapping[str, float]) -> list[str]:
    """Document ids in trec_eval order: score descending, then id descending. trec_eval holds
    a run's scores as float32, so scores equal in float32 tie here too (fused float64 scores
    can differ below that precision and would otherwise be ordered otherwise than the run file
    is scored)."""
    docs = list(scores)
    as_float32 = np.fromiter(scores.values(), dtype=np.float32, count=len(docs))
    order = np.argsort(-as_float32)
    ranked = as_float32[order]
    if np.all(ranked[1:] < ranked[:-1]):  # no tie (nor NaN): the scores alone decide, sorted in C
        return list(map(docs.__getitem__, order.tolist()))
    return [doc for _, doc in sorted(zip(as_float32.tolist(), docs, strict=True), reverse=True)]


def _dcg(gains: Iterable[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains) if g > 0)


def score_query(ranked: list[str], judged: Mapping[str, int], specs: list[MetricSpec]) -> dict[str, float]:
    depth = max((spec.k for spec in specs), default=0)
    # (rank, grade) of each relevant document retrieved within the deepest cut-off, best first
    hits = [(rank, grade) for rank, doc in enumerate(ranked[:depth]) if (grade := judged.get(doc, 0)) > 0]
    relevant_grades = sorted((g for g in judged.values() if g > 0), reverse=True)
    n_relevant = len(relevant_grades)
    out: dict[str, float] = {}
    for spec in specs:
        k = spec.k
        top = [(rank, grade) for rank, grade in hits if rank < k]
        if spec.family == "ndcg":
            ideal = _dcg(relevant_grades[:k])
            out[spec.name] = sum(g / math.log2(rank + 2) for rank, g in top) / ideal if ideal > 0 else 0.0
        elif spec.family == "map":
            out[spec.name] = sum((found + 1) / (rank + 1) for found, (rank, _) in enumerate(top)) / n_relevant
        elif spec.family == "recall":
            out[spec.name] = len(top) / n_relevant
        elif spec.family == "p":
            out[spec.name] = len(top) / k
        else:  # mrr
            out[spec.name] = 1.0 / (top[0][0] + 1) if top else 0.0
    return out


def evaluate_run(
    qrels: Qrels,
    run: Run,
    metrics: Iterable[str] = DEFAULT_METRICS,
    ignore_identical_ids: bool = True,
) -> dict[str, dict[str, float]]:
    """Per-query metric values for every query with at least one relevant document."""
    specs = [parse_metric(m) for m in metrics]
    per_query: dict[str, dict[str, float]] = {}
    for qid, judged in qrels.items():
        if not any(g > 0 for g in judged.values()):
            continue
        scores = run.get(qid, {})
        if ignore_identical_ids and qid in scores:
            scores = {doc: s for doc, s in scores.items() if doc != qid}
        per_query[qid] = score_query(rank_documents(scores), judged, specs)
    return per_query


def mean_metrics(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    if not per_query:
        return {}
    names = next(iter(per_query.values())).keys()
    n = len(per_query)
    return {name: math.fsum(values[name] for values in per_query.values()) / n for name in names}
