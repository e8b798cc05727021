"""Honest splits: deterministic, disjoint, cluster-preserving; the leakage guard."""

from __future__ import annotations

import pytest

from irtune.data.beir import BeirDataset
from irtune.data.splits import load_plan, make_plan, query_groups, save_plan
from irtune.errors import LeakageError
from irtune.leakage import normalize_text
from irtune.train.config import TrainConfig
from irtune.train.plan import drop_text_duplicates, expand_presets, guard_leakage, resolve_train_sets

from conftest import shared_dataset, write_beir


def ids(dataset, part):
    return set(part.query_ids) if part.query_ids is not None else set(dataset.relevant_queries(part.split))


def test_scifact_plan_holds_out_a_dev_slice_of_train_and_reports_test(tmp_path):
    ds = BeirDataset(shared_dataset("scifact"))
    plan = make_plan(ds, seed=13, dev_fraction=0.2)
    train, dev = ids(ds, plan.train), ids(ds, plan.dev)
    assert plan.train.split == plan.dev.split == "train" and plan.eval.split == "test"
    assert not train & dev and train | dev == set(ds.qrels("train"))
    assert 0.15 < len(dev) / (len(train) + len(dev)) < 0.25
    save_plan(plan, tmp_path / "p.json")
    assert load_plan(tmp_path / "p.json") == plan
    assert make_plan(ds, seed=13, dev_fraction=0.2) == plan  # deterministic
    assert make_plan(ds, seed=14, dev_fraction=0.2).dev != plan.dev


def test_nfcorpus_uses_its_native_splits():
    plan = make_plan(BeirDataset(shared_dataset("nfcorpus")))
    assert (plan.train.split, plan.dev.split, plan.eval.split) == ("train", "dev", "test")
    assert plan.train.query_ids is None


def quora_like(tmp_path):
    """Test-only dataset whose queries are also documents, with duplicate clusters."""
    corpus = {f"q{i}": {"text": f"question {i}"} for i in range(200)}
    qrels = {}
    for i in range(0, 200, 4):  # clusters {i, i+1, i+2}: each is the others' duplicate
        cluster = [f"q{i}", f"q{i + 1}", f"q{i + 2}"]
        for q in cluster:
            qrels[q] = {d: 1 for d in cluster if d != q}
    return write_beir(tmp_path / "quora", corpus, {q: corpus[q]["text"] for q in corpus}, {"test": qrels})


def test_test_only_dataset_splits_by_cluster_into_disjoint_tune_and_eval(tmp_path):
    ds = BeirDataset(quora_like(tmp_path))
    plan = make_plan(ds, seed=1, eval_fraction=0.5)
    assert {plan.train.split, plan.dev.split, plan.eval.split} == {"test"}
    train, dev, evaluated = ids(ds, plan.train), ids(ds, plan.dev), ids(ds, plan.eval)
    assert not (train & dev or train & evaluated or dev & evaluated)
    assert train | dev | evaluated == set(ds.qrels("test"))
    groups = query_groups(ds.qrels("test"))
    for side in (train, dev, evaluated):
        for q in side:  # a whole duplicate cluster is on one side
            assert {p for p, g in groups.items() if g == groups[q]} <= side
    assert 0.3 < len(evaluated) / len(groups) < 0.7


def test_training_on_the_evaluated_split_is_refused(tmp_path):
    ds_path = quora_like(tmp_path)
    config = TrainConfig()
    honest = resolve_train_sets([str(ds_path)], config)
    assert guard_leakage(honest, allow=False) == []
    leaky = resolve_train_sets([str(ds_path)], TrainConfig(protocol="seed"))
    with pytest.raises(LeakageError, match=r"queries evaluated on quora:test are in training set quora:test"):
        guard_leakage(leaky, allow=False)
    findings = guard_leakage(leaky, allow=True)
    assert findings[0]["by_id"] == findings[0]["evaluated_queries"]


def test_text_duplicates_of_evaluated_queries_are_left_out(tmp_path):
    corpus = {"d1": {"text": "a"}, "d2": {"text": "b"}}
    queries = {"t1": "Vitamin D helps!", "t2": "other", "e1": "vitamin  d HELPS"}
    root = write_beir(
        tmp_path / "x",
        corpus,
        queries,
        {"train": {"t1": {"d1": 1}, "t2": {"d2": 1}}, "test": {"e1": {"d1": 1}}},
    )
    sets = resolve_train_sets([str(root)], TrainConfig(dev_fraction=0.01))
    with pytest.raises(LeakageError, match="1 by text"):
        guard_leakage(sets, allow=False)
    cleaned = drop_text_duplicates(sets)
    assert cleaned[0].dropped_duplicates == ("t1",)
    assert guard_leakage(cleaned, allow=False) == []
    assert normalize_text("Vitamin D helps!") == normalize_text("vitamin  d HELPS")


def test_presets():
    assert expand_presets(["scientific"]) == ["scifact", "nfcorpus", "scidocs"]
    assert expand_presets(["general"]) == ["scifact", "nfcorpus", "scidocs", "quora"]
    assert expand_presets(["mine", "scifact"], {"mine": ["fiqa", "scifact"]}) == ["fiqa", "scifact"]
