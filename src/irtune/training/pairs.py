"""(query, positive document) training pairs from qrels."""

from __future__ import annotations

import random
from dataclasses import dataclass

from irtune.data.beir import BeirDataset
from irtune.data.splits import SplitPart


@dataclass(frozen=True)
class Pair:
    query_id: str
    doc_id: str


def training_queries(dataset: BeirDataset, part: SplitPart) -> list[str]:
    """Queries of a split part with at least one relevant document, in file order."""
    qids = dataset.relevant_queries(part.split)
    return qids if part.query_ids is None else [q for q in qids if q in part.query_ids]


def positives(
    dataset: BeirDataset, part: SplitPart, excluded: frozenset[str] = frozenset()
) -> dict[str, list[str]]:
    """Relevant documents per training query, minus `excluded` ones; queries left without
    a positive are left out."""
    qrels = dataset.qrels(part.split)
    found = {
        qid: [d for d, g in qrels[qid].items() if g > 0 and d in dataset.corpus and d not in excluded]
        for qid in training_queries(dataset, part)
    }
    return {qid: docs for qid, docs in found.items() if docs}


def epoch_pairs(
    positives_by_query: dict[str, list[str]],
    epoch: int,
    seed: int,
    max_positives_per_query: int | None = None,
    max_pairs: int | None = None,
) -> list[Pair]:
    """The pairs of one epoch: each query keeps at most `max_positives_per_query` of its
    positives, drawn afresh every epoch (so capped queries still see all positives over
    several epochs); the highest grades are not favoured, every positive counts alike."""
    rng = random.Random(f"{seed}:{epoch}")
    pairs: list[Pair] = []
    for qid, docs in positives_by_query.items():
        chosen = list(docs)
        if max_positives_per_query is not None and len(chosen) > max_positives_per_query:
            chosen = rng.sample(chosen, max_positives_per_query)
        pairs.extend(Pair(qid, d) for d in chosen)
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs = rng.sample(pairs, max_pairs)
    return pairs
