"""A fine-tuned model carries its whole lineage (issue 23, item 2): a model tuned from an irtune
model holds its base's training record, recursively, and every ancestor's training queries,
split plans and contamination count for the leakage guard, the evaluation, the card and the
export."""

from __future__ import annotations

import json
import shutil

import pytest
from huggingface_hub import ModelCard

from irtune.data.beir import BeirDataset
from irtune.data.leakage import TrainingQueries, find_overlap
from irtune.data.splits import SplitPart, SplitPlan, save_plan
from irtune.errors import IrtuneError, LeakageError
from irtune.evaluation.job import EvaluationJob, run_evaluation
from irtune.evaluation.runner import evaluate_dataset
from irtune.models.lineage import TRAINING_METADATA, TrainingRecord
from irtune.models.loading import load_model
from irtune.results.mteb import export_mteb
from irtune.retrieval.settings import RetrievalSettings
from irtune.training.card import add_test_results
from irtune.training.config import TrainConfig
from irtune.training.trainer import train_model

from conftest import shared_dataset, slice_dataset
from results_fixtures import LEVELS, results_doc, training_summary, write

QUICK = TrainConfig(epochs=1, batch_size=8, warmup_steps=1, select_on_dev=False, hard_negatives=False)


@pytest.fixture(scope="module")
def chain(tiny_model, nfcorpus_slice, tmp_path_factory):
    """M1 tuned honestly on the tune half of a 60-query test-only dataset (24 training queries);
    M2 = M1 tuned on NFCorpus."""
    root = tmp_path_factory.mktemp("lineage")
    claims = slice_dataset(shared_dataset("scifact"), root / "claims", {"test": 60}, extra_docs=50)
    m1, m2 = root / "m1", root / "m2"
    train_model(str(tiny_model), [str(claims)], m1, QUICK, cache_dir=root / "cache")
    train_model(str(m1), [str(nfcorpus_slice)], m2, QUICK, cache_dir=root / "cache")
    return claims, m1, m2, root / "cache"


def test_a_model_tuned_from_a_tuned_model_holds_its_whole_lineage(chain, tiny_model):
    _, m1, m2, _ = chain
    record = TrainingRecord.read(m2 / TRAINING_METADATA)
    first = TrainingRecord.read(m1 / TRAINING_METADATA)
    assert [len(r.train_queries[0]["ids"]) for r in record.lineage()] == [20, 24]
    assert record.base_training == first
    assert (m2 / "irtune_splits" / "claims.split.json").read_bytes() == (
        m1 / "irtune_splits" / "claims.split.json"
    ).read_bytes()  # M1's held-out queries stay held out for M2
    card = ModelCard.load(m2 / "README.md")
    assert card.data.datasets == ["claims", "nfcorpus"]  # every ancestor's training data
    assert (
        f"- Lineage: `{tiny_model}` → `{m1}` (trained on claims:test (held-out subset)) → this model "
        "(trained on nfcorpus:train)"
    ) in card.text


def test_what_an_ancestor_trained_on_is_contaminated_for_its_descendants(chain):
    claims, _, m2, cache = chain
    model = load_model(str(m2), device="cpu")
    every_test_query = evaluate_dataset(BeirDataset(claims), RetrievalSettings(cache_dir=cache), model).result
    assert every_test_query.queries.count == 60
    assert every_test_query.contaminated and not every_test_query.contamination.model_contaminated
    [overlap] = every_test_query.contamination.overlap
    assert (overlap["train_set"], overlap["trained_by"], overlap["by_id"]) == (
        "claims:test",
        "base model",
        24,
    )
    # by default M2 is evaluated on the half its lineage held out: clean
    held_out = run_evaluation(
        EvaluationJob(model, [str(claims)], RetrievalSettings(cache_dir=cache))
    ).datasets[0]
    assert held_out.queries.selection == "eval part of claims.split.json" and held_out.queries.count == 30
    assert not held_out.contaminated


def test_the_card_marks_numbers_measured_on_an_ancestors_training_queries(chain, tmp_path):
    claims, _, m2, cache = chain
    model_copy = shutil.copytree(m2, tmp_path / "m2")
    every_test_query = tmp_path / "all.split.json"
    whole = SplitPart("test", None)
    save_plan(SplitPlan("claims", "all of test", 13, whole, whole, whole), every_test_query)
    results = run_evaluation(
        EvaluationJob(
            str(model_copy), [str(claims)], RetrievalSettings(cache_dir=cache), split_files=[every_test_query]
        )
    )
    assert results.contaminated
    add_test_results(model_copy, [results])
    [ndcg] = [
        r for r in ModelCard.load(model_copy / "README.md").data.eval_results if r.metric_type == "ndcg_at_10"
    ]
    assert "CONTAMINATED" in ndcg.metric_name and ndcg.metric_args["contaminated"] is True


def test_a_contaminated_ancestor_makes_every_descendant_contaminated(
    chain, tiny_model, scifact_slice, nfcorpus_slice, tmp_path
):
    _, _, _, cache = chain
    leaky = QUICK.model_copy(update={"allow_leakage": True})
    m1, m2 = tmp_path / "m1-leaky", tmp_path / "m2"
    train_model(str(tiny_model), [f"{scifact_slice}:test"], m1, leaky, cache_dir=cache)  # the evaluated split
    assert json.loads((m1 / TRAINING_METADATA).read_text())["contaminated"] is True
    train_model(str(m1), [str(nfcorpus_slice)], m2, QUICK, cache_dir=cache)
    assert json.loads((m2 / TRAINING_METADATA).read_text())["contaminated"] is True
    model = load_model(str(m2), device="cpu")
    assert model.contaminated and model.describe()["contaminated"]
    entry = evaluate_dataset(BeirDataset(nfcorpus_slice), RetrievalSettings(cache_dir=cache), model).result
    assert entry.contaminated and entry.contamination.model_contaminated
    assert "⚠ CONTAMINATED" in (m2 / "README.md").read_text()


def test_the_guard_refuses_training_on_an_ancestors_training_queries(chain, tmp_path):
    claims, m1, _, cache = chain
    another_cut = QUICK.model_copy(update={"split_seed": 14})  # its eval half holds M1's training queries
    with pytest.raises(LeakageError, match=r"are in the base model's training queries of claims:test"):
        train_model(str(m1), [str(claims)], tmp_path / "m3", another_cut, cache_dir=cache)


def test_a_record_from_before_the_chain_still_reads_and_keeps_its_base_models_mark(chain, tmp_path):
    m2 = chain[2]
    data = json.loads((m2 / TRAINING_METADATA).read_text())
    del data["base_training"]
    for queries in data["train_queries"]:
        del queries["queries_sha256"]
    data["base_model"]["contaminated"] = True  # an older M2 whose base was trained contaminated
    path = tmp_path / TRAINING_METADATA
    path.write_text(json.dumps(data))
    old = TrainingRecord.read(path)
    assert old.lineage() == [old] and not old.contaminated and old.lineage_contaminated


def test_a_renamed_copy_of_a_dataset_is_matched_by_its_content():
    trained = TrainingQueries("claims", "test", frozenset({"q1", "q2"}), frozenset(), "c0ffee")
    evaluated = {"q1": "a text never trained on", "q3": "another"}
    assert find_overlap(trained, "claims-copy", evaluated, queries_sha256="c0ffee").by_id == 1
    assert find_overlap(trained, "claims-copy", evaluated, queries_sha256="other").count == 0


def test_the_export_refuses_a_results_file_whose_models_ancestor_was_contaminated(tmp_path):
    """A results file written before the chain's marks reached the numbers: the training summary
    still says that the base model was trained contaminated."""
    doc = results_doc("m2", {"scifact": LEVELS["scifact"]}, trained_on=("nfcorpus",))
    doc["datasets"][0]["public_dataset"] = "scifact"
    base_summary = {**training_summary(("scifact",)), "contaminated": True}
    doc["model"]["training"]["base_model"] = {
        "name": "m1",
        "weights_sha256": "cd" * 32,
        "training": base_summary,
    }
    with pytest.raises(IrtuneError, match="contaminated"):
        export_mteb(write(tmp_path / "run" / "results.json", doc), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_dataset_an_ancestor_trained_on_is_not_called_never_trained_on(tmp_path):
    from irtune.results.compare import trained_on
    from irtune.results.schema import read_results

    doc = results_doc("m2", {"scifact": LEVELS["scifact"]}, trained_on=("nfcorpus",))
    ancestor = {"name": "m1", "weights_sha256": "cd" * 32, "training": training_summary(("scifact",))}
    doc["model"]["training"]["base_model"] = ancestor
    assert trained_on(read_results(write(tmp_path / "run" / "results.json", doc))) == ("nfcorpus", "scifact")


def test_a_results_file_of_a_model_with_a_contaminated_ancestor_is_contaminated_when_read(tmp_path):
    """Upgrade on read: a results file written before irtune followed the chain holds the
    ancestor's mark only in the training summary. Old code: export and the card read it, while
    compare said `contaminated: False` and the verdict "fine-tuning raised ... never-trained-on"."""
    from irtune.reporting.verdict import verdict
    from irtune.results.compare import load_comparisons
    from irtune.results.schema import ResultsFile, read_results

    one = {"scifact": LEVELS["scifact"]}
    m2 = results_doc("m2", one, shift=0.05, seed=1, trained_on=("nfcorpus",))
    m2["model"]["weights_sha256"] = "cd" * 32
    m2["model"]["training"]["base_model"]["contaminated"] = True  # M1, the base, trained on test
    base = write(tmp_path / "base" / "results.json", results_doc("minilm (base)", one))
    tuned = write(tmp_path / "m2" / "results.json", m2)
    for read in (read_results(tuned), ResultsFile.model_validate(m2)):
        assert (read.contaminated, read.model.contaminated) == (True, True)
        assert [(e.contaminated, e.contamination.model_contaminated) for e in read.datasets] == [(True, True)]
    comparison = load_comparisons([base, tuned])[0][0]
    assert comparison.contaminated
    assert "(⚠ CONTAMINATED: trained on evaluated queries)" in verdict([comparison])[0]
