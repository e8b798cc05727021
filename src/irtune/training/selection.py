"""Model selection on dev queries with irtune's own (trec_eval-exact) metrics.

Every candidate (each epoch, each interpolation weight and the base model itself) is
scored on the same documents, chosen before and independently of any candidate:

- the whole corpus when it has at most `max_full_corpus` documents (100,000 by default:
  one encode per candidate; MiniLM on 2 CPU cores takes ~75 s for SciFact's 5,183
  documents under bf16, so ~25 min at 100k; the base's embeddings are already cached by
  hard-negative mining and the baseline evaluation, and the shipped candidate's serve its
  evaluation when its settings are the same);
- for larger corpora a fixed pool: every dev positive, BM25's top `bm25_k` for each dev
  query and a seeded random sample of `random_docs`.

A pool built from one candidate's own ranking (the base model's top-k, say) favours every
other candidate: the non-relevant documents they would rank high are missing from it, so
they can only score equal or higher there than on the corpus, while the base scores
exactly its corpus score. A model-free pool has no such favourite. These numbers are for
selection only and are recorded as such, never reported as BEIR numbers.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from irtune.core.files import sha256_text
from irtune.data.beir import BeirDataset
from irtune.data.leakage import text_fingerprint
from irtune.data.splits import SplitPart
from irtune.models.loading import LoadedModel
from irtune.results.metrics import evaluate_run, mean_metrics
from irtune.retrieval.base import Corpus
from irtune.retrieval.bm25 import BM25Retriever
from irtune.retrieval.dense import DenseRetriever
from irtune.training.pairs import training_queries

SELECTION_METRICS = ("ndcg@10", "recall@100")
SELECTION_KEY = "ndcg@10"


@dataclass(frozen=True)
class PoolSettings:
    """How the documents of dev scoring are chosen (never from a candidate's ranking)."""

    max_full_corpus: int = 100_000
    bm25_k: int = 100
    random_docs: int = 10_000
    seed: int = 0


@dataclass
class DevSet:
    dataset: BeirDataset
    qids: list[str]
    doc_ids: list[str]  # the documents every candidate is scored on, in corpus order
    qrels: dict[str, dict[str, int]]
    documents: dict[str, Any]  # how doc_ids were chosen, for the training record

    @property
    def full_corpus(self) -> bool:
        return self.documents["kind"] == "full corpus"

    def corpus(self) -> Corpus:
        """The scored documents. The full corpus keeps the corpus's own cache key, so the base
        model's embeddings from mining and the baseline evaluation are reused."""
        return Corpus.of(self.dataset) if self.full_corpus else Corpus.subset(self.dataset, self.doc_ids)

    def content_key(self) -> str:
        return self.corpus().content_key


def selection_documents(
    dataset: BeirDataset, qids: list[str], qrels: dict[str, dict[str, int]], pool: PoolSettings
) -> tuple[list[str], dict[str, Any]]:
    """The documents dev scoring searches and their description, without any model."""
    doc_ids = dataset.doc_ids
    if len(doc_ids) <= pool.max_full_corpus:
        return doc_ids, {"kind": "full corpus", "documents": len(doc_ids)}
    positives = {d for q in qids for d, g in qrels[q].items() if g > 0}
    lexical_retriever = BM25Retriever()
    run = lexical_retriever.index(Corpus.of(dataset)).search(
        {q: dataset.queries[q] for q in qids}, pool.bm25_k
    )
    lexical = {d for hits in run.run.values() for d in hits}
    sample = set(random.Random(pool.seed).sample(doc_ids, min(pool.random_docs, len(doc_ids))))
    members = (positives & set(doc_ids)) | lexical | sample
    chosen = [d for d in doc_ids if d in members]  # corpus order: deterministic
    return chosen, {
        "kind": "fixed pool",
        "documents": len(chosen),
        "corpus_documents": len(doc_ids),
        "dev_positives": len(positives),
        "bm25_top_k": pool.bm25_k,
        "bm25": lexical_retriever.describe().description,
        "random_sample": len(sample),
        "random_seed": pool.seed,
        "doc_ids_sha256": sha256_text(*chosen),
    }


def build_dev_set(
    dataset: BeirDataset,
    part: SplitPart,
    pool: PoolSettings,
    *,
    max_queries: int | None = None,
    exclude: frozenset[str] = frozenset(),
    exclude_texts: frozenset[str] = frozenset(),
) -> DevSet:
    """Dev queries of `part` and their documents, minus the query ids in `exclude` (trained
    on) and the queries whose text fingerprint is in `exclude_texts` (trained or evaluated
    under another id: selecting on them would select on those queries)."""
    candidates = [q for q in training_queries(dataset, part) if q not in exclude]
    qids = [q for q in candidates if text_fingerprint(dataset.queries[q]) not in exclude_texts]
    if max_queries is not None:
        qids = qids[:max_queries]
    all_qrels = dataset.qrels(part.split)
    qrels = {q: all_qrels[q] for q in qids}
    doc_ids, documents = selection_documents(dataset, qids, qrels, pool)
    described = {**documents, "queries": len(qids), "left_out_same_text": len(candidates) - len(qids)}
    return DevSet(dataset, qids, doc_ids, qrels, described)


def selection_key(base_weights_sha256: str, dev_sets: list[DevSet], precision: str) -> str:
    """What dev scores depend on besides the candidate: a resumed run may only reuse scores
    computed under the same key, or candidates would be compared on unlike numbers."""
    return sha256_text(
        json.dumps(
            {
                "metrics": SELECTION_METRICS,
                "precision": precision,
                "base": base_weights_sha256,
                "dev": [
                    {
                        "dataset": dev.dataset.name,
                        "queries": sha256_text(*dev.qids),
                        "content": dev.content_key(),
                        "documents": dev.documents,
                    }
                    for dev in dev_sets
                ],
            },
            sort_keys=True,
        )
    )


def _dev_retriever(
    model: LoadedModel, precision: str, batch_size: int, cache_dir: Path | None
) -> DenseRetriever:
    return DenseRetriever(
        model, precision=precision, batch_size=batch_size, cache_dir=cache_dir, show_progress=False
    )


def full_corpus_entries(
    model: LoadedModel, dev_sets: list[DevSet], precision: str, cache_dir: Path | None
) -> list[Path]:
    """The cache entries in which `score_dev` keeps `model`'s embeddings of each full corpus
    (a fixed pool's serve nothing but selection)."""
    retriever = _dev_retriever(model, precision, 1, cache_dir)
    return [retriever.cache_entry(dev.corpus()) for dev in dev_sets if dev.full_corpus]


def score_dev(
    model: LoadedModel,
    dev_sets: list[DevSet],
    precision: str,
    batch_size: int,
    cache_dir: Path | None,
) -> dict:
    """Mean dev metrics per dataset and their macro average (the selection criterion)."""
    per_dataset: dict[str, dict[str, float]] = {}
    retriever = _dev_retriever(model, precision, batch_size, cache_dir)
    for dev in dev_sets:
        queries = {q: dev.dataset.queries[q] for q in dev.qids}
        run = retriever.index(dev.corpus()).search(queries, 101).run  # +1: room for a self-match
        per_query = evaluate_run(dev.qrels, run, SELECTION_METRICS, ignore_identical_ids=True)
        per_dataset[dev.dataset.name] = mean_metrics(per_query)
    macro = {m: math.fsum(v[m] for v in per_dataset.values()) / len(per_dataset) for m in SELECTION_METRICS}
    return {"per_dataset": per_dataset, **macro}


def interpolated_state(
    base_state: dict[str, torch.Tensor], tuned_state: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """(1 - alpha) * base + alpha * tuned for floating-point tensors (weight-space ensembling,
    as in WiSE-FT); integer buffers come from the tuned model. The end points are the two
    models bit for bit: lerp's arithmetic turns a -0.0 into +0.0, which changes nothing
    computed but gives the epoch model scored on dev another weights hash when shipped."""
    if alpha == 1.0:
        return dict(tuned_state)
    return {
        name: (base_state[name] if alpha == 0.0 else torch.lerp(base_state[name], tensor, alpha))
        if tensor.is_floating_point()
        else tensor
        for name, tensor in tuned_state.items()
    }
