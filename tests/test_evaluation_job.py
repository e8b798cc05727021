"""One evaluation request (`EvaluationJob`), built once and passed whole: checked before a model
loads, run, swept; and the errors it raises name parameters, which the CLI turns into flags."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from irtune.cli.app import flag_names
from irtune.data.beir import BeirDataset
from irtune.data.splits import SplitPart, SplitPlan
from irtune.errors import ParameterError
from irtune.evaluation.job import EvaluationJob, check_before_loading, dev_queries, run_evaluation
from irtune.evaluation.runner import assemble_results
from irtune.retrieval.settings import RetrievalSettings

from conftest import write_beir

CORPUS = {"d1": {"text": "aspirin lowers heart attack risk"}, "d2": {"text": "vitamin d and bone fractures"}}
QUERIES = {"q1": "aspirin heart", "q2": "vitamin d bones"}
BM25 = RetrievalSettings(retriever="bm25", top_k=10, metrics=("ndcg@10", "recall@10"))


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    write_beir(tmp_path / "data" / "ds", CORPUS, QUERIES, {"test": {"q1": {"d1": 1}, "q2": {"d2": 1}}})
    return tmp_path / "data"


def test_one_job_is_checked_then_run_whole(data: Path, tmp_path: Path):
    job = EvaluationJob(None, ("ds",), BM25, out_dir=tmp_path / "out", data_dir=data, label="bm25 run")
    found, explicit = check_before_loading(job)
    assert [d.name for d in found] == ["ds"] and explicit == {}
    results = run_evaluation(job)
    assert results.label == "bm25 run"
    assert results.datasets[0].per_query == {
        "q1": {"ndcg@10": 1.0, "recall@10": 1.0},
        "q2": {"ndcg@10": 1.0, "recall@10": 1.0},
    }
    assert (tmp_path / "out" / "results.json").is_file()
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.force = True  # type: ignore[misc]


def test_the_results_are_assembled_not_written(data: Path, tmp_path: Path):
    from irtune.evaluation.runner import evaluate_dataset
    from irtune.retrieval.settings import make_retriever

    dataset = BeirDataset(data / "ds")
    retriever = make_retriever("bm25", BM25, None)
    evaluations = [evaluate_dataset(dataset, BM25, retriever=retriever)]
    results = assemble_results(evaluations, BM25, retriever, None, "x")
    assert [d.dataset for d in results.datasets] == ["ds"] and results.label == "x"
    assert list(tmp_path.rglob("results.json")) == []


def test_a_cpu_backend_with_an_accelerator_names_the_parameters(data: Path, monkeypatch):
    from irtune.core import checks
    from irtune.retrieval.settings import ModelOptions

    monkeypatch.setattr(checks, "device", lambda option, name: None)  # accept "cuda" without one
    job = EvaluationJob(
        "minilm",
        ("ds",),
        RetrievalSettings(backend="onnx"),
        model_options=ModelOptions(device="cuda"),
        data_dir=data,
    )
    with pytest.raises(ParameterError) as caught:
        check_before_loading(job)
    assert str(caught.value) == "backend onnx runs on the CPU, not cuda; drop device"
    assert (
        caught.value.naming(flag_names(["eval"])) == "--backend onnx runs on the CPU, not cuda; drop --device"
    )


def test_no_dev_query_left_names_the_split_files_parameter(data: Path):
    dataset = BeirDataset(data / "ds")
    plan = SplitPlan(
        "ds",
        "hand-made",
        0,
        SplitPart("test", frozenset()),
        SplitPart("test", {"q1"}),
        SplitPart("test", None),
    )
    with pytest.raises(ParameterError) as caught:
        dev_queries(dataset, plan, "ds.split.json", ["q1", "q2"])
    message = "ds: no dev query left to tune the retriever on (ds.split.json); give {} the file of a split"
    assert str(caught.value).startswith(message.format("split_files"))
    assert caught.value.naming(flag_names(["eval"])).startswith(message.format("--split-file"))
