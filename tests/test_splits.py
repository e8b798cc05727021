"""Honest splits: deterministic, disjoint, cluster-preserving; the leakage guard."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from irtune.data.beir import BeirDataset
from irtune.data.leakage import normalize_text
from irtune.data.splits import SplitPart, SplitPlan, duplicate_groups, load_plan, make_plan, save_plan
from irtune.errors import IrtuneError, LeakageError
from irtune.training.config import TrainConfig
from irtune.training.plan import (
    TrainSet,
    drop_evaluated_positives,
    drop_text_duplicates,
    evaluated_documents,
    expand_presets,
    guard_leakage,
    resolve_train_sets,
)

from conftest import shared_dataset, write_beir
from results_fixtures import training_summary


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
    groups = duplicate_groups(ds.qrels("test"), ds.queries, linked_through_documents=True)
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
    with pytest.raises(
        LeakageError, match=r"queries evaluated on quora:test are in training queries of quora:test"
    ):
        guard_leakage(leaky, allow=False)
    findings = guard_leakage(leaky, allow=True)
    assert findings[0]["by_id"] == findings[0]["evaluated_queries"]


SEED_WITH_T1_IN_TRAIN = 13


def test_text_duplicates_of_evaluated_queries_are_left_out(tmp_path):
    corpus = {f"d{i}": {"text": f"doc {i}"} for i in range(10)}
    queries = {
        "t1": "Vitamin D helps!",
        **{f"t{i}": f"other {i}" for i in range(2, 11)},
        "e1": "vitamin  d HELPS",
    }
    train = {f"t{i}": {f"d{i - 1}": 1} for i in range(1, 11)}
    root = write_beir(tmp_path / "x", corpus, queries, {"train": train, "test": {"e1": {"d0": 1}}})
    sets = resolve_train_sets([str(root)], TrainConfig(dev_fraction=0.2, split_seed=SEED_WITH_T1_IN_TRAIN))
    assert "t1" in sets[0].part.query_ids
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


def nfcorpus_test_only(tmp_path):
    """NFCorpus with only its test qrels: a test-only dataset of 323 queries that share
    many relevant documents (one component of shared documents holds 318 of them)."""
    source = shared_dataset("nfcorpus")
    root = tmp_path / "nfcorpus"
    (root / "qrels").mkdir(parents=True)
    for name in ("corpus.jsonl.gz", "queries.jsonl.gz"):
        (root / name).symlink_to(source / name)
    (root / "qrels" / "test.tsv").symlink_to(source / "qrels" / "test.tsv")
    return BeirDataset(root)


def test_queries_sharing_documents_are_split_by_query_with_balanced_parts(tmp_path):
    ds = nfcorpus_test_only(tmp_path)
    plan = make_plan(ds, seed=13, dev_fraction=0.2, eval_fraction=0.5)
    train, dev, evaluated = ids(ds, plan.train), ids(ds, plan.dev), ids(ds, plan.eval)
    total = len(ds.relevant_queries("test"))
    assert total == 323 and train | dev | evaluated == set(ds.relevant_queries("test"))
    assert not (train & dev or train & evaluated or dev & evaluated)
    assert abs(len(evaluated) / total - 0.5) <= 0.05  # was 3 of 323
    assert abs(len(dev) / (len(train) + len(dev)) - 0.2) <= 0.05  # was 318 of 320
    shared = plan.stats["sharing_a_relevant_document_with_train"]["eval"]
    assert 0 < shared <= len(evaluated)
    assert plan.stats["queries"] == {"train": len(train), "dev": len(dev), "eval": len(evaluated)}


def test_split_cli_reports_sizes_and_shared_documents(tmp_path):
    from typer.testing import CliRunner

    from irtune.cli.app import app

    ds = nfcorpus_test_only(tmp_path)
    result = CliRunner().invoke(app, ["split", "-d", str(ds.root), "--out", str(tmp_path / "splits")])
    assert result.exit_code == 0, result.output
    plan = load_plan(tmp_path / "splits" / "nfcorpus.split.json")
    n_eval = len(plan.eval.query_ids)
    assert f"eval=test:{n_eval}" in result.output
    shared = plan.stats["sharing_a_relevant_document_with_train"]
    n_dev = len(plan.dev.query_ids)
    expected = f"{shared['eval']} of {n_eval} eval and {shared['dev']} of {n_dev} dev queries share"
    assert expected in " ".join(result.output.split())


def test_duplicate_texts_stay_together_and_an_unsplittable_set_is_refused(tmp_path):
    corpus = {f"d{i}": {"text": f"doc {i}"} for i in range(10)}
    queries = {f"q{i}": ("same question" if i < 8 else f"question {i}") for i in range(10)}
    qrels = {"test": {q: {f"d{i}": 1} for i, q in enumerate(queries)}}
    ds = BeirDataset(write_beir(tmp_path / "dups", corpus, queries, qrels))
    groups = duplicate_groups(ds.qrels("test"), ds.queries)
    assert len({groups[f"q{i}"] for i in range(8)}) == 1  # identical normalised text: one group
    assert len(set(groups.values())) == 3
    with pytest.raises(IrtuneError, match=r"cannot hold out 50% of 10 queries .* largest group of duplicate"):
        make_plan(ds, eval_fraction=0.5)


def test_overlapping_split_file_parts_are_refused_or_marked(tmp_path, scifact_slice):
    ds = BeirDataset(scifact_slice)
    plan = make_plan(ds, seed=13)
    leaky = SplitPlan(ds.name, "hand-made", 13, plan.train, SplitPart("test", plan.eval.query_ids), plan.eval)
    save_plan(leaky, tmp_path / "leaky.split.json")
    sets = resolve_train_sets(
        [str(scifact_slice)], TrainConfig(), split_files=[tmp_path / "leaky.split.json"]
    )
    with pytest.raises(LeakageError, match=r"split plan parts"):
        guard_leakage(sets, allow=False)
    findings = guard_leakage(sets, allow=True)
    assert findings[0]["parts"] == "dev/eval" and findings[0]["queries"] == len(ids(ds, plan.eval))
    assert guard_leakage(resolve_train_sets([str(scifact_slice)], TrainConfig()), allow=False) == []


def test_the_same_training_set_twice_is_refused_and_two_splits_both_train(tmp_path, nfcorpus_slice):
    with pytest.raises(IrtuneError, match=r"nfcorpus:train is given twice"):
        resolve_train_sets([f"{nfcorpus_slice}:train", str(nfcorpus_slice)], TrainConfig())
    sets = resolve_train_sets([f"{nfcorpus_slice}:train", f"{nfcorpus_slice}:dev"], TrainConfig())
    assert [s.key for s in sets] == ["nfcorpus:train", "nfcorpus:dev"]


def test_seed_protocol_plan_reports_the_whole_test_split(tmp_path):
    ds_path = quora_like(tmp_path)
    sets = resolve_train_sets([str(ds_path)], TrainConfig(protocol="seed"))
    assert sets[0].part == SplitPart("test", None)
    assert sets[0].plan.eval == SplitPart("test", None)  # the baseline's queries, not a half


def test_training_positives_that_are_evaluated_queries_are_leakage(tmp_path):
    """Quora-like: a training query whose relevant document is an evaluated query."""
    corpus = {f"q{i}": {"text": f"question {i}"} for i in range(30)}
    queries = {q: corpus[q]["text"] for q in corpus}
    qrels = {"test": {f"q{i}": {f"q{(i + 10) % 30}": 1} for i in range(30)}}
    root = write_beir(tmp_path / "quora2", corpus, queries, qrels)
    # a hand-made plan that cuts the pairs apart: q0..q9 (relevant: q10..q19) train, q10..q19 evaluated
    leaky = SplitPlan(
        "quora2",
        "hand-made",
        1,
        SplitPart("test", frozenset(f"q{i}" for i in range(10))),
        SplitPart("test", frozenset(f"q{i}" for i in range(20, 30))),
        SplitPart("test", frozenset(f"q{i}" for i in range(10, 20))),
    )
    save_plan(leaky, tmp_path / "p.split.json")
    # each training query is in an evaluated query's duplicate cluster: an honest run leaves it out
    (honest,) = resolve_train_sets([str(root)], TrainConfig(), split_files=[tmp_path / "p.split.json"])
    assert honest.queries() == {} and honest.plan.dev.query_ids == frozenset()
    # the guard, should such a training set reach it
    sets = [TrainSet(BeirDataset(root), leaky.train, leaky)]
    with pytest.raises(
        LeakageError, match=r"10 of the 10 queries evaluated on quora2:test are in training positives"
    ):
        guard_leakage(sets, allow=False)
    # an honest run leaves those positives out, and never draws them as negatives
    cleaned = drop_evaluated_positives(sets, {t.key: evaluated_documents(t, sets) for t in sets})
    assert cleaned[0].excluded_positives == frozenset(f"q{i}" for i in range(10, 20))
    assert guard_leakage(cleaned, allow=False) == []
    assert evaluated_documents(cleaned[0], cleaned) == frozenset(f"q{i}" for i in range(10, 20))


def tiny_dataset(root, texts: str = "question"):
    """A test-only dataset of 20 queries, each judged against two documents."""
    corpus = {f"d{i}": {"text": f"document {i} about {texts} {i}"} for i in range(21)}
    queries = {f"q{i}": f"{texts} {i}" for i in range(20)}
    qrels = {"test": {f"q{i}": {f"d{i}": 1, f"d{i + 1}": 1} for i in range(20)}}
    return write_beir(root, corpus, queries, qrels)


def bm25_eval(root, split_file):
    from irtune.evaluation.job import EvaluationJob, run_evaluation
    from irtune.retrieval.settings import RetrievalSettings

    return run_evaluation(
        EvaluationJob(None, [str(root)], RetrievalSettings(retriever="bm25"), split_files=[split_file])
    )


def cut(root, out):
    plan = make_plan(BeirDataset(root), seed=13)
    save_plan(plan, out / f"{root.name}.split.json")
    return out / f"{root.name}.split.json", plan


def test_a_split_file_of_another_dataset_is_refused(tmp_path):
    """Old code: tiny2's split file was ignored and all 20 queries of tiny evaluated."""
    tiny = tiny_dataset(tmp_path / "tiny")
    split_file, plan = cut(tiny_dataset(tmp_path / "tiny2", texts="other"), tmp_path)
    assert len(plan.eval.query_ids) == 10
    with pytest.raises(
        IrtuneError, match=r"tiny2.split.json: cut from dataset tiny2, which is not evaluated"
    ):
        bm25_eval(tiny, split_file)
    with pytest.raises(IrtuneError, match=r"tiny2.split.json: cut from dataset tiny2, which is not trained"):
        resolve_train_sets([str(tiny)], TrainConfig(), split_files=[split_file])


def test_a_split_file_of_other_files_of_the_dataset_is_refused(tmp_path):
    """Old code: after half of tiny's judgements were dropped, its old split file was applied
    to the new qrels (10 queries evaluated against other judgements, exit 0)."""
    tiny = tiny_dataset(tmp_path / "tiny")
    split_file, plan = cut(tiny, tmp_path)
    assert [e.queries.count for e in bm25_eval(tiny, split_file).datasets] == [10]
    qrels = tiny / "qrels" / "test.tsv"
    lines = qrels.read_bytes().split(b"\r\n")
    qrels.write_bytes(b"\r\n".join(lines[:1] + lines[1::2]))
    expected = r"tiny.split.json: cut from other files of dataset tiny \(qrels/test.tsv differs in "
    with pytest.raises(IrtuneError, match=expected):
        bm25_eval(tiny, split_file)
    with pytest.raises(IrtuneError, match=expected):
        resolve_train_sets([str(tiny)], TrainConfig(), split_files=[split_file])
    assert set(plan.dataset_files) == {"queries.jsonl", "qrels/test.tsv"}
    assert load_plan(split_file).dataset_files == plan.dataset_files


def test_a_split_file_applies_to_the_same_files_under_another_name(tmp_path):
    """Content, not names: a copy of tiny under another folder name is the same dataset."""
    import shutil

    split_file, plan = cut(tiny_dataset(tmp_path / "tiny"), tmp_path)
    copy = shutil.copytree(tmp_path / "tiny", tmp_path / "tiny-copy")
    (result,) = bm25_eval(copy, split_file).datasets
    assert sorted(result.per_query) == sorted(plan.eval.query_ids)


def test_a_split_file_without_dataset_hashes_is_used_with_a_warning(tmp_path, caplog):
    """Hand-made split files and those written before they carried their dataset's hashes:
    the evaluated ids are exactly the file's (results record the file's sha256)."""
    import logging

    tiny = tiny_dataset(tmp_path / "tiny")
    chosen = frozenset(f"q{i}" for i in range(0, 20, 4))
    plan = SplitPlan(
        "tiny",
        "hand-made",
        0,
        SplitPart("test", frozenset()),
        SplitPart("test", frozenset()),
        SplitPart("test", chosen),
    )
    save_plan(plan, tmp_path / "tiny.split.json")
    with caplog.at_level(logging.WARNING):
        (result,) = bm25_eval(tiny, tmp_path / "tiny.split.json").datasets
    assert sorted(result.per_query) == sorted(chosen)
    assert "tiny.split.json: carries no hashes of the dataset files it was cut from" in caplog.text


def test_the_cli_refuses_another_datasets_split_file_in_one_line(tmp_path):
    from conftest import assert_one_line_error, irtune

    tiny = tiny_dataset(tmp_path / "tiny")
    split_file, _ = cut(tiny_dataset(tmp_path / "tiny2", texts="other"), tmp_path)
    result = irtune("eval", "--retriever", "bm25", "-d", str(tiny), "--split-file", str(split_file))
    assert_one_line_error(result, "tiny2.split.json: cut from dataset tiny2, which is not evaluated here")


def test_a_split_file_applies_to_the_same_content_gzipped_or_not(tmp_path):
    """Content, not file names: a plan cut from the gzipped copy names BEIR's paths and the
    decompressed content, so it applies to the plain copy (the official zip's layout).
    Old code: "cut from other files of dataset tiny (queries.jsonl.gz differs ...)"."""
    import gzip
    import hashlib

    plain = tiny_dataset(tmp_path / "plain" / "tiny")
    gzipped = shutil.copytree(plain, tmp_path / "gz" / "tiny")
    queries = gzipped / "queries.jsonl"
    (gzipped / "queries.jsonl.gz").write_bytes(gzip.compress(queries.read_bytes(), mtime=0))
    queries.unlink()
    split_file, plan = cut(gzipped, tmp_path)
    expected = {
        name: hashlib.sha256((plain / name).read_bytes()).hexdigest()
        for name in ("queries.jsonl", "qrels/test.tsv")
    }
    assert plan.dataset_files == expected
    (result,) = bm25_eval(plain, split_file).datasets
    assert sorted(result.per_query) == sorted(plan.eval.query_ids)


def test_a_plan_with_no_queries_or_eval_qrels_hashes_applies_only_to_its_own_dataset(tmp_path):
    """An empty `dataset_files` is a plan without hashes. Old code: another dataset's plan with
    `"dataset_files": {}` matched tiny through the content fallback and was applied silently."""
    import json

    tiny = tiny_dataset(tmp_path / "tiny")
    split_file, _ = cut(tiny, tmp_path)
    data = json.loads(split_file.read_text())
    data.update(dataset="some-other-dataset", dataset_files={})
    split_file.write_text(json.dumps(data))
    with pytest.raises(IrtuneError, match="cut from dataset some-other-dataset, which is not evaluated here"):
        bm25_eval(tiny, split_file)


def _tuned_model(tiny_model, folder, plan):
    """A fine-tuned model folder as irtune writes it (a training record and its split plan)."""
    import json

    from irtune.models.lineage import SPLITS_DIR, TRAINING_METADATA

    shutil.copytree(tiny_model, folder)
    record = {
        "format": "irtune-training-v1",
        "base_model": {"name": str(tiny_model), "weights_sha256": "ab" * 32},
        "weights_sha256": "cd" * 32,
        "train_sets": [],
        "protocol": "honest",
        "config": training_summary(())["config"],  # as irtune records them
        "selected": training_summary(())["selected"],
        "contaminated": False,
        "leakage": [],
        "train_queries": [],
    }
    (folder / TRAINING_METADATA).write_text(json.dumps(record), encoding="utf-8")
    save_plan(plan, folder / SPLITS_DIR / f"{plan.dataset}.split.json")
    return folder


def _dense_eval(model, root, split_files=()):
    from irtune.evaluation.job import EvaluationJob, run_evaluation
    from irtune.retrieval.settings import RetrievalSettings

    settings = RetrievalSettings(cache_dir=root.parent / "cache")
    (result,) = run_evaluation(
        EvaluationJob(str(model), [str(root)], settings, split_files=split_files)
    ).datasets
    return result


def _halve_qrels(root):
    qrels = root / "qrels" / "test.tsv"
    lines = qrels.read_bytes().split(b"\r\n")
    qrels.write_bytes(b"\r\n".join(lines[:1] + lines[1::4]))


def test_an_explicit_split_file_wins_over_the_models_plan_of_other_files(tiny_model, tmp_path, caplog):
    """Old code: the model's own plan (cut before the user's qrels changed) was checked first and
    refused the evaluation, even with a fresh --split-file of these files. Without one, the
    model's plan that does not apply is skipped with a warning (all queries are evaluated; the
    contamination check still sees its training queries)."""
    import logging

    tiny = tiny_dataset(tmp_path / "data" / "tiny")
    model = _tuned_model(tiny_model, tmp_path / "tuned", make_plan(BeirDataset(tiny), seed=13))
    _halve_qrels(tiny)
    fresh_file, fresh = cut(tiny, tmp_path)
    assert sorted(_dense_eval(model, tiny, [fresh_file]).per_query) == sorted(fresh.eval.query_ids)
    with caplog.at_level(logging.WARNING):
        result = _dense_eval(model, tiny)
    assert sorted(result.per_query) == sorted(BeirDataset(tiny).relevant_queries("test"))
    assert (
        "tiny.split.json: the model's split plan was cut from other files of dataset tiny "
        "(qrels/test.tsv differs in "
    ) in caplog.text


def test_a_models_plan_without_hashes_is_applied_by_id_with_one_warning(tiny_model, tmp_path, caplog):
    """A model trained before plans recorded their dataset's files: its plan cannot be cut again.
    Old code: "cut it again with `irtune split`", printed on every evaluation."""
    import logging

    tiny = tiny_dataset(tmp_path / "data" / "tiny")
    plan = replace(make_plan(BeirDataset(tiny), seed=13), dataset_files=None)
    model = _tuned_model(tiny_model, tmp_path / "tuned", plan)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            assert sorted(_dense_eval(model, tiny).per_query) == sorted(plan.eval.query_ids)
    warnings = [r.getMessage() for r in caplog.records if "before plans recorded" in r.getMessage()]
    assert len(warnings) == 1, caplog.text
    expected = "trained before plans recorded their dataset's files: its plan is applied by query id"
    assert expected in warnings[0]
    assert "irtune split" not in warnings[0]
