"""The dev queries that choose the shipped weights (best epoch, interpolation weight).

One dev set per dataset, never holding a query any source trains on (by id or text). The
base and every candidate are scored here, on the same documents: `score` is the one place
dev scores come from.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from irtune.data.leakage import text_fingerprint
from irtune.errors import InvalidValueError
from irtune.models.loading import LoadedModel
from irtune.retrieval.encode import share_entry
from irtune.training.config import TrainConfig
from irtune.training.plan import evaluated_queries
from irtune.training.selection import DevSet, PoolSettings, build_dev_set, full_corpus_entries, score_dev
from irtune.training.sources import Source
from irtune.training.state import DevScores, TrainingState

log = logging.getLogger(__name__)


def dev_sets(sources: Sequence[Source], config: TrainConfig) -> list[DevSet]:
    """One dev set per dataset (a dataset trained from two splits still has one plan),
    never holding a query any source trains on."""
    if not config.select_on_dev:
        return []
    pool = PoolSettings(
        config.selection_max_full_corpus, config.selection_bm25_k, config.selection_random_docs, config.seed
    )
    texts = frozenset(
        text_fingerprint(text)
        for source in sources
        for text in (*source.train.seen_queries().values(), *evaluated_queries(source.train).values())
    )
    found: dict[str, DevSet] = {}
    for source in sources:
        dataset = source.train.dataset
        if dataset.name in found:
            continue
        trained = frozenset(q for s in sources if s.train.dataset.name == dataset.name for q in s.positives)
        dev = build_dev_set(
            dataset,
            source.train.plan.dev,
            pool,
            max_queries=config.max_dev_queries,
            exclude=trained,
            exclude_texts=texts,
        )
        if dev.qids:
            found[dataset.name] = dev
    return list(found.values())


def check_selection_key(state: TrainingState, key: str, out_dir: Path) -> None:
    """Dev scores of an interrupted run are reused only when computed the same way."""
    started = state.completed_epochs or state.base_dev is not None
    if started and state.selection_key != key:
        raise InvalidValueError(
            "{path}: the interrupted run scored dev under another selection setup (dev queries, "
            "documents, precision or base model); use a new {out_dir}",
            path=out_dir,
        )
    state.selection_key = key


def announce_selection(found: Sequence[DevSet], config: TrainConfig) -> None:
    candidates = config.epochs + len({0.0, *config.interpolation_alphas} - {0.0, 1.0})
    for dev in found:
        docs = dev.documents
        log.info(
            "%s: dev selection on %d queries over %s documents (%s), the same for the base and up "
            "to %d candidates",
            dev.dataset.name,
            len(dev.qids),
            f"{docs['documents']:,}",
            docs["kind"],
            candidates,
        )


def score(model: LoadedModel, found: list[DevSet], config: TrainConfig, cache_dir: Path | None) -> DevScores:
    """Dev scores of `model` (its weights as they are now)."""
    return score_dev(model, found, config.precision, config.encode_batch_size, cache_dir)


def share_shipped_embeddings(
    model: LoadedModel, found: list[DevSet], config: TrainConfig, run_cache: Path, cache_dir: Path | None
) -> None:
    """Move the shipped weights' full-corpus embeddings, encoded for selection into the run's
    own cache (`run_cache`, removed at the end), into the shared cache: its evaluation finds
    them there when it encodes under the same key (weights hash, corpus content, precision,
    prompt, max length), instead of encoding the corpus again."""
    model.refresh_hash()  # the shipped weights, loaded after selection
    for entry in full_corpus_entries(model, found, config.precision, run_cache):
        if share_entry(entry, cache_dir):
            log.info("kept the shipped model's corpus embeddings for its evaluation (%s)", entry.name)
