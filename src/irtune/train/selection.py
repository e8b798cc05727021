"""Model selection on dev queries with irtune's own (trec_eval-exact) metrics.

Dev scoring searches a candidate pool rather than the full corpus when `pool_k > 0`:
every dev positive plus the base model's top `pool_k` documents for every dev query,
searched as one shared mini-corpus. It ranks epochs and interpolation weights fairly
at a fraction of a full-corpus encode; these numbers are for selection only and are
recorded as such, never reported as BEIR numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from irtune.data.beir import BeirDataset
from irtune.data.splits import SplitPart
from irtune.evaluate import corpus_content_key
from irtune.fileio import sha256_text
from irtune.metrics import evaluate_run, mean_metrics
from irtune.models import LoadedModel
from irtune.retrieval.dense import exact_search
from irtune.retrieval.encode import EmbeddingShards, encode_corpus_cached, encode_texts
from irtune.train.pairs import training_queries

SELECTION_METRICS = ("ndcg@10", "recall@100")
SELECTION_KEY = "ndcg@10"


@dataclass
class DevSet:
    dataset: BeirDataset
    qids: list[str]
    pool: list[str]  # document ids searched during selection
    qrels: dict[str, dict[str, int]]


def build_dev_set(
    base: LoadedModel,
    dataset: BeirDataset,
    part: SplitPart,
    base_shards: EmbeddingShards,
    pool_k: int,
    max_queries: int | None,
    precision: str,
    batch_size: int,
) -> DevSet:
    qids = training_queries(dataset, part)
    if max_queries is not None:
        qids = qids[:max_queries]
    doc_ids = list(dataset.corpus)
    qrels = dataset.qrels(part.split)
    if pool_k == 0:
        pool = doc_ids
    else:
        vectors = encode_texts(
            base, [dataset.queries[q] for q in qids], base.prompts.query, batch_size, precision
        )
        _, indices = exact_search(vectors, base_shards.iter_with_offsets(), pool_k)
        members = {doc_ids[i] for row in indices for i in row}
        members |= {d for q in qids for d, g in qrels[q].items() if g > 0 and d in dataset.corpus}
        pool = [d for d in doc_ids if d in members]  # corpus order: deterministic
    return DevSet(dataset, qids, pool, {q: qrels[q] for q in qids})


def score_dev(
    model: LoadedModel,
    dev_sets: list[DevSet],
    precision: str,
    batch_size: int,
    cache_dir: Path | None,
) -> dict:
    """Mean dev metrics per dataset and their macro average (the selection criterion)."""
    per_dataset: dict[str, dict[str, float]] = {}
    for dev in dev_sets:
        corpus = dev.dataset.corpus
        texts = [corpus[d].full_text() for d in dev.pool]
        content = sha256_text(corpus_content_key(dev.dataset), *dev.pool)
        shards = encode_corpus_cached(model, texts, content, cache_dir, batch_size, precision)
        vectors = encode_texts(
            model, [dev.dataset.queries[q] for q in dev.qids], model.prompts.query, batch_size, precision
        )
        scores, indices = exact_search(vectors, shards.iter_with_offsets(), 100)
        run = {
            q: {dev.pool[i]: float(s) for i, s in zip(indices[r], scores[r], strict=True)}
            for r, q in enumerate(dev.qids)
        }
        per_dataset[dev.dataset.name] = mean_metrics(evaluate_run(dev.qrels, run, SELECTION_METRICS))
    macro = {m: math.fsum(v[m] for v in per_dataset.values()) / len(per_dataset) for m in SELECTION_METRICS}
    return {"per_dataset": per_dataset, **macro}


def interpolated_state(
    base_state: dict[str, torch.Tensor], tuned_state: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """(1 - alpha) * base + alpha * tuned for floating-point tensors (weight-space ensembling,
    as in WiSE-FT); integer buffers come from the tuned model."""
    return {
        name: torch.lerp(base_state[name], tensor, alpha) if tensor.is_floating_point() else tensor
        for name, tensor in tuned_state.items()
    }
