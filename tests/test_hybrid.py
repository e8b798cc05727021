"""Hybrid retrieval: fusions checked by hand, the weight tuned on dev queries only."""

from __future__ import annotations

import json

import pytest
import pytrec_eval
from typer.testing import CliRunner

from irtune.cli.app import app, flag_names
from irtune.data.beir import BeirDataset
from irtune.data.splits import make_plan
from irtune.errors import IrtuneError, ParameterError
from irtune.evaluation.runner import evaluate_dataset, write_run_file
from irtune.models.loading import load_model
from irtune.results.compare import compare
from irtune.results.metrics import evaluate_run
from irtune.results.schema import read_results
from irtune.retrieval import dense as dense_module
from irtune.retrieval.base import Corpus, LabelledQueries
from irtune.retrieval.hybrid import WEIGHTS, choose_weight, convex_fusion, fusable, reciprocal_rank_fusion
from irtune.retrieval.settings import RetrievalSettings, make_retriever
from irtune.training.pairs import training_queries

runner = CliRunner()


def test_reciprocal_rank_fusion_by_hand():
    dense = {"q": {"a": 0.9, "b": 0.8, "c": 0.1}}
    lexical = {"q": {"c": 9.0, "a": 5.0, "d": 1.0}}
    fused = reciprocal_rank_fusion([dense, lexical], top_k=10)["q"]
    assert fused == pytest.approx({"a": 1 / 61 + 1 / 62, "c": 1 / 63 + 1 / 61, "b": 1 / 62, "d": 1 / 63})
    assert list(fused) == ["a", "c", "b", "d"]  # best first
    assert list(reciprocal_rank_fusion([dense, lexical], top_k=2)["q"]) == ["a", "c"]


def test_convex_fusion_at_the_ends_is_either_run_alone():
    dense = {"q": {"a": 0.9, "b": 0.5, "c": 0.1}}
    lexical = {"q": {"c": 12.0, "d": 7.0, "a": 2.0}}
    only_dense = convex_fusion(dense, lexical, 1.0, 10)["q"]
    assert list(only_dense)[:2] == ["a", "b"] and only_dense["c"] == only_dense["d"] == 0.0
    only_bm25 = convex_fusion(dense, lexical, 0.0, 10)["q"]  # min-max: a list's last scores 0
    assert list(only_bm25)[:2] == ["c", "d"] and only_bm25["a"] == only_bm25["b"] == 0.0
    half = convex_fusion(dense, lexical, 0.5, 10)["q"]  # min-max: a = .5*1 + .5*0, c = .5*0 + .5*1
    assert half["a"] == pytest.approx(0.5) and half["c"] == pytest.approx(0.5)
    assert half["d"] == pytest.approx(0.5 * 0.5)  # d: absent from dense, (7-2)/(12-2) in BM25


def test_the_weight_is_the_best_on_dev_and_ties_go_to_the_most_even_mix():
    # dense ranks the relevant r first, BM25 ranks it last: r wins once w > 2/3
    dense = {"q": {"r": 0.9, "x": 0.5, "y": 0.1}}
    lexical = {"q": {"x": 10.0, "y": 5.0, "r": 1.0}}
    dev = LabelledQueries({"q": "text"}, {"q": {"r": 1}}, "test")
    weight, curve = choose_weight(dense, lexical, dev, top_k=10)
    assert weight == 0.7  # 0.70 ... 1.00 all reach NDCG@10 = 1; 0.70 is nearest an even mix
    assert curve["0.70"] == curve["1.00"] == pytest.approx(1.0) and curve["0.65"] < 1.0


def test_hybrid_eval_tunes_on_the_plans_dev_queries_only(tiny_model, scifact_slice, cache_dir, monkeypatch):
    """The component searches see the dev part of the honest plan (train queries held out
    for selection) and the evaluated test queries, never one query in both roles."""
    searched: list[set[str]] = []
    original = dense_module.DenseIndex.search

    def spy(self, queries, top_k):
        searched.append(set(queries))
        return original(self, queries, top_k)

    monkeypatch.setattr(dense_module.DenseIndex, "search", spy)
    out = cache_dir.parent / "hybrid"
    args = ["eval", "-m", str(tiny_model), "-d", str(scifact_slice), "--retriever", "hybrid"]
    result = runner.invoke(app, [*args, "--out", str(out), "--cache-dir", str(cache_dir)])
    assert result.exit_code == 0, result.output
    dataset = BeirDataset(scifact_slice)
    dev = set(training_queries(dataset, make_plan(dataset).dev))
    test = set(dataset.relevant_queries("test"))
    assert dev and dev <= set(dataset.relevant_queries("train")) and not dev & test
    assert sorted(searched, key=len) == sorted([dev, test], key=len)
    written = read_results(out)
    entry = written.datasets[0]
    assert set(entry.per_query) == test
    curve = _dev_curve_by_trec_eval(dataset, sorted(dev), tiny_model, cache_dir)
    assert entry.retrieval["dev_curve"] == pytest.approx(curve, abs=1e-12)
    best = max(curve.values())
    ties = [float(w) for w, v in curve.items() if v == pytest.approx(best, abs=1e-12)]
    assert entry.retrieval["dense_weight"] == min(ties, key=lambda w: (abs(w - 0.5), w))
    assert entry.retrieval["dev"]["queries"] == len(dev)
    assert entry.retrieval["dev"]["source"] == "dev part (train) of the default split plan"
    assert written.retriever.name == "hybrid" and [c.name for c in written.retriever.components] == [
        "dense",
        "bm25",
    ]
    assert "dense_weight" in result.output  # the terminal table says what was chosen


def _dev_curve_by_trec_eval(dataset, dev, model_dir, cache_dir) -> dict[str, float]:
    """Mean dev NDCG@10 of every weight, each fused run scored by trec_eval itself."""
    settings = RetrievalSettings(cache_dir=cache_dir)
    model = load_model(str(model_dir), device="cpu")
    queries = {q: dataset.queries[q] for q in dev}
    corpus = Corpus.of(dataset)
    dense = make_retriever("dense", settings, model).index(corpus).search(queries, settings.top_k).run
    lexical = make_retriever("bm25", settings, None).index(corpus).search(queries, settings.top_k).run
    dense = fusable(dense, drop_self=True, positive_only=False)
    lexical = fusable(lexical, drop_self=True, positive_only=True)
    evaluator = pytrec_eval.RelevanceEvaluator(
        {q: dict(dataset.qrels("train")[q]) for q in dev}, {"ndcg_cut_10"}
    )
    curve = {}
    for weight in WEIGHTS:
        scored = evaluator.evaluate(convex_fusion(dense, lexical, weight, settings.top_k))
        curve[f"{weight:.2f}"] = sum(v["ndcg_cut_10"] for v in scored.values()) / len(dev)
    return curve


def test_fused_scores_that_tie_in_float32_rank_as_trec_eval_ranks_them(tmp_path):
    """0.41250000000000003 and 0.4124999999999999 are one float32: trec_eval ranks b (the
    larger id) first; irtune ranked a first and scored NDCG@1 = 1 where trec_eval says 0."""
    fused = convex_fusion(
        {"q": {"a": 0.58, "b": 0.1, "c": 0.74}}, {"q": {"a": 0.4, "b": 4.8, "c": 5.2}}, 0.55, 10
    )
    assert fused["q"]["a"] > fused["q"]["b"]
    qrels = {"q": {"a": 1}}
    path = tmp_path / "fused.trec"
    write_run_file(path, fused, tag="hybrid")
    with open(path, encoding="utf-8") as handle:
        from_file = pytrec_eval.parse_run(handle)
    oracle = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_1", "ndcg_cut_3"}).evaluate(from_file)["q"]
    ours = evaluate_run(qrels, fused, ["ndcg@1", "ndcg@3"])["q"]
    assert ours == {"ndcg@1": oracle["ndcg_cut_1"], "ndcg@3": pytest.approx(oracle["ndcg_cut_3"], abs=1e-12)}
    assert ours["ndcg@1"] == 0.0


def test_hybrid_refuses_dev_queries_that_are_evaluated(tiny_model, scifact_slice, cache_dir):
    dataset = BeirDataset(scifact_slice)
    test = dataset.relevant_queries("test")
    settings = RetrievalSettings(retriever="hybrid", cache_dir=cache_dir)
    model = load_model(str(tiny_model), device="cpu")
    leaky = LabelledQueries({q: dataset.queries[q] for q in test[:5]}, dataset.qrels("test"), "test")
    with pytest.raises(IrtuneError, match="5 of the dev queries a retriever tunes on are evaluated"):
        evaluate_dataset(dataset, settings, model, dev=leaky)
    retriever = make_retriever("hybrid", settings, model)
    with pytest.raises(IrtuneError, match="tuned on dev queries, and none were given"):
        evaluate_dataset(dataset, settings, model, retriever=retriever)


def test_a_convex_hybrid_searched_below_its_tuning_depth_names_top_k(tiny_model, scifact_slice, cache_dir):
    from irtune import evaluate

    with pytest.raises(ParameterError) as caught:
        evaluate(
            str(tiny_model), scifact_slice, retriever="hybrid", top_k=5, metrics="ndcg@5", cache_dir=cache_dir
        )
    # the value asked for, though the search runs one deeper to drop a query's own document
    assert str(caught.value) == "hybrid: top_k 5 is below its tuning depth (10)"
    assert caught.value.naming(flag_names(["eval"])) == "hybrid: --top-k 5 is below its tuning depth (10)"


def test_hybrid_runs_compare_with_dense_without_refusal(tiny_model, scifact_slice, cache_dir, tmp_path):
    common = ["-m", str(tiny_model), "-d", str(scifact_slice), "--cache-dir", str(cache_dir)]
    for name in ("dense", "hybrid-rrf", "bm25"):
        result = runner.invoke(app, ["eval", *common, "--retriever", name, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    dense, rrf, bm25 = (read_results(tmp_path / n) for n in ("dense", "hybrid-rrf", "bm25"))
    assert rrf.retriever.params == {"fusion": "rrf", "k": 60}
    for other in (rrf, bm25):
        comparison = compare(dense, other)
        assert comparison.caveats == [] and comparison.datasets[0].queries == 30
    assert compare(dense, rrf).candidate_setup.precision == "fp32"  # the fusion's dense part
    result = runner.invoke(app, ["compare", str(tmp_path / "dense"), str(tmp_path / "hybrid-rrf")])
    assert result.exit_code == 0 and "hybrid-rrf (rrf) of [dense · fp32" in result.output
    saved = json.loads((tmp_path / "hybrid-rrf" / "results.json").read_text())
    assert saved["retriever"]["components"][1]["name"] == "bm25"


def test_zero_score_bm25_padding_and_self_matches_are_not_fused():
    """bm25s pads a query that matches nothing with zero-score documents: min-max made them
    all 1.0 and they pushed the dense results out; a self-match set the dense range."""
    from irtune.retrieval.hybrid import fusable

    dense = fusable({"q": {"q": 0.99, "d9": 0.9, "d8": 0.8, "d7": 0.5}}, drop_self=True, positive_only=False)
    lexical = fusable({"q": {"a1": 0.0, "a2": 0.0, "a3": 0.0}}, drop_self=True, positive_only=True)
    assert lexical == {"q": {}} and "q" not in dense["q"]
    assert list(convex_fusion(dense, lexical, 0.5, 3)["q"]) == ["d9", "d8", "d7"]
    assert list(reciprocal_rank_fusion([dense, lexical], 3)["q"]) == ["d9", "d8", "d7"]
