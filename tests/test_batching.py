"""Conflict-free batches: no row's document is judged relevant to another row's query."""

from __future__ import annotations

import random

from irtune.data.beir import load_qrels
from irtune.training.batching import InOrderBatchSampler, Row, conflict_free_order
from irtune.training.pairs import epoch_pairs

from conftest import shared_dataset


def conflicts(batch: list[Row], relevant: dict[str, set[str]]) -> int:
    return sum(
        1
        for a in batch
        for b in batch
        if a is not b and (relevant[a.query_id] & set(b.doc_ids) or set(a.texts) & set(b.texts))
    )


def test_packed_batches_hold_no_judged_false_negative():
    """On NFCorpus' real train qrels, where random batches of 32 hold ~16 false negatives."""
    judged = load_qrels(shared_dataset("nfcorpus") / "qrels" / "train.tsv")
    relevant = {q: {d for d, g in docs.items() if g > 0} for q, docs in judged.items()}
    pairs = epoch_pairs({q: sorted(d) for q, d in relevant.items()}, 1, 0, 1, 1200)
    rows = [Row(p.query_id, (p.doc_id,), (f"query {p.query_id}", f"doc {p.doc_id}")) for p in pairs]
    size = 32
    shuffled = random.Random(0).sample(rows, len(rows))
    naive = [conflicts(shuffled[i : i + size], relevant) for i in range(0, len(rows), size)]
    assert sum(naive) / len(naive) > 5, "NFCorpus queries share many relevant documents"

    order, left_out = conflict_free_order(rows, relevant, size, random.Random(1))
    assert len(set(order)) == len(order) == len(rows) - left_out
    assert left_out < len(rows) * 0.05
    blocks = [conflicts([rows[i] for i in order[s : s + size]], relevant) for s in range(0, len(order), size)]
    assert not any(blocks) and all(
        len(order[s : s + size]) == size for s in range(0, len(order) - size, size)
    )
    assert conflict_free_order(rows, relevant, size, random.Random(1)) == (order, left_out)


def test_two_positives_of_one_query_never_share_a_batch():
    relevant = {"q1": {"a", "b"}, "q2": {"c"}}
    rows = [
        Row("q1", ("a",), ("q one", "A")),
        Row("q1", ("b",), ("q one", "B")),
        Row("q2", ("c",), ("q two", "C")),
    ]
    order, left_out = conflict_free_order(rows, relevant, 2, random.Random(0))
    assert left_out == 0 and {0, 1} - set(order[:2])


def test_in_order_sampler_yields_consecutive_blocks():
    data = list(range(10))
    blocks = list(InOrderBatchSampler(data, batch_size=4, drop_last=False))
    assert blocks == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    sampler = InOrderBatchSampler(data, batch_size=4, drop_last=True)
    assert list(sampler) == [[0, 1, 2, 3], [4, 5, 6, 7]] and len(sampler) == 2
