"""Approximate search with FAISS (IVF, HNSW) or FAISS's exact flat index.

The index is filled shard by shard from the memory-mapped embeddings, so only the index
itself is held in memory. `ann_recall` measures how much of the exact top-k an
approximate search recovers, so approximate numbers are never mistaken for exact ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import faiss
import numpy as np

from irtune.retrieval.settings import DEFAULT_INDEX_PARAMS, INDEX_TYPES


def build_index(
    shards: Iterable[tuple[int, np.ndarray]], dim: int, kind: str, params: dict[str, Any] | None = None
) -> faiss.Index:
    p = {**DEFAULT_INDEX_PARAMS[kind], **(params or {})}
    index: faiss.Index
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, int(p["m"]), faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = int(p["ef_construction"])
        hnsw.hnsw.efSearch = int(p["ef_search"])
        index = hnsw
    elif kind == "ivf":
        shards = list(shards)
        total = sum(len(s) for _, s in shards)
        nlist = max(1, min(int(p["nlist"]), total // 39))  # FAISS wants >= 39 points per list
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample_ids = np.sort(rng.choice(total, size=min(total, int(p["train_size"])), replace=False))
        ivf.train(_gather(shards, sample_ids))
        ivf.nprobe = min(int(p["nprobe"]), nlist)
        index = ivf
    else:
        raise ValueError(f"unknown index type {kind!r} (choose from {', '.join(INDEX_TYPES)})")
    for _, shard in shards:
        index.add(np.ascontiguousarray(shard, dtype=np.float32))
    return index


def _gather(shards: list[tuple[int, np.ndarray]], ids: np.ndarray) -> np.ndarray:
    parts = []
    for offset, shard in shards:
        local = ids[(ids >= offset) & (ids < offset + len(shard))] - offset
        parts.append(np.asarray(shard[local], dtype=np.float32))
    return np.ascontiguousarray(np.concatenate(parts))


def faiss_search(index: faiss.Index, queries: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(top_k, index.ntotal)
    scores, indices = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    scores = np.where(indices < 0, -np.inf, scores)
    return scores, indices.clip(min=0)


def ann_recall(approx: np.ndarray, exact: np.ndarray, k: int) -> float:
    """Mean |approx top-k ∩ exact top-k| / k over queries."""
    k = min(k, exact.shape[1])
    hits = [len(set(a[:k]) & set(e[:k])) / k for a, e in zip(approx, exact, strict=True)]
    return float(np.mean(hits)) if hits else 1.0
