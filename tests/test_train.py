"""Fine-tuning end to end with a tiny model on a SciFact slice."""

from __future__ import annotations

import json

import pytest
import torch
from sentence_transformers import SentenceTransformer

from irtune.data.beir import BeirDataset
from irtune.errors import LeakageError
from irtune.evaluate import EvalSettings, evaluate_dataset
from irtune.models import TRAINING_METADATA, load_model
from irtune.train.config import TrainConfig
from irtune.train.trainer import train_model
from irtune.workflows import run_evaluation

FAST = dict(
    epochs=2,
    batch_size=8,
    learning_rate=5e-4,
    warmup_steps=2,
    selection_pool_k=20,
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
    alphas = [p["alpha"] for p in meta["selected"]["interpolation"]]
    assert alphas == [0.0, 0.5, 1.0]
    chosen = meta["selected"]["dev"]["ndcg@10"]
    assert chosen >= meta["selected"]["base_dev"]["ndcg@10"]  # never worse than base on dev
    assert chosen == max(p["dev"]["ndcg@10"] for p in meta["selected"]["interpolation"])
    SentenceTransformer(str(out), device="cpu")  # plain sentence-transformers can load it
    assert (out / "README.md").read_text().startswith("---")
    # the honest plan travels with the model, and `irtune eval` applies it by default
    assert (out / "irtune_splits" / "scifact.split.json").is_file()
    result = run_evaluation(str(out), [str(scifact_slice)], EvalSettings(cache_dir=cache_dir))
    assert result["datasets"][0]["queries"]["selection"] == "eval part of scifact.split.json"
    assert not result["contaminated"]
    # training and dev queries are disjoint, and the plan's dev slice came from train
    train_ids = set(meta["train_queries"][0]["ids"])
    assert meta["train_sets"][0]["split"] == "train" and meta["train_sets"][0]["subset_of_split"]
    assert 0 < len(train_ids) < 40


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
    entry = evaluate_dataset(dataset, EvalSettings(cache_dir=cache_dir), model).entry
    assert entry["contaminated"] and entry["contamination"]["overlap"][0]["queries"] == 30


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
        selection_pool_k=10,
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
    assert set(meta["curve"][0]["rows_left_out_for_false_negatives"]) == {"scifact", "nfcorpus"}


def test_gist_loss_guides_with_a_frozen_copy_of_the_base(tiny_model, scifact_slice, cache_dir, tmp_path):
    from irtune.train.trainer import _loss

    base = load_model(str(tiny_model), device="cpu")
    loss = _loss(base, TrainConfig(loss="gist", scale=20.0), gather=False)
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
