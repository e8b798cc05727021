"""Exact inner-product search over embedding shards with a bounded running top-k.

Memory is O(query_batch x chunk) for scores plus O(queries x k) for the result,
independent of corpus size: shards are memory-mapped and scored one at a time.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch


def exact_search(
    queries: np.ndarray,
    shards: Iterable[tuple[int, np.ndarray]],
    top_k: int,
    query_batch: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner products: (scores [Q, k'], corpus indices [Q, k']), best first.

    k' = min(top_k, corpus size). `shards` yields (offset, matrix) pairs.
    """
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    best_scores = torch.full((len(q), 0), float("-inf"))
    best_index = torch.zeros((len(q), 0), dtype=torch.long)
    for offset, shard in shards:
        block = torch.tensor(np.asarray(shard), dtype=torch.float32)  # a copy: mmaps are read-only
        for start in range(0, len(q), query_batch):
            stop = start + query_batch
            scores = q[start:stop] @ block.T
            k = min(top_k, scores.shape[1])
            local_scores, local_index = torch.topk(scores, k, dim=1)
            merged_scores = torch.cat([best_scores[start:stop], local_scores], dim=1)
            merged_index = torch.cat([best_index[start:stop], local_index + offset], dim=1)
            keep = min(top_k, merged_scores.shape[1])
            top_scores, order = torch.topk(merged_scores, keep, dim=1)
            if start == 0:
                new_scores = torch.empty((len(q), keep))
                new_index = torch.empty((len(q), keep), dtype=torch.long)
            new_scores[start:stop] = top_scores
            new_index[start:stop] = torch.gather(merged_index, 1, order)
        best_scores, best_index = new_scores, new_index
    return best_scores.numpy(), best_index.numpy()
