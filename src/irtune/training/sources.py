"""What each training set yields once per run, before any epoch: its positives, the
documents never to use as negatives, and (with hard negatives) the base model's ranked
candidates, mined from its cached corpus embeddings."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from irtune.errors import IrtuneError
from irtune.models.loading import LoadedModel
from irtune.retrieval.base import corpus_content_key
from irtune.retrieval.encode import encode_corpus_cached
from irtune.training.config import TrainConfig
from irtune.training.negatives import MinedCandidates, mine_candidates
from irtune.training.pairs import positives
from irtune.training.plan import TrainSet

log = logging.getLogger(__name__)


@dataclass
class Source:
    """One training set with what is derived from it once per run."""

    train: TrainSet
    positives: dict[str, list[str]]
    doc_ids: list[str]
    mined: MinedCandidates | None = None
    # documents that are evaluated queries (by id where queries are documents, or by
    # normalised text in any dataset): never used as negatives
    forbidden: frozenset[str] = frozenset()


def prepare_sources(
    base: LoadedModel,
    train_sets: Sequence[TrainSet],
    forbidden: Mapping[str, frozenset[str]],
    config: TrainConfig,
    cache_dir: Path | None,
) -> list[Source]:
    sources = []
    for train in train_sets:
        dataset = train.dataset
        doc_ids = list(dataset.corpus)
        log.info("%s: base-model corpus embeddings (cached after first use)", dataset.name)
        shards = encode_corpus_cached(  # texts streamed in corpus order: one chunk held at a time
            base,
            dataset.iter_texts(),
            corpus_content_key(dataset),
            cache_dir,
            config.encode_batch_size,
            config.precision,
            count=len(doc_ids),
        )
        found = positives(dataset, train.part, train.excluded_positives)
        source = Source(train, found, doc_ids, forbidden=forbidden[train.key])
        if not source.positives:
            raise IrtuneError(f"{train.label}: no query with a relevant document to train on")
        if config.hard_negatives:
            source.mined = mine_candidates(
                base,
                dataset,
                shards,
                doc_ids,
                source.positives,
                config.negatives_range_min,
                config.negatives_range_max,
                config.precision,
                config.encode_batch_size,
                cache_dir,
            ).without(source.forbidden)
        sources.append(source)
    return sources
