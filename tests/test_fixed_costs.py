"""The fixed costs of an evaluation taken out (benchmarks/fixed_costs.py) without moving a number:
exact search gathers shards into blocks, metrics rank and score with less Python per document."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import pytrec_eval

from irtune.results.metrics import evaluate_run, rank_documents
from irtune.retrieval import exact
from irtune.retrieval.exact import exact_search


def brute_force(queries: np.ndarray, corpus: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ corpus.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
    return np.take_along_axis(scores, order, axis=1), order


@pytest.mark.parametrize("block_elements", [1, 7 * 5, 64 * 5, 1 << 25])
def test_blocks_of_any_size_find_the_same_top_k(monkeypatch, block_elements):
    """Shards of uneven sizes (one empty) gathered into blocks, or cut when a block holds
    fewer rows than a shard, give the top-k of the whole matrix."""
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((203, 16)).astype(np.float32)
    queries = rng.standard_normal((5, 16)).astype(np.float32)
    bounds = [0, 50, 50, 51, 130, 203]
    shards = [(a, corpus[a:b]) for a, b in itertools.pairwise(bounds)]
    monkeypatch.setattr(exact, "SCORES_PER_STEP", block_elements)
    scores, index = exact_search(queries, shards, top_k=40, query_batch=2)
    want_scores, want_index = brute_force(queries, corpus, 40)
    assert index.tolist() == want_index.tolist()
    np.testing.assert_allclose(scores, want_scores, rtol=1e-6)


def test_shards_that_do_not_follow_each_other_keep_their_offsets(monkeypatch):
    """A caller may pass part of a corpus: rows 0-9 and 100-109 are never one block."""
    rng = np.random.default_rng(1)
    corpus = rng.standard_normal((110, 8)).astype(np.float32)
    queries = rng.standard_normal((3, 8)).astype(np.float32)
    monkeypatch.setattr(exact, "SCORES_PER_STEP", 1 << 20)
    _, index = exact_search(queries, [(0, corpus[:10]), (100, corpus[100:])], top_k=20)
    kept = np.r_[0:10, 100:110]
    _, want = brute_force(queries, corpus[kept], 20)
    assert index.tolist() == kept[want].tolist()


def test_float16_shards_are_searched_in_float32():
    rng = np.random.default_rng(2)
    corpus = rng.standard_normal((64, 8)).astype(np.float16)
    queries = rng.standard_normal((3, 8)).astype(np.float32)
    scores, index = exact_search(queries, [(0, corpus[:30]), (30, corpus[30:])], top_k=10)
    want_scores, want_index = brute_force(queries, corpus.astype(np.float32), 10)
    assert index.tolist() == want_index.tolist()
    np.testing.assert_allclose(scores, want_scores, rtol=1e-6)


def test_a_top_1000_run_without_ties_scores_as_pytrec_eval():
    """Distinct scores take the vectorised ranking; graded relevant documents spread over
    ranks 1-1000 (and some not retrieved) exercise every cut-off up to 1000."""
    rng = np.random.default_rng(3)
    run, qrels = {}, {}
    for q in range(20):
        docs = [f"d{i}" for i in rng.choice(5000, 1000, replace=False)]
        run[f"q{q}"] = dict(zip(docs, rng.standard_normal(1000).tolist(), strict=True))
        judged = [*rng.choice(docs, 15, replace=False).tolist(), "d-missing", "d-zero"]
        qrels[f"q{q}"] = {d: int(g) for d, g in zip(judged, rng.integers(1, 4, 17), strict=True)}
        qrels[f"q{q}"]["d-zero"] = 0
    cuts = (1, 10, 100, 1000)
    ours = evaluate_run(qrels, run, [f"{m}@{k}" for m in ("ndcg", "map", "recall", "p") for k in cuts])
    measures = {f"ndcg_cut_{k}" for k in cuts} | {f"map_cut_{k}" for k in cuts}
    measures |= {f"recall_{k}" for k in cuts} | {f"P_{k}" for k in cuts}
    theirs = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    names = {"ndcg_cut": "ndcg", "map_cut": "map", "recall": "recall", "P": "p"}
    for qid, values in theirs.items():
        for measure, value in values.items():
            family, k = measure.rsplit("_", 1)
            assert ours[qid][f"{names[family]}@{k}"] == pytest.approx(value, abs=1e-9), (qid, measure)
    ranking = rank_documents(run["q0"])
    assert ranking == [d for _, d in sorted(((np.float32(s), d) for d, s in run["q0"].items()), reverse=True)]


@pytest.mark.parametrize("rows_per_block", [1, 5, 64, 1000])
def test_many_ties_inside_and_at_the_cut_off_order_as_a_stable_sort(monkeypatch, rows_per_block):
    """Scores from a few integer levels: every row has ties inside its top-k and at the cut-off,
    in every block and every merge; the result is a stable sort of the whole score matrix."""
    rng = np.random.default_rng(4)
    corpus = rng.integers(-2, 4, size=(300, 3)).astype(np.float32)
    queries = rng.integers(-2, 3, size=(7, 3)).astype(np.float32)
    monkeypatch.setattr(exact, "BLOCK_BYTES", 4 * 3 * rows_per_block, raising=False)
    shards = [(a, corpus[a:b]) for a, b in itertools.pairwise([0, 17, 150, 151, 300])]
    for top_k in (1, 9, 40, 299, 300, 400):
        scores, index = exact_search(queries, shards, top_k=top_k, query_batch=3)
        want_scores, want_index = brute_force(queries, corpus, top_k)
        assert index.tolist() == want_index.tolist(), top_k
        assert scores.tolist() == want_scores.tolist(), top_k


def test_a_run_from_arrays_keeps_each_float32_score_and_drops_the_padding():
    from irtune.retrieval.base import run_from_arrays

    scores = np.array([[0.7, 0.1 + 1e-9, -np.inf], [np.float32(1 / 3), -2.5, 0.0]], dtype=np.float32)
    indices = np.array([[2, 0, 0], [1, 2, 0]])
    run = run_from_arrays(["q1", "q2"], ["a", "b", "c"], scores, indices)
    assert run == {
        "q1": {"c": float(np.float32(0.7)), "a": float(np.float32(0.1))},
        "q2": {"b": float(np.float32(1 / 3)), "c": -2.5, "a": 0.0},
    }
    assert [list(hits) for hits in run.values()] == [["c", "a"], ["b", "c", "a"]]  # best first, as given
    assert all(type(score) is float for hits in run.values() for score in hits.values())


def test_negative_zero_ties_with_zero_and_negative_scores_order_below_it():
    """Scores of -0.0 and 0.0 are equal (ordered by index), and negative scores come last."""
    corpus = np.array([[0.0], [2.0], [-0.5], [0.0], [-3.0], [-0.0]], dtype=np.float32)
    queries = np.array([[-1.0], [1.0]], dtype=np.float32)  # -1 x 0.0 = -0.0
    scores, index = exact_search(queries, [(0, corpus[:3]), (3, corpus[3:])], top_k=6)
    assert index.tolist() == [[4, 2, 0, 3, 5, 1], [1, 0, 3, 5, 2, 4]]
    assert scores.tolist() == [[3.0, 0.5, -0.0, -0.0, 0.0, -2.0], [2.0, 0.0, 0.0, -0.0, -0.5, -3.0]]
    assert np.signbit(scores).tolist() == [[False] * 2 + [True] * 2 + [False, True], [False] * 3 + [True] * 3]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("block_elements", [1, 1 << 25])
def test_nan_or_infinite_embeddings_are_refused_wherever_they_sit(monkeypatch, bad, block_elements):
    """torch.topk ranks NaN first: a NaN (or inf) embedding anywhere in any block is caught,
    instead of a ranking that would depend on how the corpus is cut."""
    monkeypatch.setattr(exact, "SCORES_PER_STEP", block_elements)
    corpus = np.array([[1.0], [2.0], [3.0], [0.5]], dtype=np.float32)
    corpus[2, 0] = bad
    with pytest.raises(exact.NonFiniteScores, match="the embeddings hold NaN or inf"):
        exact_search(np.array([[1.0], [-1.0]], dtype=np.float32), [(0, corpus)], top_k=2)


def test_no_queries_search_nothing():
    scores, index = exact_search(np.zeros((0, 4), np.float32), [(0, np.ones((5, 4), np.float32))], top_k=3)
    assert scores.shape == index.shape == (0, 0)
