"""Trackers: training through the Trainer's report_to (TensorBoard files, MLflow runs), and
`irtune eval` / `compare` logging their metrics to a local MLflow file store."""

from __future__ import annotations

import json
import os

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from irtune.cli.app import app, flag_names
from irtune.errors import IrtuneError
from irtune.results.tracking import Tracking, scoped_environment
from irtune.training.config import TrainConfig
from irtune.training.trainer import train_model

from results_fixtures import LEVELS, results_doc, write

runner = CliRunner()


def _runs(store):
    with scoped_environment({"MLFLOW_ALLOW_FILE_STORE": "true"}):  # MLflow 3 wants file stores allowed
        client = MlflowClient(store.resolve().as_uri())
        experiment = client.get_experiment_by_name("irtune")
        return client, client.search_runs([experiment.experiment_id])


def test_eval_logs_its_metrics_to_mlflow(scifact_slice, tmp_path):
    store = tmp_path / "mlruns"
    out = tmp_path / "bm25"
    args = [
        "eval",
        "-d",
        str(scifact_slice),
        "--retriever",
        "bm25",
        "--out",
        str(out),
        "--mlflow",
        str(store),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "logged to MLflow run" in result.output
    # nothing is left set for the rest of the process: the URI and the file-store permission were scoped
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ and "MLFLOW_TRACKING_URI" not in os.environ
    import mlflow

    assert str(store.name) not in mlflow.get_tracking_uri()
    client, runs = _runs(store)
    assert len(runs) == 1
    run = runs[0]
    saved = json.loads((out / "results.json").read_text())
    metrics = saved["datasets"][0]["metrics"]
    assert saved["datasets"][0]["query_ids_in_corpus"] == 0  # counted at evaluation (SciFact: none)
    assert run.data.metrics["scifact.ndcg_at_10"] == pytest.approx(metrics["ndcg@10"])
    assert run.data.metrics["scifact.recall_at_100"] == pytest.approx(metrics["recall@100"])
    assert run.data.params["label"] == saved["label"] and run.data.params["top_k"] == "1000"
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["results.json"]


def test_compare_logs_deltas_and_corrected_p_values(tmp_path):
    base = write(tmp_path / "a" / "results.json", results_doc("base", LEVELS))
    tuned = write(tmp_path / "b" / "results.json", results_doc("tuned", LEVELS, shift=0.05, seed=1))
    store = tmp_path / "mlruns"
    out = tmp_path / "cmp.json"
    result = runner.invoke(
        app, ["compare", str(base), str(tuned), "--json", str(out), "--mlflow", str(store)]
    )
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())[0]
    ndcg = next(m for m in written["datasets"][0]["metrics"] if m["metric"] == "ndcg@10")
    _, runs = _runs(store)
    metrics = runs[0].data.metrics
    assert metrics["0.scifact.ndcg_at_10.delta"] == pytest.approx(ndcg["delta"])
    assert metrics["0.scifact.ndcg_at_10.p_holm"] == pytest.approx(ndcg["p_holm"])
    assert runs[0].data.params["correction"].startswith("Holm-corrected over all 8 tests")


def test_training_reports_to_tensorboard_and_mlflow(tiny_model, scifact_slice, cache_dir, tmp_path):
    store = tmp_path / "mlruns"
    out = tmp_path / "tuned"
    config = TrainConfig(
        epochs=2, batch_size=8, learning_rate=5e-4, warmup_steps=1, interpolation_alphas=[0.0, 1.0]
    )
    tracking = Tracking(report_to=["tensorboard", "mlflow"], mlflow=str(store))
    train_model(str(tiny_model), [str(scifact_slice)], out, config, cache_dir=cache_dir, tracking=tracking)
    for epoch in (1, 2):  # TensorBoard event files inside the model folder, one folder per epoch
        assert list((out / "runs" / f"epoch-{epoch}").glob("events.out.tfevents.*"))
    client, runs = _runs(store)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 3 and len(children) == 2  # the training, and one nested run per epoch
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert parent.data.params["base_model"] == str(tiny_model) and parent.data.params["epochs"] == "2"
    record = json.loads((out / "irtune_training.json").read_text())
    dev = client.get_metric_history(parent.info.run_id, "dev.ndcg_at_10")
    assert [m.step for m in dev] == [0, 1, 2]
    assert dev[0].value == pytest.approx(record["selected"]["base_dev"]["ndcg@10"])
    assert parent.data.metrics["selected.alpha"] == record["selected"]["alpha"]
    assert all("loss" in child.data.metrics for child in children)  # the Trainer's own callback


def test_trackers_are_checked_before_anything_runs(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="unknown tracker 'neptune'"):
        Tracking(report_to=["neptune"])
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "mlflow" else real(name))
    with pytest.raises(IrtuneError, match="needs mlflow-skinny: pip install mlflow-skinny"):
        Tracking(mlflow=str(tmp_path)).check()
    result = runner.invoke(app, ["eval", "-d", "nowhere", "--mlflow", str(tmp_path / "mlruns")])
    assert isinstance(result.exception, IrtuneError) and "needs mlflow-skinny" in str(result.exception)
    assert not (tmp_path / "mlruns").exists()


def test_an_unreachable_tracking_server_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    base = write(tmp_path / "a" / "results.json", results_doc("base", LEVELS))
    tuned = write(tmp_path / "b" / "results.json", results_doc("tuned", LEVELS, shift=0.05, seed=1))
    result = runner.invoke(app, ["compare", str(base), str(tuned), "--mlflow", "http://127.0.0.1:9"])
    assert isinstance(result.exception, IrtuneError), result.exception
    assert str(result.exception).startswith("mlflow http://127.0.0.1:9: ")  # the parameter's name
    assert result.exception.naming(flag_names(["compare"])).startswith("--mlflow http://127.0.0.1:9: ")
    assert "\n" not in str(result.exception)


def test_an_mlflow_uri_for_training_means_reporting_to_it():
    assert Tracking(mlflow="runs/mlruns").report_to == ["mlflow"]
    assert Tracking(report_to=["tensorboard"], mlflow="x").report_to == ["tensorboard", "mlflow"]
