"""Hostile-but-fair studies and interrupted training (issue 25).

A study setting irtune cannot honour is refused in one line when the config is read, before
any stage runs (the table, in the style of `test_hostile_input.py`, whose checks it reuses).
An interrupted `train` names the exact command that resumes it, and that command does.
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
from pathlib import Path

import pytest
import test_hostile_input as table
from test_hostile_input import CORPUS, QUERIES, RUN_STUDY, Case, case

import irtune.training.dev as dev_module
from irtune.cli import app as cli
from irtune.errors import IrtuneError
from irtune.study.config import load_study

from conftest import write_beir

ONE_RUN = """
name = "one run"
out_dir = "{tmp}/study"

[evaluation]
datasets = ["ds"]
retrievers = [{retrievers}]
"""


def _study(tmp: Path, **parts: str) -> None:
    """The table's study (a variant `v` trained on `ds`) over a `ds` that has a train split."""
    write_beir(tmp / "data" / "ds", CORPUS, QUERIES, {"train": {"q1": {"d1": 1}}, "test": {"q2": {"d3": 2}}})
    table._study(tmp, **parts)


def _one_run(retrievers: str):
    def setup(tmp: Path) -> None:
        (tmp / "study.toml").write_text(ONE_RUN.format(tmp=tmp, retrievers=retrievers), encoding="utf-8")

    return setup


CASES = [
    # the study evaluated (and labelled) test whatever split it named
    case(
        *RUN_STUDY,
        message=("study.toml: evaluation.split: ", '"train" cannot be reported'),
        setup=lambda t: _study(t, evaluation='split = "train"'),
    ),
    case(
        *RUN_STUDY,
        message=("evaluation.split: ", '"dev" cannot be reported'),
        setup=lambda t: _study(t, evaluation='split = "dev"'),
    ),
    # repeated names failed at the report stage, after the baseline and the training
    case(
        *RUN_STUDY,
        message="evaluation.datasets: must not repeat a name ('ds' twice)",
        setup=lambda t: _study(t, datasets='"ds", "ds"'),
    ),
    case(
        *RUN_STUDY,
        message="variants.0.evaluate_on: must not repeat a name ('ds' twice)",
        setup=lambda t: _study(t, variant='evaluate_on = ["ds", "ds"]'),
    ),
    # `ds` trains on its train split, as `ds:train` does: refused by the training stage
    case(
        *RUN_STUDY,
        message="variants.v.train: 'ds' and 'ds:train' both train on ds:train",
        setup=lambda t: _study(t, train='"ds", "ds:train"'),
    ),
    # one run and nothing to compare it with: the report asked for a --baseline
    case(*RUN_STUDY, message="a study compares runs: ", setup=_one_run('"dense"')),
    case(*RUN_STUDY, message="a study compares runs: ", setup=_one_run('"bm25"')),
]


@pytest.mark.parametrize("hostile", CASES, ids=[table._case_id(c) + f"#{i}" for i, c in enumerate(CASES)])
def test_a_study_setting_it_cannot_honour_is_one_line_before_any_work(hostile: Case, tmp_path: Path):
    table.test_hostile_input_is_one_line_and_leaves_nothing_behind(hostile, tmp_path)


def test_a_study_of_two_runs_and_one_on_the_test_split_is_accepted(tmp_path: Path):
    """The refusals above leave the smallest studies that compare something alone."""
    table._workspace(tmp_path)
    _one_run('"dense", "bm25"')(tmp_path)
    assert load_study(tmp_path / "study.toml", tmp_path / "data").evaluation.retrievers == ["dense", "bm25"]
    _study(tmp_path, evaluation='split = "test"', train='"ds:train", "ds:test"')
    study = load_study(tmp_path / "study.toml", tmp_path / "data")
    assert study.evaluation.split == "test" and study.variants[0].train == ["ds:train", "ds:test"]


def test_a_repeated_training_set_in_a_group_is_refused_at_load(tmp_path: Path):
    table._workspace(tmp_path)
    _study(tmp_path, train='"mine", "ds:train"', variant='[groups]\nmine = ["ds"]')
    with pytest.raises(IrtuneError, match=r"variants.v.train: 'ds' and 'ds:train' both train on ds:train"):
        load_study(tmp_path / "study.toml", tmp_path / "data")


# --- train: Ctrl-C, then the command the message names


@pytest.fixture()
def in_process_cli(monkeypatch):
    """Run `cli.main()` here, as `irtune ARGS` would: (exit code, stderr lines)."""
    monkeypatch.setenv("IRTUNE_ALLOCATOR", "system")  # no re-exec under mimalloc
    sigterm = signal.getsignal(signal.SIGTERM)

    def invoke(args: list[str], capsys) -> tuple[int, list[str]]:
        monkeypatch.setattr(sys, "argv", ["irtune", *args])
        code = 0
        try:
            cli.main()
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            signal.signal(signal.SIGTERM, sigterm)
        return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]

    return invoke


def test_ctrl_c_in_train_names_the_command_that_resumes_it(
    tiny_model, scifact_slice, tmp_path, monkeypatch, capsys, in_process_cli
):
    out = tmp_path / "tuned"
    args = ["train", "-m", str(tiny_model), "--train", scifact_slice.name, "--out", str(out)]
    args += ["--data-dir", str(scifact_slice.parent), "--cache-dir", str(tmp_path / "cache")]
    args += ["--epochs", "2", "--batch-size", "8", "--interpolation-alphas", "1.0"]
    real_score = dev_module.score_dev
    calls = {"n": 0}

    def interrupted_in_epoch_two(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:  # the base, epoch 1, then Ctrl-C while epoch 2 is scored
            raise KeyboardInterrupt
        return real_score(*a, **kw)

    monkeypatch.setattr(dev_module, "score_dev", interrupted_in_epoch_two)
    code, lines = in_process_cli(args, capsys)
    assert code == 130, lines
    state = json.loads((out / "_irtune_work" / "state.json").read_text())
    assert state["completed_epochs"] == 1
    hint = lines[-1]
    assert hint.startswith("interrupted: ") and "resume with: irtune train " in hint, lines
    resume = shlex.split(hint.split("resume with: ", 1)[1])
    assert resume == ["irtune", *args, "--resume"]

    monkeypatch.setattr(dev_module, "score_dev", real_score)
    code, lines = in_process_cli(args, capsys)  # the same command again is refused, and says so
    assert code == 2 and lines[-1].endswith(
        "holds an unfinished training run; pass --resume or use a new --out"
    )
    code, lines = in_process_cli(resume[1:], capsys)
    assert code == 0, lines
    record = json.loads((out / "irtune_training.json").read_text())
    assert [point["epoch"] for point in record["curve"]] == [1, 2]
    assert record["curve"][0]["dev"] == state["curve"][0]["dev"]  # epoch 1 was not trained again
