"""Each epoch's training rows: (query, positive, negatives...) texts in batch order.

Positives are re-sampled per epoch, hard negatives rotate through each query's mined
candidates (random documents fill in where too few are safe), and rows are packed so
that no batch holds a document judged relevant to another of its queries: MNRL would
otherwise push a true positive away as an in-batch negative.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

from datasets import Dataset

from irtune.models.loading import LoadedModel
from irtune.training.batching import Row, conflict_free_order
from irtune.training.config import TrainConfig
from irtune.training.negatives import random_negative
from irtune.training.pairs import epoch_pairs
from irtune.training.sources import Source

log = logging.getLogger(__name__)

QUERY_COLUMN = "anchor"


def epoch_dataset(source: Source, epoch: int, config: TrainConfig) -> tuple[Dataset, int]:
    """The epoch's rows in conflict-free batch order, and how many rows that left out."""
    dataset = source.train.dataset
    rng = random.Random(f"{config.seed}:negatives:{epoch}")
    pairs = epoch_pairs(
        source.positives, epoch, config.seed, config.max_positives_per_query, config.max_pairs_per_dataset
    )
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for pair in pairs:
        doc_ids = [pair.doc_id]
        if source.mined is not None:
            occurrence = seen.get(pair.query_id, 0)
            seen[pair.query_id] = occurrence + 1
            chosen = source.mined.negatives_for(
                pair.query_id, pair.doc_id, occurrence, config.num_negatives, config.relative_margin
            )
            excluded = set(source.positives[pair.query_id]) | source.forbidden | {pair.query_id, *chosen}
            while len(chosen) < config.num_negatives:  # too few safe hard negatives: random ones
                chosen.append(random_negative(rng, source.doc_ids, excluded))
                excluded.add(chosen[-1])
            doc_ids.extend(chosen)
        texts = (dataset.queries[pair.query_id], *(dataset.corpus[d].full_text() for d in doc_ids))
        rows.append(Row(pair.query_id, tuple(doc_ids), texts))
    relevant = {qid: set(docs) for qid, docs in source.positives.items()}
    order, left_out = conflict_free_order(rows, relevant, config.batch_size, rng)
    if left_out > len(rows) // 10:
        log.warning(
            "%s: %d of %d rows left out of epoch %d: their documents are judged relevant to "
            "queries in every batch",
            dataset.name,
            left_out,
            len(rows),
            epoch,
        )
    names = [QUERY_COLUMN, "positive"]
    if source.mined is not None:
        names += (
            ["negative"]
            if config.num_negatives == 1
            else [f"negative_{i + 1}" for i in range(config.num_negatives)]
        )
    columns = {name: [rows[i].texts[k] for i in order] for k, name in enumerate(names)}
    return Dataset.from_dict(columns), left_out


def column_prompts(base: LoadedModel, columns: Sequence[str]) -> dict[str, str] | None:
    """The model's query prompt for the query column, its document prompt for the others."""
    prompts = {
        column: base.prompts.query if column == QUERY_COLUMN else base.prompts.document for column in columns
    }
    prompts = {c: p for c, p in prompts.items() if p}
    return prompts or None
