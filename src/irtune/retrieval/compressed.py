"""Cheaper document vectors, made from the float embedding cache without encoding again.

- `dims`: the first `dims` dimensions, renormalised (what a Matryoshka-trained model is
  built for; any model can be measured this way).
- `int8`: sentence-transformers' scalar quantisation, one byte per dimension, with
  per-dimension ranges over the whole corpus (streamed, so exactly the min and max that
  `quantize_embeddings` would calibrate on). Scored asymmetrically: the float query against
  the dequantised documents (what FAISS's SQ8 does); the constant per-query term is dropped,
  so scores rank exactly as `query · dequantised(document)`.
- `ubinary`: one bit per dimension (`quantize_embeddings(..., "ubinary")`), searched by
  Hamming distance with the query's bits; with `rescore` > 1 the top `rescore * k` candidates
  are rescored by the float query against their unpacked bits (sentence-transformers'
  rescoring).

Search is exhaustive, a shard of codes at a time, so a cheaper setting is compared with full
precision on quality alone; `bytes_per_document` is what the codes take in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
from sentence_transformers import quantize_embeddings

from irtune.retrieval.exact import exact_search


@dataclass(frozen=True)
class Compression:
    dims: int | None = None  # None: all of the model's dimensions
    quantize: str = "none"
    rescore: int = 1  # ubinary: rescore the top rescore x k candidates with the float query (1: off)

    @property
    def active(self) -> bool:
        return self.dims is not None or self.quantize != "none"

    def bytes_per_document(self, full_dims: int) -> float:
        dims = self.dims or full_dims
        return {"none": 4.0 * dims, "int8": float(dims), "ubinary": float((dims + 7) // 8)}[self.quantize]


def _quantized(
    vectors: np.ndarray, precision: Literal["int8", "ubinary"], ranges: np.ndarray | None = None
) -> np.ndarray:
    return np.asarray(quantize_embeddings(vectors, precision=precision, ranges=ranges))


def truncated(vectors: np.ndarray, dims: int | None) -> np.ndarray:
    """The first `dims` dimensions, renormalised to unit length (float32)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if dims is None:
        return vectors
    part = vectors[:, :dims]
    norms = np.linalg.norm(part, axis=1, keepdims=True)
    return part / np.where(norms == 0, 1.0, norms)


@dataclass
class CompressedCorpus:
    """The corpus' codes (int8 or packed bits, or truncated floats) and what scores them."""

    compression: Compression
    codes: list[np.ndarray]  # one array per cache shard, in corpus order
    ranges: np.ndarray | None = None  # int8: (2, dims) per-dimension min and max

    @classmethod
    def build(cls, shards: Iterable[np.ndarray], compression: Compression) -> CompressedCorpus:
        floats = [truncated(shard, compression.dims) for shard in shards]
        if compression.quantize == "none":
            return cls(compression, floats)
        if compression.quantize == "ubinary":
            return cls(compression, [_quantized(f, "ubinary") for f in floats])
        ranges = np.vstack(
            (np.min([f.min(axis=0) for f in floats], axis=0), np.max([f.max(axis=0) for f in floats], axis=0))
        )
        return cls(compression, [_quantized(f, "int8", ranges) for f in floats], ranges)

    def search(self, queries: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, corpus positions) of each query's top k, best first. Every kind is an inner
        product over transformed shards, so the same bounded exact search runs them all."""
        queries = truncated(queries, self.compression.dims)
        total = sum(len(c) for c in self.codes)
        rescoring = self.compression.quantize == "ubinary" and self.compression.rescore > 1
        k = min(top_k * (self.compression.rescore if rescoring else 1), total)
        kind = self.compression.quantize
        if kind == "none":
            return exact_search(queries, self._shards(lambda codes: codes), k)
        if kind == "int8":
            # query · (step * (code + 128) + start) ranks as (query * step) · code
            steps = (self.ranges[1] - self.ranges[0]) / 255 if self.ranges is not None else 1.0
            steps = np.where(steps == 0, 1, steps).astype(np.float32)
            return exact_search(queries * steps, self._shards(lambda codes: codes.astype(np.float32)), k)
        dims = queries.shape[1]
        # on ±1 vectors the inner product is dims - 2 x Hamming distance: BLAS does the popcount
        signs = _signs(_quantized(queries, "ubinary"), dims)
        scores, indices = exact_search(signs, self._shards(lambda codes: _signs(codes, dims)), k)
        scores = (scores - dims) / 2  # -Hamming distance
        if rescoring:
            scores, indices = self._rescore(queries, indices, min(top_k, total))
        return scores, indices

    def _shards(self, decode: Callable[[np.ndarray], np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
        offset = 0
        for codes in self.codes:
            yield offset, decode(codes)
            offset += len(codes)

    def _rescore(self, queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The float query against each candidate's bits (0/1), a query at a time."""
        packed = self.packed
        dims = queries.shape[1]
        scores = np.empty(candidates.shape, dtype=np.float32)
        for row, (query, ids) in enumerate(zip(queries, candidates, strict=True)):
            bits = np.unpackbits(packed[ids], axis=-1)[:, :dims].astype(np.float32)
            scores[row] = bits @ query
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(candidates, order, axis=1)

    @cached_property
    def packed(self) -> np.ndarray:
        return np.concatenate(self.codes)


def _signs(packed: np.ndarray, dims: int) -> np.ndarray:
    """Packed bits as ±1 float32 vectors."""
    return np.unpackbits(packed, axis=-1)[:, :dims].astype(np.float32) * 2 - 1
