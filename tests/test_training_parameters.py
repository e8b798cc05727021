"""Training errors name the library's parameters; each interface shows them its own way: the
CLI's `irtune train` the flag the user typed, `irtune run` the study's own key."""

from __future__ import annotations

import json

import pytest

from irtune.cli.app import flag_names
from irtune.errors import LeakageError, ParameterError
from irtune.models.lineage import TRAINING_METADATA
from irtune.training.choose import select_and_interpolate
from irtune.training.config import TrainConfig
from irtune.training.dev import check_selection_key
from irtune.training.plan import guard_leakage, resolve_train_sets
from irtune.training.push import push_model
from irtune.training.run import TrainingRun
from irtune.training.state import WORK, CurvePoint, TrainingState
from irtune.training.trainer import train_model

from conftest import assert_one_line_error, irtune

TRAIN = flag_names(["train"])
STUDY = flag_names(["run", "study.toml"])


def _raised(call, *args, **kwargs) -> ParameterError:
    with pytest.raises(ParameterError) as exc:
        call(*args, **kwargs)
    return exc.value


def test_an_output_folder_that_is_a_file_names_the_parameter(tiny_model, scifact_slice, tmp_path):
    """A study's model folder is no `--out`: `irtune run` names its own key (the folder shown)."""
    file = tmp_path / "file.txt"
    file.write_text("mine\n")
    error = _raised(train_model, str(tiny_model), [str(scifact_slice)], file, TrainConfig())
    assert str(error) == f"out_dir {file}: is a file, not a folder"
    assert error.naming(TRAIN) == f"--out {file}: is a file, not a folder"
    assert error.naming(STUDY) == f"out_dir {file}: is a file, not a folder"
    error = _raised(
        train_model, str(tiny_model), [str(scifact_slice)], tmp_path / "new", TrainConfig(), cache_dir=file
    )
    assert str(error) == f"cache_dir {file}: is a file, not a folder"
    assert error.naming(TRAIN) == error.naming(STUDY) == f"--cache-dir {file}: is a file, not a folder"


def test_a_folder_holding_a_training_run_names_out_dir_and_resume(tmp_path):
    finished = tmp_path / "finished"
    finished.mkdir()
    (finished / TRAINING_METADATA).write_text("{}")
    error = _raised(TrainingState.load, finished, False)
    assert str(error) == f"{finished}: already holds a finished trained model (use a new out_dir)"
    assert error.naming(TRAIN).endswith("(use a new --out)")

    unfinished = tmp_path / "unfinished"
    (unfinished / WORK).mkdir(parents=True)
    TrainingState(completed_epochs=1).save(unfinished)
    error = _raised(TrainingState.load, unfinished, False)
    assert str(error) == f"{unfinished}: holds an unfinished training run; pass resume or use a new out_dir"
    assert error.naming(TRAIN).endswith("; pass --resume or use a new --out")

    state = TrainingState.path(unfinished)
    state.write_text("{not json")
    error = _raised(TrainingState.load, unfinished, True)
    assert str(error).startswith(f"{state}: not JSON (") and str(error).endswith("); use a new out_dir")
    state.write_text(json.dumps({"completed_epochs": "one"}))
    error = _raised(TrainingState.load, unfinished, True)
    assert str(error).startswith(f"{state}: not a training state this irtune can resume (completed_epochs: ")
    assert error.naming(TRAIN).endswith("; use a new --out")


def test_dev_scores_that_cannot_be_reused_name_out_dir(tmp_path):
    state = TrainingState(completed_epochs=1, selection_key="other")
    error = _raised(check_selection_key, state, "this", tmp_path)
    assert str(error) == (
        f"{tmp_path}: the interrupted run scored dev under another selection setup (dev queries, "
        "documents, precision or base model); use a new out_dir"
    )
    assert error.naming(TRAIN).endswith("; use a new --out")

    point = CurvePoint(epoch=1, steps=3, rows_left_out_for_false_negatives={})
    no_base = TrainingState(completed_epochs=1, curve=[point])
    dev_sets: list = [object()]  # any dev set: the state is refused before it is read
    run = TrainingRun("base", ("scifact",), tmp_path, TrainConfig())
    error = _raised(select_and_interpolate, run, None, {}, no_base, dev_sets)
    assert str(error) == f"{tmp_path}: the base model's dev scores are missing; use a new out_dir"
    no_epoch_score = no_base.model_copy(update={"base_dev": {"ndcg@10": 0.5}})
    error = _raised(select_and_interpolate, run, None, {}, no_epoch_score, dev_sets)
    assert str(error) == "epoch 1 has no dev scores; use a new out_dir"
    assert error.naming(TRAIN) == "epoch 1 has no dev scores; use a new --out"


def test_no_training_data_names_the_datasets_parameter():
    error = _raised(resolve_train_sets, [], TrainConfig())
    assert str(error) == "no training data: give datasets (DATASET[:SPLIT] or a preset)"
    assert error.naming(TRAIN) == "no training data: give --train (DATASET[:SPLIT] or a preset)"


def test_leakage_is_refused_naming_allow_leakage(scifact_slice):
    train_sets = resolve_train_sets([f"{scifact_slice}:test"], TrainConfig())
    with pytest.raises(LeakageError) as exc:
        guard_leakage(train_sets, allow=False)
    expected = (
        "refusing to train: 30 of the 30 queries evaluated on scifact:test are in training queries "
        "of scifact:test (30 by id, 30 by text). Pass {} to train anyway: every result will be "
        "marked contaminated."
    )
    assert str(exc.value) == expected.format("allow_leakage")
    assert isinstance(exc.value, ParameterError)
    assert exc.value.naming(TRAIN) == expected.format("--allow-leakage")
    assert exc.value.naming(STUDY) == expected.format("allow_leakage")  # the study's [training] key


def test_a_repo_id_without_owner_names_repo_id(tmp_path):
    (tmp_path / TRAINING_METADATA).write_text("{}")
    error = _raised(push_model, tmp_path, "tuned")
    assert str(error) == "repo_id 'tuned': expected OWNER/NAME"
    assert error.naming(flag_names(["push"])) == "--repo-id 'tuned': expected OWNER/NAME"


def test_the_cli_shows_the_flags(tiny_model, tmp_path):
    file = tmp_path / "file.txt"
    file.write_text("mine\n")
    result = irtune("train", "-m", str(tiny_model), "--train", "scifact", "--out", str(file))
    assert_one_line_error(result, f"--out {file}: is a file, not a folder")
    result = irtune("train", "-m", str(tiny_model), "--out", str(tmp_path / "t"))
    assert_one_line_error(result, "no training data: give --train (DATASET[:SPLIT] or a preset)")
    result = irtune("push", str(file.parent), "--repo-id", "tuned")
    assert_one_line_error(result, "not an irtune model folder")
    (tmp_path / TRAINING_METADATA).write_text("{}")
    result = irtune("push", str(tmp_path), "--repo-id", "tuned")
    assert_one_line_error(result, "--repo-id 'tuned': expected OWNER/NAME")
