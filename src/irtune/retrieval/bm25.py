"""BM25 baseline via bm25s (Lucene variant, English Snowball stemmer and stopwords).

This is the configuration of MTEB's bm25s baseline: Lucene-style IDF
log(1 + (N - df + 0.5) / (df + 0.5)), k1 = 1.5, b = 0.75, lower-cased `\\w\\w+` tokens.
bm25s keeps its index in memory; the corpus texts are held only while indexing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import bm25s
import numpy as np
import Stemmer

from irtune.results.schema import RetrieverInfo
from irtune.retrieval.base import Corpus, LabelledQueries, Retrieval, run_from_arrays

if TYPE_CHECKING:
    from irtune.models.loading import LoadedModel
    from irtune.retrieval.settings import RetrievalSettings


@dataclass(frozen=True)
class BM25Retriever:
    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"
    name: str = "bm25"
    uses_dev: bool = False

    def describe(self) -> RetrieverInfo:
        return RetrieverInfo(
            name=self.name,
            description=(
                f"bm25s {bm25s.__version__} method={self.method} k1={self.k1} b={self.b} "
                "stemmer=english stopwords=en"
            ),
            encodes=False,
            params={"k1": self.k1, "b": self.b, "method": self.method},
        )

    def index(self, corpus: Corpus, dev: LabelledQueries | None = None) -> BM25Index:
        started = time.perf_counter()
        stemmer = Stemmer.Stemmer("english")
        tokens = bm25s.tokenize(list(corpus.texts()), stopwords="en", stemmer=stemmer, show_progress=False)
        engine = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        engine.index(tokens, show_progress=False)
        return BM25Index(corpus, engine, stemmer, time.perf_counter() - started)


@dataclass
class BM25Index:
    corpus: Corpus
    engine: Any
    stemmer: Any
    index_s: float

    def search(self, queries: Mapping[str, str], top_k: int) -> Retrieval:
        started = time.perf_counter()
        qids = list(queries)
        tokens = bm25s.tokenize(
            [queries[q] for q in qids], stopwords="en", stemmer=self.stemmer, show_progress=False
        )
        k = min(top_k, len(self.corpus))
        indices, scores = self.engine.retrieve(tokens, k=k, show_progress=False)
        run = run_from_arrays(qids, self.corpus.doc_ids, np.asarray(scores, np.float32), indices)
        timings = {"index_s": self.index_s, "search_s": time.perf_counter() - started}
        return Retrieval(run, timings)


def bm25_retriever(settings: RetrievalSettings, model: LoadedModel | None) -> BM25Retriever:
    return BM25Retriever()
