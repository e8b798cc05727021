"""irtune's metrics equal pytrec_eval's (trec_eval) to 1e-9 on generated runs and qrels."""

from __future__ import annotations

import numpy as np
import pytest
import pytrec_eval
from hypothesis import given, settings
from hypothesis import strategies as st

from irtune.results.metrics import evaluate_run, mean_metrics, parse_metric, rank_documents

DOCS = [f"d{i}" for i in range(12)]
KS = (1, 3, 5, 10)
ORACLE = (
    {f"ndcg_cut_{k}" for k in KS}
    | {f"map_cut_{k}" for k in KS}
    | {f"recall_{k}" for k in KS}
    | {f"P_{k}" for k in KS}
)
OURS = {"ndcg_cut": "ndcg", "map_cut": "map", "recall": "recall", "P": "p"}

# scores from a small set so that ties are frequent, some of them only in float32 (trec_eval
# reads a run's scores as float32: 0.5 and 0.5 + 1e-10 tie there, and ties go by document id)
scores = st.sampled_from([0.0, 0.25, 0.5, 0.5, 0.5 + 1e-10, 1.0, 1.0, 1.0 - 1e-12, 2.0, -1.0, 1 / 3])
runs = st.dictionaries(st.sampled_from(DOCS), scores, min_size=0, max_size=10)
judgements = st.dictionaries(st.sampled_from(DOCS), st.integers(0, 3), min_size=1, max_size=8)


@st.composite
def cases(draw):
    qids = [f"q{i}" for i in range(draw(st.integers(1, 4)))]
    qrels = {q: draw(judgements) for q in qids}
    run = {q: draw(runs) for q in qids}
    return qrels, run


def oracle(qrels, run):
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, ORACLE | {"recip_rank"})
    return evaluator.evaluate(run)


@settings(max_examples=300, deadline=None)
@given(cases())
def test_metrics_match_pytrec_eval(case):
    qrels, run = case
    ours = evaluate_run(
        qrels, run, [f"{m}@{k}" for m in OURS.values() for k in KS], ignore_identical_ids=False
    )
    expected = oracle(qrels, {q: r for q, r in run.items() if r})
    for qid, values in expected.items():
        if not any(g > 0 for g in qrels[qid].values()):
            continue  # trec_eval scores 0 there; irtune skips such queries
        for name, value in values.items():
            if name == "recip_rank":
                continue
            family, k = name.rsplit("_", 1)
            assert ours[qid][f"{OURS[family]}@{k}"] == pytest.approx(value, abs=1e-9), (qid, name)
    for qid in qrels:
        if qid not in ours:
            assert not any(g > 0 for g in qrels[qid].values())


@settings(max_examples=200, deadline=None)
@given(cases(), st.sampled_from(KS))
def test_mrr_at_k_matches_trec_recip_rank_of_the_truncated_run(case, k):
    qrels, run = case
    ours = evaluate_run(qrels, run, [f"mrr@{k}"], ignore_identical_ids=False)
    truncated = {q: {d: r[d] for d in rank_documents(r)[:k]} for q, r in run.items() if r}
    expected = oracle(qrels, truncated)
    for qid, values in expected.items():
        if qid in ours:
            assert ours[qid][f"mrr@{k}"] == pytest.approx(values["recip_rank"], abs=1e-9)


def test_ties_are_broken_by_document_id_descending():
    assert rank_documents({"a": 1.0, "c": 1.0, "b": 2.0, "d": 0.5}) == ["b", "c", "a", "d"]
    qrels = {"q": {"a": 1}}
    # "a" and "z" tie; trec_eval puts "z" first, so the relevant "a" is at rank 2
    result = evaluate_run(qrels, {"q": {"a": 1.0, "z": 1.0}}, ["mrr@10", "p@1"])
    assert result["q"] == {"mrr@10": 0.5, "p@1": 0.0}


def test_graded_ndcg_and_map_over_all_relevant():
    qrels = {"q": {"a": 2, "b": 1, "c": 0, "x": 1}}  # x is relevant but never retrieved
    run = {"q": {"b": 3.0, "a": 2.0, "c": 1.0}}
    got = evaluate_run(qrels, run, ["ndcg@3", "map@3", "recall@3"])["q"]
    import math

    dcg = 1 / math.log2(2) + 2 / math.log2(3)
    ideal = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert got["ndcg@3"] == pytest.approx(dcg / ideal)
    assert got["map@3"] == pytest.approx((1 / 1 + 2 / 2) / 3)  # divided by R = 3, not min(k, R)
    assert got["recall@3"] == pytest.approx(2 / 3)


def test_identical_ids_are_dropped_by_default_and_kept_on_request():
    qrels = {"q1": {"d": 1}}
    run = {"q1": {"q1": 9.0, "d": 1.0}}
    assert evaluate_run(qrels, run, ["mrr@10"])["q1"]["mrr@10"] == 1.0
    assert evaluate_run(qrels, run, ["mrr@10"], ignore_identical_ids=False)["q1"]["mrr@10"] == 0.5


def test_queries_without_relevant_documents_are_skipped_and_empty_runs_score_zero():
    qrels = {"q1": {"a": 0}, "q2": {"a": 1}}
    per_query = evaluate_run(qrels, {}, ["ndcg@10", "recall@100"])
    assert per_query == {"q2": {"ndcg@10": 0.0, "recall@100": 0.0}}
    assert mean_metrics(per_query) == {"ndcg@10": 0.0, "recall@100": 0.0}


@pytest.mark.parametrize("bad", ["ndcg", "ndcg@0", "foo@10", "map@x"])
def test_unknown_metric_names_are_rejected(bad):
    with pytest.raises(ValueError, match="unknown metric"):
        parse_metric(bad)


def test_scores_equal_in_float32_tie_as_in_trec_eval():
    """A fused run's float64 scores may differ below float32 precision; trec_eval compares
    them as float32, so they tie and the larger document id ranks first."""
    run = {"q": {"d1": 0.5 + 1e-10, "d2": 0.5, "d0": 0.25}}
    qrels = {"q": {"d1": 1}}
    assert rank_documents(run["q"]) == ["d2", "d1", "d0"]
    ours = evaluate_run(qrels, run, ["ndcg@1", "ndcg@3"], ignore_identical_ids=False)["q"]
    expected = oracle(qrels, run)["q"]
    assert ours["ndcg@1"] == expected["ndcg_cut_1"] == 0.0
    assert ours["ndcg@3"] == pytest.approx(expected["ndcg_cut_3"], abs=1e-12)


@pytest.mark.parametrize("levels", [2, 5, 50, 10_000])
def test_ranking_with_any_number_of_ties_is_score_then_id_descending(levels):
    """Runs of equal scores of every length, at the start, the end and between (and -0.0 equal
    to 0.0): ordered as sorting every (float32 score, id) pair in reverse would."""
    rng = np.random.default_rng(levels)
    for _ in range(20):
        values = (rng.integers(-levels, levels, size=int(rng.integers(1, 300))) / 7).tolist()
        values = [-0.0 if v == 0 and rng.random() < 0.5 else v for v in values]
        ids = rng.permutation(len(values) * 3)[: len(values)]
        run = {f"d{i}": v for i, v in zip(ids.tolist(), values, strict=True)}
        want = [d for _, d in sorted(((float(np.float32(v)), d) for d, v in run.items()), reverse=True)]
        assert rank_documents(run) == want
