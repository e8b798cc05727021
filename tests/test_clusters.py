"""Duplicate clusters across splits (datasets whose queries are documents: Quora, ArguAna).

One cluster {a, b, c, t}: `a` is a dev query judged against b, c and t, and `t` is a test
query whose relevant documents are b and c. Whatever side of the dev split `a` lands on,
it must neither train nor select: its pairs are an evaluated query's pairs.
"""

from __future__ import annotations

import logging

from irtune.data.beir import BeirDataset
from irtune.data.splits import SplitPart, SplitPlan, make_plan, save_plan
from irtune.evaluation.job import dev_queries
from irtune.evaluation.runner import QuerySelection, selected_queries
from irtune.training.config import TrainConfig
from irtune.training.pairs import positives
from irtune.training.plan import (
    drop_evaluated_positives,
    drop_text_duplicates,
    evaluated_documents,
    guard_leakage,
    resolve_train_sets,
)
from irtune.training.selection import PoolSettings, build_dev_set

from conftest import write_beir

SEED_WITH_A_IN_TRAIN = 13
SEED_WITH_A_IN_DEV = 8
LEFT_OUT = "left_out_sharing_a_duplicate_cluster_with_eval"


def quora_with_a_cross_split_cluster(tmp_path):
    """Dev + test, no train (Quora's shape): 30 dev and 30 test pairs of duplicate
    questions, plus the cluster {a, b, c, t} that spans dev (a) and test (t)."""
    corpus = {f"q{i}": {"text": f"question {i}"} for i in range(120)}
    corpus |= {d: {"text": f"how do I {d}?"} for d in "abct"}
    dev = {f"q{i}": {f"q{i + 1}": 1} for i in range(0, 60, 2)} | {"a": {"b": 1, "c": 1, "t": 1}}
    test = {f"q{i}": {f"q{i + 1}": 1} for i in range(60, 120, 2)} | {"t": {"b": 1, "c": 1}}
    queries = {q: corpus[q]["text"] for q in (*dev, *test)}
    return write_beir(tmp_path / "quora", corpus, queries, {"dev": dev, "test": test})


def honest_training_sets(root, **kwargs):
    """The training sets after the steps an honest training run takes before its guard."""
    sets = drop_text_duplicates(resolve_train_sets([str(root)], TrainConfig(**kwargs)))
    return drop_evaluated_positives(sets, {t.key: evaluated_documents(t, sets) for t in sets})


def test_a_training_query_in_an_evaluated_querys_cluster_is_left_out(tmp_path):
    """Old code: `a` trained on (a, b) and (a, c), b and c being t's relevant documents,
    and the leakage guard found nothing."""
    root = quora_with_a_cross_split_cluster(tmp_path)
    (train,) = honest_training_sets(root, split_seed=SEED_WITH_A_IN_TRAIN)
    assert train.plan.eval == SplitPart("test", None)
    assert "a" not in train.queries()
    assert "a" not in positives(train.dataset, train.part, train.excluded_positives)
    assert len(train.queries()) + len(train.plan.dev.query_ids) == 30  # every other dev query is kept
    assert train.plan.stats[LEFT_OUT] == {"train": 1, "dev": 0}
    assert guard_leakage([train], allow=False) == []


def test_a_selection_query_in_an_evaluated_querys_cluster_is_left_out(tmp_path):
    """Old code: `a` was a dev-selection query judged against t (an evaluated query), for
    training's selection and for the hybrid weight alike."""
    root = quora_with_a_cross_split_cluster(tmp_path)
    dataset = BeirDataset(root)
    plan = make_plan(dataset, seed=SEED_WITH_A_IN_DEV)
    dev = build_dev_set(dataset, plan.dev, PoolSettings())
    assert "a" not in dev.qids and not any("t" in judged for judged in dev.qrels.values())
    evaluated = selected_queries(dataset, "test", QuerySelection())
    tuned_on = dev_queries(dataset, plan, "the default split plan", evaluated)
    assert "a" not in tuned_on.queries and sorted(tuned_on.queries) == sorted(plan.dev.query_ids)
    assert "a" not in plan.train.query_ids and len(plan.train.query_ids) + len(plan.dev.query_ids) == 30
    assert plan.stats[LEFT_OUT] == {"train": 0, "dev": 1}


def test_a_hand_made_plan_is_held_to_the_clusters_too(tmp_path, caplog):
    """A split file that puts `a` in train and in dev: training and the hybrid weight both
    leave it out (old code trained and tuned on it)."""
    root = quora_with_a_cross_split_cluster(tmp_path)
    dataset = BeirDataset(root)
    dev_ids = frozenset(f"q{i}" for i in range(0, 12, 2))
    hand_made = SplitPlan(
        "quora",
        "hand-made",
        0,
        SplitPart("dev", frozenset(f"q{i}" for i in range(12, 60, 2)) | {"a"}),
        SplitPart("dev", dev_ids | {"a"}),
        SplitPart("test", None),
    )
    save_plan(hand_made, tmp_path / "quora.split.json")
    with caplog.at_level(logging.WARNING):
        (train,) = resolve_train_sets([str(root)], TrainConfig(), split_files=[tmp_path / "quora.split.json"])
    assert "a" not in train.queries() and "a" not in train.plan.dev.query_ids
    assert "left out 1 train and 1 dev queries sharing a duplicate cluster with an evaluated query" in (
        caplog.text
    )
    evaluated = selected_queries(dataset, "test", QuerySelection())
    tuned_on = dev_queries(dataset, hand_made, "quora.split.json", evaluated)
    assert sorted(tuned_on.queries) == sorted(dev_ids)


def test_split_says_how_many_queries_the_clusters_left_out(tmp_path):
    from typer.testing import CliRunner

    from irtune.cli.app import app

    root = quora_with_a_cross_split_cluster(tmp_path)
    args = ["split", "-d", str(root), "--out", str(tmp_path / "s"), "--seed", str(SEED_WITH_A_IN_TRAIN)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    expected = "left out 1 train queries sharing a duplicate cluster with an eval query"
    assert expected in " ".join(result.output.split())
