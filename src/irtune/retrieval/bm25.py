"""BM25 baseline via bm25s (Lucene variant, English Snowball stemmer and stopwords).

This is the configuration of MTEB's bm25s baseline: Lucene-style IDF
log(1 + (N - df + 0.5) / (df + 0.5)), k1 = 1.5, b = 0.75, lower-cased `\\w\\w+` tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np
import Stemmer

BM25_DESCRIPTION = "bm25s {version} method={method} k1={k1} b={b} stemmer=english stopwords=en"


def describe(k1: float = 1.5, b: float = 0.75, method: str = "lucene") -> str:
    return BM25_DESCRIPTION.format(version=bm25s.__version__, method=method, k1=k1, b=b)


def bm25_search(
    corpus_texts: Sequence[str],
    query_texts: Sequence[str],
    top_k: int,
    k1: float = 1.5,
    b: float = 0.75,
    method: str = "lucene",
) -> tuple[np.ndarray, np.ndarray]:
    """(scores [Q, k'], corpus indices [Q, k']) best first, k' = min(top_k, corpus size)."""
    stemmer = Stemmer.Stemmer("english")
    corpus_tokens = bm25s.tokenize(list(corpus_texts), stopwords="en", stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25(k1=k1, b=b, method=method)
    retriever.index(corpus_tokens, show_progress=False)
    query_tokens = bm25s.tokenize(list(query_texts), stopwords="en", stemmer=stemmer, show_progress=False)
    k = min(top_k, len(corpus_texts))
    indices, scores = retriever.retrieve(query_tokens, k=k, show_progress=False)
    return np.asarray(scores, dtype=np.float32), np.asarray(indices, dtype=np.int64)
