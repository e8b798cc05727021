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

from irtune.errors import IrtuneError

MAX_DOCUMENTS = 1 << 32  # ties are ordered by index through 32 bits of an int64 key
SCORES_PER_STEP = 1 << 25  # score-matrix elements per step: 128 MiB of float32
BLOCK_BYTES = 1 << 27  # the float32 copy of a block's corpus rows: 128 MiB


class NonFiniteScores(IrtuneError):
    """Embeddings that hold NaN or inf: no ranking of them means anything."""


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
    if len(q) == 0:
        return best_scores.numpy(), best_index.numpy()
    rows = block_rows(len(q), query_batch, q.shape[1])
    for offset, block in _blocks(shards, rows):
        if offset + len(block) > MAX_DOCUMENTS:
            raise ValueError(
                f"exact search orders ties by index below 2**32: {offset + len(block)} documents"
            )
        for start in range(0, len(q), query_batch):
            stop = start + query_batch
            local_scores, local_index = _ordered_top_k(q[start:stop] @ block.T, top_k)
            top_scores, top_index = _merge(
                best_scores[start:stop], best_index[start:stop], local_scores, local_index + offset, top_k
            )
            if start == 0:
                new_scores = torch.empty((len(q), top_scores.shape[1]))
                new_index = torch.empty((len(q), top_scores.shape[1]), dtype=torch.long)
            new_scores[start:stop] = top_scores
            new_index[start:stop] = top_index
        best_scores, best_index = new_scores, new_index
    return best_scores.numpy(), best_index.numpy()


def _merge(
    best_scores: torch.Tensor,
    best_index: torch.Tensor,
    scores: torch.Tensor,
    index: torch.Tensor,
    top_k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The running best merged with a later block's top-k."""
    if best_scores.shape[1] == 0:
        return scores, index
    return _by_score_then_index(
        torch.cat([best_scores, scores], dim=1), torch.cat([best_index, index], dim=1), top_k
    )


def _ordered_top_k(scores: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's top-k (scores, column indices) by score, then lowest column.

    torch.topk keeps any of the columns tied at the k-th score; asking it for k + 1 tells the
    rows where the score after the k-th equals it (rare: duplicate documents), and only those
    look at their whole row again, to keep the lowest columns. Checking every row against its
    k-th score instead cost a pass over the whole score matrix: most of the search's time at
    top-1000 (benchmarks/fixed_costs.py)."""
    k = min(top_k, scores.shape[1])
    if k == 0:
        return scores[:, :0], torch.zeros((len(scores), 0), dtype=torch.long)
    top_scores, top_index = torch.topk(scores, min(k + 1, scores.shape[1]), dim=1)
    if not torch.isfinite(top_scores).all():  # torch.topk ranks NaN first: any in the block shows here
        raise NonFiniteScores(
            "a search score is NaN or infinite: the embeddings hold NaN or inf (an fp16 encoding can "
            "overflow; encode in fp32 or bf16)"
        )
    if top_scores.shape[1] > k:
        for row in (top_scores[:, k] == top_scores[:, k - 1]).nonzero().flatten().tolist():
            columns = _lowest_columns(scores[row], top_scores[row, k - 1], k)
            top_index[row, :k], top_scores[row, :k] = columns, scores[row, columns]
    return _by_score_then_index(top_scores[:, :k], top_index[:, :k], k)


def _lowest_columns(row: torch.Tensor, kth: torch.Tensor, k: int) -> torch.Tensor:
    """The k columns of the best scores, the lowest of those tied at the k-th score."""
    above = (row > kth).nonzero().flatten()
    return torch.cat([above, (row == kth).nonzero().flatten()[: k - len(above)]])


def _by_score_then_index(
    scores: torch.Tensor, index: torch.Tensor, top_k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's top-k by score, then lowest index: one torch.topk over int64 keys holding
    the float32 score's bits (made to order as the floats do) above the complement of the index
    (below 2**32), so no two keys tie. torch.topk orders equal floats arbitrarily, and a
    top-1000 often holds equal float32 scores (every row did in benchmarks/fixed_costs.py)."""
    bits = (scores + 0.0).view(torch.int32)  # + 0.0 makes -0.0 into 0.0, which it equals
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # negative floats order backwards as integers
    keys = (ordered.to(torch.int64) << 32) | (0xFFFFFFFF - index)
    order = torch.topk(keys, min(top_k, keys.shape[1]), dim=1).indices
    return torch.gather(scores, 1, order), torch.gather(index, 1, order)


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
