"""The typed training state: files written before it existed still load, and resume."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

import irtune.training.dev as dev_module
from irtune.errors import IrtuneError
from irtune.models.lineage import TRAINING_METADATA
from irtune.training.config import TrainConfig
from irtune.training.state import TrainingState
from irtune.training.trainer import train_model

# what the dict-based trainer wrote after one of two epochs, base and epoch 1 scored on dev
# and interpolation under way (keys in the order it inserted them)
OLD_STATE = {
    "completed_epochs": 1,
    "curve": [
        {
            "epoch": 1,
            "steps": 5,
            "rows_left_out_for_false_negatives": {"scifact:train": 0},
            "dev": {"ndcg@10": 0.61, "recall@100": 0.9, "per_dataset": {"scifact": {"ndcg@10": 0.61}}},
        }
    ],
    "loss": [{"epoch": 1, "step": 2, "loss": 2.5}, {"epoch": 1, "step": 4, "loss": 2.25}],
    "selection_key": "abc",
    "base_dev": {"ndcg@10": 0.5, "recall@100": 0.8, "per_dataset": {"scifact": {"ndcg@10": 0.5}}},
    "effective_warmup_steps": 1,
    "steps_done": 5,
    "wall_s": 12.5,
    "interpolation": [{"alpha": 0.0, "dev": {"ndcg@10": 0.5}}],
}


def test_an_old_state_dict_loads_with_every_field_and_writes_back_the_same(tmp_path):
    work = tmp_path / "_irtune_work"
    work.mkdir()
    (work / "state.json").write_text(json.dumps(OLD_STATE))
    state = TrainingState.load(tmp_path, resume=True)
    assert state.completed_epochs == 1 and state.steps_done == 5 and state.wall_s == 12.5
    assert state.curve[0].dev is not None and state.curve[0].dev["ndcg@10"] == 0.61
    assert state.loss[1].loss == 2.25 and state.interpolation[0].alpha == 0.0
    assert state.to_json() == OLD_STATE
    state.save(tmp_path)
    assert json.loads((work / "state.json").read_text()) == OLD_STATE
    # a fresh run's state: absent optional fields stay absent, as in the old file
    assert TrainingState().to_json() == {
        "completed_epochs": 0,
        "curve": [],
        "loss": [],
        "steps_done": 0,
        "wall_s": 0.0,
        "interpolation": [],
    }


def test_a_state_file_that_is_not_a_state_is_one_line(tmp_path):
    work = tmp_path / "_irtune_work"
    work.mkdir()
    (work / "state.json").write_text(json.dumps({**OLD_STATE, "completed_epochs": "one"}))
    with pytest.raises(IrtuneError, match=r"state.json: not a training state .*completed_epochs") as exc:
        TrainingState.load(tmp_path, resume=True)
    assert "\n" not in str(exc.value)
    with pytest.raises(IrtuneError, match="pass resume or use a new out_dir"):  # the CLI: --resume, --out
        TrainingState.load(tmp_path, resume=False)


def train_until_epoch_two(model, data, out, config, cache_dir, monkeypatch) -> None:
    """Train `config` into `out`, interrupted during epoch 2 (after the base's and epoch 1's
    dev scores), as Ctrl-C would; dev scoring is then restored."""
    real_score = dev_module.score_dev
    calls: list[str] = []

    def interrupt_in_epoch_two(*args, **kwargs):
        calls.append("dev")
        if len(calls) == 3:  # base dev, epoch 1, then: interrupted during epoch 2
            raise KeyboardInterrupt
        return real_score(*args, **kwargs)

    monkeypatch.setattr(dev_module, "score_dev", interrupt_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train_model(str(model), [str(data)], out, config, cache_dir=cache_dir)
    monkeypatch.setattr(dev_module, "score_dev", real_score)


def test_a_run_interrupted_under_the_old_state_format_resumes(
    tiny_model, scifact_slice, cache_dir, tmp_path, monkeypatch
):
    config = TrainConfig(
        epochs=2, batch_size=8, learning_rate=5e-4, warmup_steps=2, interpolation_alphas=[0.0, 0.5, 1.0]
    )
    out = tmp_path / "tuned"
    train_until_epoch_two(tiny_model, scifact_slice, out, config, cache_dir, monkeypatch)
    path = out / "_irtune_work" / "state.json"
    written = json.loads(path.read_text())
    # the same file as the dict-based trainer wrote: its keys in its order, and no
    # "interpolation" key before selection began
    old_keys = ("completed_epochs", "curve", "loss", "selection_key", "base_dev")
    old = {k: written[k] for k in (*old_keys, "effective_warmup_steps", "steps_done", "wall_s")}
    path.write_text(json.dumps(old, indent=2))
    assert old["completed_epochs"] == 1 and "dev" in old["curve"][0]

    real_score = dev_module.score_dev
    calls: list[str] = []
    monkeypatch.setattr(dev_module, "score_dev", lambda *a, **k: calls.append("dev") or real_score(*a, **k))
    train_model(str(tiny_model), [str(scifact_slice)], out, config, cache_dir=cache_dir, resume=True)
    meta = json.loads((out / TRAINING_METADATA).read_text())
    assert [p["epoch"] for p in meta["curve"]] == [1, 2]
    assert meta["curve"][0] == old["curve"][0]  # epoch 1 was not trained again
    assert meta["selected"]["base_dev"] == old["base_dev"]
    assert calls == ["dev", "dev"]  # epoch 2 and alpha 0.5 scored; the base was not scored again
    assert meta["loss"][: len(old["loss"])] == old["loss"]


def test_a_kill_while_saving_a_checkpoint_resumes_from_the_one_before(tiny_model, scifact_slice, tmp_path):
    """kill -9 of a real training process, its newest step checkpoint left as a kill during its
    writing leaves it (weights and trainer_state.json missing): the rerun with --resume must
    skip it, continue from the complete one before, and finish."""
    out, cache = tmp_path / "tuned", tmp_path / "cache"
    command = [
        sys.executable, "-m", "irtune", "train", "-m", str(tiny_model), "--train", str(scifact_slice),
        "--out", str(out), "--cache-dir", str(cache), "--epochs", "3", "--batch-size", "4",
        "--save-steps", "1", "--warmup-steps", "0", "--interpolation-alphas", "1",
    ]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    epoch_dir = out / "_irtune_work" / "epoch-1"
    while time.monotonic() < deadline and child.poll() is None:
        if len([c for c in epoch_dir.glob("checkpoint-*") if (c / "trainer_state.json").is_file()]) >= 1:
            break
        time.sleep(0.02)
    assert child.poll() is None, f"training ended before a checkpoint was seen: {child.stderr.read()}"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    complete = sorted(
        (c for c in out.glob("_irtune_work/epoch-*/checkpoint-*") if (c / "trainer_state.json").is_file()),
        key=lambda c: int(c.name.split("-")[1]),
    )
    assert complete
    newest = complete[-1]
    half = newest.with_name(f"checkpoint-{int(newest.name.split('-')[1]) + 1}")
    shutil.rmtree(half, ignore_errors=True)
    shutil.copytree(newest, half)
    for name in ("trainer_state.json", "model.safetensors"):
        for found in half.rglob(name):
            found.unlink()
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "incomplete (interrupted while saving)" in resumed.stderr
    meta = json.loads((out / TRAINING_METADATA).read_text())
    assert [p["epoch"] for p in meta["curve"]] == [1, 2, 3]


def test_training_shows_the_loss_on_its_progress_bar_not_raw_log_dicts(tiny_model, scifact_slice, tmp_path):
    command = [
        sys.executable, "-m", "irtune", "train", "-m", str(tiny_model), "--train", str(scifact_slice),
        "--out", str(tmp_path / "tuned"), "--cache-dir", str(tmp_path / "cache"), "--epochs", "1",
        "--batch-size", "4", "--warmup-steps", "0", "--interpolation-alphas", "1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    shown = result.stdout + result.stderr
    assert "{'loss'" not in shown and "'grad_norm'" not in shown
    assert re.search(r"step \d+/\d+: loss \d|loss=\d", shown), shown
    meta = json.loads((tmp_path / "tuned" / TRAINING_METADATA).read_text())
    assert meta["loss"]  # the losses are still recorded


def test_resuming_under_other_settings_is_refused_naming_the_first_that_differs(
    tiny_model, scifact_slice, cache_dir, tmp_path, monkeypatch
):
    """Epochs trained under one learning rate continued under another would be recorded as a
    run of the second: refused, naming the setting. Settings that do not move a number
    (checkpoint cadence) may change."""
    config = TrainConfig(
        epochs=2, batch_size=8, learning_rate=5e-4, warmup_steps=2, interpolation_alphas=[1.0]
    )
    out = tmp_path / "tuned"
    train_until_epoch_two(tiny_model, scifact_slice, out, config, cache_dir, monkeypatch)
    for changed, message in [
        ({"learning_rate": 1e-4}, r"learning_rate was 0\.0005, now 0\.0001"),
        ({"epochs": 3}, r"epochs was 2, now 3"),
        ({"max_positives_per_query": 1}, r"max_positives_per_query was null, now 1"),
    ]:
        other = config.model_copy(update=changed)
        with pytest.raises(
            IrtuneError, match=r"tuned: the unfinished run was started under other settings \("
        ) as exc:
            train_model(str(tiny_model), [str(scifact_slice)], out, other, cache_dir=cache_dir, resume=True)
        assert re.search(message, str(exc.value)) and "\n" not in str(exc.value)
    with pytest.raises(IrtuneError, match=r"the training data differ \(scifact:train\)"):
        other_data = tmp_path / "other" / scifact_slice.name
        shutil.copytree(scifact_slice, other_data)
        (other_data / "queries.jsonl").write_text(
            (other_data / "queries.jsonl").read_text().replace('"text": "', '"text": "changed ', 1)
        )
        train_model(str(tiny_model), [str(other_data)], out, config, cache_dir=cache_dir, resume=True)
    same = config.model_copy(update={"save_steps": 7})  # checkpoint cadence moves no number
    train_model(str(tiny_model), [str(scifact_slice)], out, same, cache_dir=cache_dir, resume=True)
    assert [p["epoch"] for p in json.loads((out / TRAINING_METADATA).read_text())["curve"]] == [1, 2]


def test_a_setting_added_since_the_run_started_reads_as_its_default(tmp_path):
    """A state from before irtune recorded `config.new` resumes while `new` is at its default;
    the order of the training sets and the number of processes are settings too."""
    recorded = {"config.epochs": "2", "train": '["a:train", "b:train"]', "processes": "4"}
    defaults = {"config.epochs": "5", "config.new": "null"}
    now = {**recorded, "config.new": "null"}
    TrainingState(settings=dict(recorded)).continue_under(now, tmp_path, defaults)
    for changed, said in [
        ({"config.new": "3"}, "new was null, now 3"),
        (
            {"train": '["b:train", "a:train"]'},
            'the training sets were ["a:train", "b:train"], now ["b:train", "a:train"]',
        ),
        ({"processes": "1"}, "it ran in 4 processes, now 1"),
    ]:
        with pytest.raises(IrtuneError) as exc:
            TrainingState(settings=dict(recorded)).continue_under({**now, **changed}, tmp_path, defaults)
        assert said in str(exc.value)
    fresh = TrainingState()
    fresh.continue_under(now, tmp_path, defaults)
    assert fresh.settings == now
