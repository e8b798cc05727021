"""Exact inner-product search over embedding shards with a bounded running top-k.

Memory is O(SCORES_PER_STEP) for scores, O(BLOCK_BYTES) for the float32 copy of the corpus
rows being scored, plus O(queries x k) for the result, independent of corpus size: shards are
memory-mapped and scored a block at a time. Consecutive shards are gathered into blocks of up to
SCORES_PER_STEP / query batch rows (fewer for wide vectors, within BLOCK_BYTES): each block costs
a top-k and a merge into the running best, so scoring the cache's 2,048-row chunks one by one
spent several times the matrix products' time in top-k at k = 1000.

Equal scores at the k-th place (duplicate documents) keep the lowest corpus indices, and each
row is ordered by score, then index: the result does not depend on how the corpus is cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

SCORES_PER_STEP = 1 << 25  # score-matrix elements per step: 128 MiB of float32
BLOCK_BYTES = 1 << 27  # the float32 copy of a block's corpus rows: 128 MiB


def block_rows(queries: int, query_batch: int, dim: int) -> int:
    """Corpus rows scored per step: within SCORES_PER_STEP scores per query batch and
    BLOCK_BYTES of float32 rows (10 queries would otherwise gather 3M rows: 10 GB at 768 dims)."""
    by_scores = SCORES_PER_STEP // max(1, min(queries, query_batch))
    return max(1, min(by_scores, BLOCK_BYTES // (4 * max(1, dim))))


def exact_search(
    queries: np.ndarray,
    shards: Iterable[tuple[int, np.ndarray]],
    top_k: int,
    query_batch: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner products: (scores [Q, k'], corpus indices [Q, k']), best first.

    k' = min(top_k, corpus size). `shards` yields (offset, matrix) pairs, by increasing offset
    (ties then keep the lowest indices).
    """
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    best_scores = torch.full((len(q), 0), float("-inf"))
    best_index = torch.zeros((len(q), 0), dtype=torch.long)
    rows = block_rows(len(q), query_batch, q.shape[1])
    for offset, block in _blocks(shards, rows):
        for start in range(0, len(q), query_batch):
            stop = start + query_batch
            local_scores, local_index = _block_top_k(q[start:stop] @ block.T, top_k)
            # the running best holds lower indices than this block: a stable sort keeps ties in index order
            merged_scores = torch.cat([best_scores[start:stop], local_scores], dim=1)
            merged_index = torch.cat([best_index[start:stop], local_index + offset], dim=1)
            keep = min(top_k, merged_scores.shape[1])
            sorted_scores, order = torch.sort(merged_scores, dim=1, descending=True, stable=True)
            top_scores, order = sorted_scores[:, :keep], order[:, :keep]
            if start == 0:
                new_scores = torch.empty((len(q), keep))
                new_index = torch.empty((len(q), keep), dtype=torch.long)
            new_scores[start:stop] = top_scores
            new_index[start:stop] = torch.gather(merged_index, 1, order)
        best_scores, best_index = new_scores, new_index
    return best_scores.numpy(), best_index.numpy()


def _block_top_k(scores: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's top-k (scores, column indices) by score, then lowest column. torch.topk picks
    any of the columns tied at the k-th score: a row with more of them than it kept (rare:
    duplicate documents) takes the lowest ones instead."""
    k = min(top_k, scores.shape[1])
    top_scores, top_index = torch.topk(scores, k, dim=1)
    if k == 0:
        return top_scores, top_index
    kth = top_scores[:, -1:]
    left_out = (scores == kth).sum(dim=1) > (top_scores == kth).sum(dim=1)
    for row in left_out.nonzero().flatten().tolist():
        above = (scores[row] > kth[row]).nonzero().flatten()
        tied = (scores[row] == kth[row]).nonzero().flatten()[: k - len(above)]
        top_index[row] = torch.cat([above, tied])
    top_index = top_index.sort(dim=1).values
    top_scores, order = torch.sort(torch.gather(scores, 1, top_index), dim=1, descending=True, stable=True)
    return top_scores, torch.gather(top_index, 1, order)


def _blocks(shards: Iterable[tuple[int, np.ndarray]], rows: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(offset, float32 block) of at most `rows` rows: consecutive shards gathered, a larger
    one cut. A copy either way (memory maps are read-only)."""
    pending: list[np.ndarray] = []
    start = held = 0
    for offset, shard in shards:
        for cut in range(0, len(shard), rows):
            piece = shard[cut : cut + rows]
            if pending and (held + len(piece) > rows or offset + cut != start + held):
                yield start, _float32(pending)
                pending, held = [], 0
            if not pending:
                start = offset + cut
            pending.append(piece)
            held += len(piece)
    if pending:
        yield start, _float32(pending)


def _float32(pieces: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.concatenate(pieces, dtype=np.float32))
