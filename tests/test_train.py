"""Fine-tuning end to end with a tiny model on a SciFact slice."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from sentence_transformers import SentenceTransformer

import irtune.training.dev as dev_module
from irtune.data.beir import BeirDataset
from irtune.data.splits import load_plan
from irtune.errors import IrtuneError, LeakageError
from irtune.evaluation.job import EvaluationJob, run_evaluation
from irtune.evaluation.runner import evaluate_dataset
from irtune.models.lineage import TRAINING_METADATA
from irtune.models.loading import load_model
from irtune.retrieval.settings import RetrievalSettings
from irtune.training.config import TrainConfig
from irtune.training.losses import build_loss
from irtune.training.selection import PoolSettings, build_dev_set, score_dev
from irtune.training.trainer import BASE_WEIGHTS_SHIPPED, train_model

FAST = dict(
    epochs=2,
    batch_size=8,
    learning_rate=5e-4,
    warmup_steps=2,
    interpolation_alphas=[0.0, 0.5, 1.0],
    hard_negatives=True,
    negatives_range_max=20,
)


def test_train_writes_a_loadable_selected_model(tiny_model, scifact_slice, cache_dir, tmp_path):
    out = tmp_path / "tuned"
    train_model(str(tiny_model), [str(scifact_slice)], out, TrainConfig(**FAST), cache_dir=cache_dir)
    meta = json.loads((out / TRAINING_METADATA).read_text())
    assert not meta["contaminated"]
    assert [p["epoch"] for p in meta["curve"]] == [1, 2]
    assert meta["loss"], "loss curve recorded"
    selected = meta["selected"]
    alphas = [p["alpha"] for p in selected["interpolation"]]
    assert alphas == [0.0, 0.5, 1.0]
    # every candidate and the base were scored on the same documents: the whole corpus
    dataset = BeirDataset(scifact_slice)
    documents = selected["dev_documents"]["scifact"]
    assert documents["kind"] == "full corpus" and documents["documents"] == len(dataset.doc_ids)
    # the base's dev score is its own score on those documents, re-computed independently
    plan = load_plan(out / "irtune_splits" / "scifact.split.json")
    dev = build_dev_set(dataset, plan.dev, PoolSettings(), exclude=frozenset(meta["train_queries"][0]["ids"]))
    assert documents["queries"] == len(dev.qids) > 0
    rescored = score_dev(load_model(str(tiny_model), device="cpu"), [dev], "fp32", 32, cache_dir)
    assert rescored["ndcg@10"] == pytest.approx(selected["base_dev"]["ndcg@10"], abs=1e-9)
    chosen = selected["dev"]["ndcg@10"]
    assert chosen == max(p["dev"]["ndcg@10"] for p in selected["interpolation"])
    SentenceTransformer(str(out), device="cpu")  # plain sentence-transformers can load it
    assert (out / "README.md").read_text().startswith("---")
    # the honest plan travels with the model, and `irtune eval` applies it by default
    assert (out / "irtune_splits" / "scifact.split.json").is_file()
    result = run_evaluation(
        EvaluationJob(str(out), [str(scifact_slice)], RetrievalSettings(cache_dir=cache_dir))
    )
    assert result.datasets[0].queries.selection == "eval part of scifact.split.json"
    assert not result.contaminated
    # training, dev and evaluated queries are disjoint; dev is a slice of train, eval is test
    train_ids = set(meta["train_queries"][0]["ids"])
    assert meta["train_sets"][0]["split"] == "train" and meta["train_sets"][0]["subset_of_split"]
    assert train_ids == set(plan.train.query_ids) and not train_ids & plan.dev.query_ids
    assert set(dev.qids) <= plan.dev.query_ids and (plan.dev.split, plan.eval.split) == ("train", "test")
    assert set(result.datasets[0].per_query) == set(dataset.relevant_queries("test"))


def test_leakage_is_refused_then_marked(tiny_model, scifact_slice, cache_dir, tmp_path):
    config = TrainConfig(**{**FAST, "epochs": 1, "hard_negatives": False})
    with pytest.raises(LeakageError, match=r"30 of the 30 queries evaluated on scifact:test"):
        train_model(str(tiny_model), [f"{scifact_slice}:test"], tmp_path / "a", config, cache_dir=cache_dir)
    out = tmp_path / "b"
    leaky = config.model_copy(update={"allow_leakage": True})
    train_model(str(tiny_model), [f"{scifact_slice}:test"], out, leaky, cache_dir=cache_dir)
    meta = json.loads((out / TRAINING_METADATA).read_text())
    assert meta["contaminated"] and meta["leakage"][0]["queries"] == 30
    model = load_model(str(out), device="cpu")
    dataset = BeirDataset(scifact_slice)
    entry = evaluate_dataset(dataset, RetrievalSettings(cache_dir=cache_dir), model).result
    assert entry.contaminated and entry.contamination.overlap[0]["queries"] == 30


def test_two_process_ddp_training_on_cpu(tiny_model, scifact_slice, tmp_path):
    """torchrun with 2 CPU processes (gloo): DDP training, rank 0 writes the model."""
    import subprocess
    import sys

    config = tmp_path / "train.toml"
    config.write_text("epochs = 1\nbatch_size = 4\nselect_on_dev = false\nwarmup_steps = 1\n")
    out = tmp_path / "ddp"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "irtune",
            "train",
            "-m",
            str(tiny_model),
            "--train",
            str(scifact_slice),
            "--out",
            str(out),
            "--config",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    meta = json.loads((out / TRAINING_METADATA).read_text())
    assert meta["selected"]["criterion"] == "last epoch (no dev queries)"
    # 2 ranks x batch 4: each step covers 8 pairs, so an epoch takes about half the steps
    n_pairs = sum(1 for _ in meta["train_queries"][0]["ids"])
    assert meta["curve"][0]["steps"] <= (n_pairs + 7) // 8 + 2
    SentenceTransformer(str(out), device="cpu")


def test_multi_dataset_cached_mnrl_with_per_dataset_batches(
    tiny_model, scifact_slice, nfcorpus_slice, cache_dir, tmp_path
):
    config = TrainConfig(
        epochs=1,
        batch_size=8,
        loss="cached_mnrl",
        mini_batch_size=4,
        warmup_steps=1,
        multi_dataset_sampler="round_robin",
        max_positives_per_query=2,
        interpolation_alphas=[0.0, 1.0],
    )
    out = tmp_path / "multi"
    train_model(str(tiny_model), [str(scifact_slice), str(nfcorpus_slice)], out, config, cache_dir=cache_dir)
    meta = json.loads((out / TRAINING_METADATA).read_text())
    assert [t["dataset"] for t in meta["train_sets"]] == ["scifact", "nfcorpus"]
    nf = meta["train_sets"][1]
    assert (nf["split"], nf["plan"]["dev"], nf["plan"]["eval"]) == ("train", "dev", "test")
    assert set(meta["selected"]["base_dev"]["per_dataset"]) == {"scifact", "nfcorpus"}
    assert meta["config"]["loss"] == "cached_mnrl"
    assert set(meta["curve"][0]["rows_left_out_for_false_negatives"]) == {"scifact:train", "nfcorpus:train"}


def test_one_dataset_from_two_splits_trains_on_both(tiny_model, nfcorpus_slice, cache_dir, tmp_path):
    """Sources used to be keyed by dataset name: the second silently replaced the first."""
    config = TrainConfig(
        epochs=1, batch_size=4, warmup_steps=1, select_on_dev=False, max_positives_per_query=1
    )
    out = tmp_path / "two"
    specs = [f"{nfcorpus_slice}:train", f"{nfcorpus_slice}:dev"]
    train_model(str(tiny_model), specs, out, config, cache_dir=cache_dir)
    meta = json.loads((out / TRAINING_METADATA).read_text())
    assert [t["split"] for t in meta["train_sets"]] == ["train", "dev"]
    left_out = meta["curve"][0]["rows_left_out_for_false_negatives"]
    assert set(left_out) == {"nfcorpus:train", "nfcorpus:dev"}
    dataset = BeirDataset(nfcorpus_slice)
    rows = len(dataset.relevant_queries("train")) + len(dataset.relevant_queries("dev"))
    trained_rows = rows - sum(left_out.values())
    assert meta["curve"][0]["steps"] >= -(-trained_rows // 4) - 1  # both splits' rows were stepped through


def test_gist_loss_guides_with_a_frozen_copy_of_the_base(tiny_model, scifact_slice, cache_dir, tmp_path):
    base = load_model(str(tiny_model), device="cpu")
    loss = build_loss(base, TrainConfig(loss="gist", scale=20.0), gather=False)
    assert loss.guide is not base.model and loss.temperature == pytest.approx(0.05)
    assert not any(p.requires_grad for p in loss.guide.parameters())
    before = next(loss.guide.parameters()).detach().clone()
    with torch.no_grad():
        next(base.model.parameters()).add_(1.0)  # training moves the model, never the guide
    assert torch.equal(next(loss.guide.parameters()), before)

    out = tmp_path / "gist"
    config = TrainConfig(**{**FAST, "epochs": 1, "loss": "gist", "hard_negatives": False})
    train_model(str(tiny_model), [str(scifact_slice)], out, config, cache_dir=cache_dir)
    meta = json.loads((out / TRAINING_METADATA).read_text())
    assert meta["config"]["loss"] == "gist" and meta["loss"]
    assert meta["curve"][0]["dev"]["ndcg@10"] != meta["selected"]["base_dev"]["ndcg@10"]  # it trained
    SentenceTransformer(str(out), device="cpu")


def test_when_no_candidate_beats_the_base_its_weights_ship_and_say_so(
    tiny_model, scifact_slice, cache_dir, tmp_path, monkeypatch, caplog
):
    real_score = dev_module.score_dev
    base_hash = load_model(str(tiny_model), device="cpu").weights_sha256

    def candidates_lose(model, *args, **kwargs):
        scores = real_score(model, *args, **kwargs)
        if model.weights_sha256 != base_hash:  # every fine-tuned candidate scores below the base
            scores = {**scores, "ndcg@10": -1.0}
        return scores

    monkeypatch.setattr(dev_module, "score_dev", candidates_lose)
    out = tmp_path / "base-wins"
    config = TrainConfig(**{**FAST, "epochs": 1, "hard_negatives": False, "interpolation_alphas": [0.5, 1.0]})
    train_model(str(tiny_model), [str(scifact_slice)], out, config, cache_dir=cache_dir)
    meta = json.loads((out / TRAINING_METADATA).read_text())
    assert meta["selected"]["alpha"] == 0.0 and meta["selected"]["shipped"] == "base"
    assert [p["alpha"] for p in meta["selected"]["interpolation"]] == [
        0.0,
        0.5,
        1.0,
    ]  # base always a candidate
    assert load_model(str(out), device="cpu").weights_sha256 == base_hash
    assert "these are the base model's weights, unchanged" in (out / "README.md").read_text()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert BASE_WEIGHTS_SHIPPED in warnings  # said on the terminal (the CLI shows warnings)


def test_resume_refuses_dev_scores_from_another_selection_setup(
    tiny_model, scifact_slice, cache_dir, tmp_path
):
    out = tmp_path / "resumed"
    work = out / "_irtune_work"
    work.mkdir(parents=True)
    # an interrupted run whose dev scores were computed another way (e.g. the old base-top-k pool)
    state = {
        "completed_epochs": 1,
        "curve": [],
        "loss": [],
        "base_dev": {"ndcg@10": 0.5},
        "selection_key": "x",
    }
    (work / "state.json").write_text(json.dumps(state))
    config = TrainConfig(**{**FAST, "epochs": 2, "hard_negatives": False})
    with pytest.raises(IrtuneError, match="scored dev under another selection setup"):
        train_model(str(tiny_model), [str(scifact_slice)], out, config, cache_dir=cache_dir, resume=True)


def test_an_epoch_resumed_from_its_checkpoint_keeps_the_loss_logged_before_it(
    tiny_model, scifact_slice, cache_dir, tmp_path, monkeypatch
):
    """The training-loss chart of a run interrupted mid-epoch has every step, not only those
    after the checkpoint it resumed from (the Trainer restores them with its state)."""
    import irtune.training.loop as loop_module

    config = TrainConfig(**{**FAST, "epochs": 1, "save_steps": 2, "interpolation_alphas": [1.0]})
    uninterrupted = tmp_path / "whole"
    train_model(str(tiny_model), [str(scifact_slice)], uninterrupted, config, cache_dir=cache_dir)
    steps = [p["step"] for p in json.loads((uninterrupted / TRAINING_METADATA).read_text())["loss"]]
    assert len(steps) >= 4 and steps == list(range(1, len(steps) + 1))

    class Interrupt(loop_module.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:  # after checkpoint-2 was written
                raise KeyboardInterrupt

    real = loop_module.readable_progress

    def interrupted(trainer):
        real(trainer)
        trainer.add_callback(Interrupt())

    out = tmp_path / "resumed"
    monkeypatch.setattr(loop_module, "readable_progress", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_model(str(tiny_model), [str(scifact_slice)], out, config, cache_dir=cache_dir)
    assert (out / "_irtune_work" / "epoch-1" / "checkpoint-2").is_dir()
    monkeypatch.setattr(loop_module, "readable_progress", real)
    train_model(str(tiny_model), [str(scifact_slice)], out, config, cache_dir=cache_dir, resume=True)
    resumed = json.loads((out / TRAINING_METADATA).read_text())["loss"]
    assert [p["step"] for p in resumed] == steps
