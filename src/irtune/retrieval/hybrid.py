"""Hybrid retrieval: a BM25 run and a dense run fused into one.

Two fusions, both over each retriever's own top-k list (a document missing from a list
gets nothing from it). Before fusing, BM25 documents scoring 0 (no query term: bm25s pads
its top-k with them) and, as in evaluation, a document whose id is the query's own are
dropped, so neither can take a place or set a normalisation range.

- `hybrid-rrf`, reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009):
  score(d) = sum over runs of 1 / (k + rank(d)), k = 60. Nothing is tuned.
- `hybrid`, a convex combination of scores (Bruch, Gai & Ingber, "An Analysis of Fusion
  Functions for Hybrid Retrieval", TOIS 2023, found it at least as good as RRF once its
  weight is tuned): w * dense + (1 - w) * bm25, each min-max normalised per query over its
  list. The weight w is chosen on judged dev queries only, by NDCG@10 (trec_eval
  semantics) over a grid of 0, 0.05, ..., 1; w = 0 ranks by BM25 and w = 1 by the dense
  score first (documents only the other run found follow, tied at 0), so tuning can fall
  back to either. The evaluation refuses dev queries
  that are evaluated; the chosen weight and the dev queries' hash land in the results.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from irtune.errors import InvalidValueError, IrtuneError
from irtune.results.metrics import evaluate_run, rank_documents
from irtune.results.schema import RetrieverInfo
from irtune.retrieval.base import Corpus, LabelledQueries, Retrieval, Retriever, Run, SearchIndex
from irtune.retrieval.bm25 import BM25Retriever
from irtune.retrieval.dense import dense_retriever

if TYPE_CHECKING:
    from irtune.models.loading import LoadedModel
    from irtune.retrieval.settings import RetrievalSettings

RRF_K = 60
WEIGHTS = tuple(round(i * 0.05, 2) for i in range(21))  # dense weight; 1 - w goes to BM25
TUNING_METRIC = "ndcg@10"


def reciprocal_rank_fusion(runs: list[Run], top_k: int, k: int = RRF_K) -> Run:
    fused: Run = {}
    for qid in runs[0]:
        scores: dict[str, float] = {}
        for run in runs:
            for rank, doc in enumerate(rank_documents(run.get(qid, {})), start=1):
                scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank)
        fused[qid] = _top(scores, top_k)
    return fused


def _min_max(scores: Mapping[str, float]) -> dict[str, float]:
    """Scores mapped onto [0, 1] within one query's list (all 1 when they are all equal)."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    span = high - low
    return {d: (s - low) / span if span > 0 else 1.0 for d, s in scores.items()}


def convex_fusion(dense: Run, lexical: Run, weight: float, top_k: int) -> Run:
    fused: Run = {}
    for qid in dense:
        a, b = _min_max(dense[qid]), _min_max(lexical.get(qid, {}))
        scores = {d: weight * a.get(d, 0.0) + (1.0 - weight) * b.get(d, 0.0) for d in a.keys() | b.keys()}
        fused[qid] = _top(scores, top_k)
    return fused


def _top(scores: Mapping[str, float], top_k: int) -> dict[str, float]:
    """The top_k in trec_eval order (score, then document id, descending), best first."""
    return {d: scores[d] for d in rank_documents(scores)[:top_k]}


def fusable(run: Run, *, drop_self: bool, positive_only: bool) -> Run:
    """A component run as fused: without self-matches (when evaluation drops them) and,
    for BM25, without the zero-score padding."""
    return {
        qid: {d: s for d, s in hits.items() if not (drop_self and d == qid) and (s > 0 or not positive_only)}
        for qid, hits in run.items()
    }


def choose_weight(
    dense: Run, lexical: Run, dev: LabelledQueries, top_k: int, *, ignore_identical_ids: bool = True
) -> tuple[float, dict[str, float]]:
    """The dense weight with the best mean dev NDCG@10, and every weight's score; ties go
    to the weight nearest an even mix (then the smaller), so the choice is deterministic."""
    qrels = {q: dict(dev.qrels[q]) for q in dev.queries}
    curve: dict[str, float] = {}
    for weight in WEIGHTS:
        run = convex_fusion(dense, lexical, weight, top_k)
        per_query = evaluate_run(qrels, run, (TUNING_METRIC,), ignore_identical_ids=ignore_identical_ids)
        values = [v[TUNING_METRIC] for v in per_query.values()]
        curve[f"{weight:.2f}"] = math.fsum(values) / len(values) if values else 0.0
    best = max(WEIGHTS, key=lambda w: (round(curve[f"{w:.2f}"], 12), -abs(w - 0.5), -w))
    return best, curve


@dataclass(frozen=True)
class HybridRetriever:
    dense: Retriever
    lexical: Retriever
    fusion: str  # "rrf" or "convex"
    name: str
    ignore_identical_ids: bool = True  # as the evaluation: self-matches are not fused

    @property
    def uses_dev(self) -> bool:
        return self.fusion == "convex"

    def describe(self) -> RetrieverInfo:
        params: dict[str, Any] = {"fusion": self.fusion}
        if self.fusion == "rrf":
            params["k"] = RRF_K
        else:
            params |= {
                "normalisation": "min-max per query",
                "weight_grid": f"{WEIGHTS[0]}..{WEIGHTS[-1]} step 0.05",
                "tuned_on": f"dev {TUNING_METRIC}",
            }
        return RetrieverInfo(
            name=self.name,
            description=f"{self.fusion} fusion of {self.dense.name} and {self.lexical.name} runs",
            encodes=False,
            params=params,
            components=[self.dense.describe(), self.lexical.describe()],
        )

    def index(self, corpus: Corpus, dev: LabelledQueries | None = None) -> HybridIndex:
        if self.uses_dev and dev is None:
            raise IrtuneError(f"{self.name}: the fusion weight is tuned on dev queries, and none were given")
        return HybridIndex(self, self.dense.index(corpus), self.lexical.index(corpus), dev)


@dataclass
class HybridIndex:
    retriever: HybridRetriever
    dense: SearchIndex
    lexical: SearchIndex
    dev: LabelledQueries | None
    tuned: dict[int, tuple[float, dict[str, float]]] = field(default_factory=dict)  # by list depth

    def _fusable(self, dense: Retrieval, lexical: Retrieval) -> tuple[Run, Run]:
        drop_self = self.retriever.ignore_identical_ids
        return (
            fusable(dense.run, drop_self=drop_self, positive_only=False),
            fusable(lexical.run, drop_self=drop_self, positive_only=True),
        )

    def search(self, queries: Mapping[str, str], top_k: int) -> Retrieval:
        if self.retriever.fusion == "convex" and top_k < 10:
            # the evaluation searches one deeper to drop a query's own document: name what was asked
            asked = top_k - 1 if self.retriever.ignore_identical_ids else top_k
            raise InvalidValueError(
                "{name}: {top_k} {value} is below its tuning depth (10)",
                name=self.retriever.name,
                value=asked,
            )
        dense, lexical = self.dense.search(queries, top_k), self.lexical.search(queries, top_k)
        dense_run, lexical_run = self._fusable(dense, lexical)
        timings = {f"dense_{k}": v for k, v in dense.timings_s.items()}
        timings |= {f"bm25_{k}": v for k, v in lexical.timings_s.items()}
        details: dict[str, Any] = {f"dense_{k}": v for k, v in dense.details.items()}
        if self.retriever.fusion == "rrf":
            return Retrieval(reciprocal_rank_fusion([dense_run, lexical_run], top_k), timings, details)
        weight, curve = self._weight(top_k)
        details |= {
            "dense_weight": weight,
            "dev": self.dev.describe() if self.dev else None,
            "dev_curve": curve,
        }
        return Retrieval(convex_fusion(dense_run, lexical_run, weight, top_k), timings, details)

    def _weight(self, top_k: int) -> tuple[float, dict[str, float]]:
        """Tuned once per list depth, on dev runs as deep as the runs it will fuse."""
        if top_k not in self.tuned:
            assert self.dev is not None  # checked by HybridRetriever.index
            dense, lexical = self._fusable(
                self.dense.search(self.dev.queries, top_k), self.lexical.search(self.dev.queries, top_k)
            )
            self.tuned[top_k] = choose_weight(
                dense, lexical, self.dev, top_k, ignore_identical_ids=self.retriever.ignore_identical_ids
            )
        return self.tuned[top_k]


def hybrid_retriever(settings: RetrievalSettings, model: LoadedModel | None) -> HybridRetriever:
    dense = dense_retriever(settings, model)
    return HybridRetriever(dense, BM25Retriever(), "convex", "hybrid", settings.ignore_identical_ids)


def rrf_retriever(settings: RetrievalSettings, model: LoadedModel | None) -> HybridRetriever:
    dense = dense_retriever(settings, model)
    return HybridRetriever(dense, BM25Retriever(), "rrf", "hybrid-rrf", settings.ignore_identical_ids)
