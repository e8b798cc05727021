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

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sentence_transformers import quantize_embeddings

from irtune.retrieval.exact import exact_search


@dataclass(frozen=True)
class Compression:
    dims: int | None = None  # None: all of the model's dimensions
    quantize: str = "none"
    rescore: int = 1  # ubinary: rescore the top rescore x k candidates with the float query (1: off)
    normalize: bool = True  # the model compares by cosine: truncated vectors are renormalised

    @property
    def active(self) -> bool:
        return self.dims is not None or self.quantize != "none"

    def bytes_per_document(self, full_dims: int, float_bytes: int = 4) -> float:
        """What one document vector takes: float_bytes per dimension for floats (2 from a
        float16 cache), 1 for int8, 1/8 for binary (padded to whole bytes)."""
        dims = self.dims or full_dims
        return {"none": float(float_bytes * dims), "int8": float(dims), "ubinary": float((dims + 7) // 8)}[
            self.quantize
        ]


def _quantized(
    vectors: np.ndarray, precision: Literal["int8", "ubinary"], ranges: np.ndarray | None = None
) -> np.ndarray:
    return np.asarray(quantize_embeddings(vectors, precision=precision, ranges=ranges))


def truncated(vectors: np.ndarray, dims: int | None, normalize: bool = True) -> np.ndarray:
    """The first `dims` dimensions (float32), renormalised to unit length for a cosine model."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if dims is None:
        return vectors
    part = vectors[:, :dims]
    if not normalize:
        return part
    norms = np.linalg.norm(part, axis=1, keepdims=True)
    return part / np.where(norms == 0, 1.0, norms)


@dataclass
class CompressedCorpus:
    """What the search reads: the cache's float shards (truncated as they are read), or the
    int8 / packed-bit codes of the whole corpus (the compressed copy, built shard by shard)."""

    compression: Compression
    floats: list[np.ndarray] | None = None  # quantize none: the (memory-mapped) cache shards
    codes: np.ndarray | None = None  # int8 (N, dims) or ubinary (N, ceil(dims / 8))
    ranges: np.ndarray | None = None  # int8: (2, dims) per-dimension min and max
    shard_rows: int = 2048

    @classmethod
    def build(cls, shards: Sequence[np.ndarray], compression: Compression) -> CompressedCorpus:
        def part(shard: np.ndarray) -> np.ndarray:
            return truncated(shard, compression.dims, compression.normalize)

        rows = len(shards[0]) if shards else 1
        if compression.quantize == "none":
            return cls(compression, floats=list(shards), shard_rows=rows)
        if compression.quantize == "ubinary":
            return cls(compression, codes=np.concatenate([_quantized(part(s), "ubinary") for s in shards]))
        # first pass: the exact per-dimension ranges of the whole corpus, a shard at a time
        lows, highs = zip(*((f.min(axis=0), f.max(axis=0)) for f in map(part, shards)), strict=True)
        ranges = np.vstack(
            (np.min(lows, axis=0), np.max(highs, axis=0))
        )  # what quantize_embeddings calibrates on the whole corpus
        codes = np.concatenate([_quantized(part(s), "int8", ranges) for s in shards])
        return cls(compression, codes=codes, ranges=ranges, shard_rows=rows)

    def search(self, queries: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, corpus positions) of each query's top k, best first. Every kind is an inner
        product over decoded shards, so the same bounded exact search runs them all."""
        c = self.compression
        queries = truncated(queries, c.dims, c.normalize)
        if self.floats is not None:
            return exact_search(queries, self._float_shards(), top_k)
        assert self.codes is not None
        total = len(self.codes)
        rescoring = c.quantize == "ubinary" and c.rescore > 1
        k = min(top_k * (c.rescore if rescoring else 1), total)
        if c.quantize == "int8":
            assert self.ranges is not None
            steps = (self.ranges[1] - self.ranges[0]) / 255
            steps = np.where(steps == 0, 1, steps).astype(np.float32)
            # query · dequantised = (query * step) · code + query · (128 * step + start)
            scores, indices = exact_search(
                queries * steps, self._code_shards(lambda x: x.astype(np.float32)), k
            )
            return scores + (queries @ (128 * steps + self.ranges[0]))[:, None], indices
        dims = queries.shape[1]
        # on ±1 vectors the inner product is dims - 2 x Hamming distance: BLAS does the popcount
        signs = _signs(_quantized(queries, "ubinary"), dims)
        scores, indices = exact_search(signs, self._code_shards(lambda x: _signs(x, dims)), k)
        scores = (scores - dims) / 2  # -Hamming distance
        if rescoring:
            scores, indices = self._rescore(queries, indices, min(top_k, total))
        return scores, indices

    def _float_shards(self) -> Iterator[tuple[int, np.ndarray]]:
        offset = 0
        for shard in self.floats or []:
            yield offset, truncated(shard, self.compression.dims, self.compression.normalize)
            offset += len(shard)

    def _code_shards(self, decode: Callable[[np.ndarray], np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
        assert self.codes is not None
        for offset in range(0, len(self.codes), self.shard_rows):
            yield offset, decode(self.codes[offset : offset + self.shard_rows])

    def _rescore(self, queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The float query against each candidate's bits (0/1), a query at a time."""
        assert self.codes is not None
        dims = queries.shape[1]
        scores = np.empty(candidates.shape, dtype=np.float32)
        for row, (query, ids) in enumerate(zip(queries, candidates, strict=True)):
            bits = np.unpackbits(self.codes[ids], axis=-1)[:, :dims].astype(np.float32)
            scores[row] = bits @ query
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(candidates, order, axis=1)


def _signs(packed: np.ndarray, dims: int) -> np.ndarray:
    """Packed bits as ±1 float32 vectors."""
    return np.unpackbits(packed, axis=-1)[:, :dims].astype(np.float32) * 2 - 1
