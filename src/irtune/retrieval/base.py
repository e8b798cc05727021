"""The retriever protocol: index a corpus, search queries into a run, describe itself.

Evaluation, dev selection and hard-negative mining all search through it, so a new way
of retrieving (a fusion, a reranker, a quantized index) is one module plus its line in
`irtune.retrieval.registry`, and what it did (timings, index quality, tuned parameters)
comes back in its `Retrieval`, never written into a caller's dicts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from irtune.core.files import sha256_text

if TYPE_CHECKING:
    from irtune.data.beir import BeirDataset
    from irtune.results.schema import RetrieverInfo

DOC_TEXT_RECIPE = "title+' '+text, stripped"

Run = dict[str, dict[str, float]]  # query id -> {document id: score}, best first


def corpus_content_key(dataset: BeirDataset) -> str:
    """Identifies a dataset's document texts (embedding caches are keyed by it)."""
    return sha256_text(dataset.corpus_hash(), DOC_TEXT_RECIPE)


@dataclass(frozen=True)
class Corpus:
    """Documents to search: ids in order, their texts streamed in the same order (only a
    chunk is held at a time), and a key identifying those texts."""

    name: str
    doc_ids: Sequence[str]
    content_key: str
    stream: Callable[[], Iterator[str]] = field(repr=False)
    queries: Callable[[], Mapping[str, str]] = field(default=dict, repr=False)  # the dataset's, by id

    def texts(self) -> Iterator[str]:
        return self.stream()

    def __len__(self) -> int:
        return len(self.doc_ids)

    @classmethod
    def of(cls, dataset: BeirDataset) -> Corpus:
        key = corpus_content_key(dataset)
        return cls(dataset.name, dataset.doc_ids, key, dataset.iter_texts, lambda: dataset.queries)

    @classmethod
    def subset(cls, dataset: BeirDataset, doc_ids: Iterable[str]) -> Corpus:
        """The given documents, in corpus order (a model-free dev selection pool, say)."""
        members = set(doc_ids)
        ordered = [d for d in dataset.doc_ids if d in members]

        def stream() -> Iterator[str]:
            texts = zip(dataset.doc_ids, dataset.iter_texts(), strict=True)
            return (text for doc_id, text in texts if doc_id in members)

        key = sha256_text(corpus_content_key(dataset), *ordered)
        return cls(dataset.name, ordered, key, stream, lambda: dataset.queries)


@dataclass(frozen=True)
class LabelledQueries:
    """Judged queries a retriever may fit its own parameters on (a fusion weight, say).
    They are never evaluated queries: the caller removes those and says which were used."""

    queries: Mapping[str, str]
    qrels: Mapping[str, Mapping[str, int]]
    source: str

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "queries": len(self.queries),
            "ids_sha256": sha256_text(*sorted(self.queries)),
        }


@dataclass
class Retrieval:
    """A search's run (best first per query) and what the retriever reports about it."""

    run: Run
    timings_s: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


class SearchIndex(Protocol):
    def search(self, queries: Mapping[str, str], top_k: int) -> Retrieval:
        """The top_k documents per query, best first (ties broken by the retriever)."""
        ...


class Retriever(Protocol):
    @property
    def name(self) -> str:
        """The registered name (dense, bm25, ...)."""
        ...

    @property
    def uses_dev(self) -> bool:
        """Whether it fits its own parameters on the labelled dev queries given to `index`."""
        ...

    def describe(self) -> RetrieverInfo: ...

    def index(self, corpus: Corpus, dev: LabelledQueries | None = None) -> SearchIndex: ...


def run_from_arrays(qids: Sequence[str], doc_ids: Sequence[str], scores: Any, indices: Any) -> Run:
    """A run from (scores [Q, k], corpus indices [Q, k]) numpy arrays, best first; padded
    entries (score -inf: fewer documents than k) are dropped. The arrays become Python lists in
    one call each (element by element took a quarter longer: 0.1 s per million hits)."""
    import numpy as np

    finite = np.isfinite(scores).all(axis=1).tolist()
    run: Run = {}
    for qid, row, values, whole in zip(qids, indices.tolist(), scores.tolist(), finite, strict=True):
        hits = zip(map(doc_ids.__getitem__, row), values, strict=True)
        run[qid] = dict(hits) if whole else {doc: value for doc, value in hits if math.isfinite(value)}
    return run
