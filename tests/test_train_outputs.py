"""Training output folders: nothing of the user's is overwritten, and what ships is readable."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from irtune.errors import IrtuneError
from irtune.models.lineage import TRAINING_METADATA
from irtune.training.config import TrainConfig
from irtune.training.seed_runs import SEEDS_RECORD, train_over_seeds
from irtune.training.trainer import train_model

from conftest import assert_one_line_error, irtune
from results_fixtures import training_summary

QUICK = TrainConfig(epochs=1, batch_size=8, warmup_steps=1, interpolation_alphas=[1.0])


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def base_copy(tiny_model, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_model, tmp_path / "outer" / "base"))


@pytest.mark.parametrize(
    ("out", "problem"),
    [
        ("outer/base", "is the base model's folder"),
        ("outer/base/sub", "is inside the base model's folder"),
        ("outer", "holds the base model's folder"),
    ],
)
def test_the_base_models_folder_is_never_the_output(base_copy, scifact_slice, tmp_path, out, problem):
    before = _contents(base_copy)
    with pytest.raises(IrtuneError, match=problem) as exc:
        train_model(str(base_copy), [str(scifact_slice)], tmp_path / out, QUICK, cache_dir=tmp_path / "c")
    assert "\n" not in str(exc.value) and str(tmp_path / out) in str(exc.value)
    assert _contents(base_copy) == before
    assert not (base_copy / "sub").exists()


@pytest.mark.parametrize(
    "files",
    [
        {"README.md": "my notes\n", "config.json": '{"mine": true}\n'},  # a user's folder
        {"results.json": "{}\n", "runs/tiny/run.json": "{}\n"},  # another command's results
    ],
)
def test_a_folder_irtune_train_did_not_write_is_refused(tiny_model, scifact_slice, tmp_path, files):
    out = tmp_path / "userdir"
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    before = _contents(out)
    for resume in (False, True):
        with pytest.raises(IrtuneError, match="holds files irtune train did not write") as exc:
            train_model(
                str(tiny_model), [str(scifact_slice)], out, QUICK, cache_dir=tmp_path / "c", resume=resume
            )
        assert "\n" not in str(exc.value)
    assert _contents(out) == before and sorted(p.name for p in out.iterdir()) == sorted(
        {Path(name).parts[0] for name in files}
    )


@pytest.mark.parametrize("exists", [True, False])
def test_resume_with_nothing_to_resume_is_refused(tiny_model, scifact_slice, tmp_path, exists):
    out = tmp_path / "empty"
    if exists:
        out.mkdir()
    with pytest.raises(IrtuneError, match="holds no unfinished training run; start one without resume"):
        train_model(str(tiny_model), [str(scifact_slice)], out, QUICK, cache_dir=tmp_path / "c", resume=True)
    assert out.exists() == exists and (not exists or not any(out.iterdir()))


def test_the_cli_refuses_a_users_folder_in_one_line_naming_the_flags(tiny_model, scifact_slice, tmp_path):
    out = tmp_path / "userdir"
    out.mkdir()
    (out / "README.md").write_text("mine\n")
    result = irtune(
        "train", "-m", str(tiny_model), "--train", str(scifact_slice), "--out", str(out), "--epochs", "1"
    )
    assert_one_line_error(result, f"--out {out}: holds files irtune train did not write (README.md)")
    empty = tmp_path / "empty"
    result = irtune(
        "train", "-m", str(tiny_model), "--train", str(scifact_slice), "--out", str(empty), "--resume"
    )
    assert_one_line_error(result, "start one without --resume")


def test_a_trained_model_is_readable_by_everyone(tiny_model, scifact_slice, tmp_path):
    """safetensors writes model.safetensors 0600; a shipped model gets the umask's usual mode."""
    umask = os.umask(0o022)
    try:
        out = train_model(
            str(tiny_model), [str(scifact_slice)], tmp_path / "tuned", QUICK, cache_dir=tmp_path / "c"
        )
    finally:
        os.umask(umask)
    modes = {
        str(p.relative_to(out)): oct(stat.S_IMODE(p.stat().st_mode)) for p in out.rglob("*") if p.is_file()
    }
    assert "model.safetensors" in modes and set(modes.values()) == {"0o644"}, modes


# --- train over seeds: a fake run per seed (a model folder with a training record) ---


def _fake_runs(scores: dict[int, float], extra: dict[int, str] | None = None, calls: list | None = None):
    """`train_one` for `train_over_seeds`: writes a model folder whose record has `scores[seed]`
    as its dev score (and the file `extra[seed]`, if any)."""

    def train_one(run: TrainConfig, folder: Path, resume: bool) -> Path:
        if calls is not None:
            calls.append((run.seed, resume))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.safetensors").write_text(f"weights of seed {run.seed}\n")
        if extra and run.seed in extra:
            (folder / extra[run.seed]).write_text("only in this run\n")
        record = training_summary(("scifact",))  # a valid record: the shipped seed is read typed
        record |= {"weights_sha256": f"{run.seed:064d}", "train_queries": []}
        record["config"]["seed"] = run.seed
        record["selected"]["dev"] = {"ndcg@10": scores[run.seed]}
        (folder / TRAINING_METADATA).write_text(json.dumps(record))
        return folder

    return train_one


def test_seeds_never_overwrite_a_finished_single_run(tmp_path):
    out = tmp_path / "tuned"
    out.mkdir()
    (out / "model.safetensors").write_text("the user's trained weights\n")
    (out / TRAINING_METADATA).write_text(json.dumps({"config": {"seed": 7}}))
    before = _contents(out)
    calls: list = []
    for resume in (False, True):
        with pytest.raises(IrtuneError, match="already holds a finished trained model") as exc:
            train_over_seeds(
                _fake_runs({1: 0.5, 2: 0.6}, calls=calls), TrainConfig(seeds=[1, 2]), out, resume
            )
        assert "\n" not in str(exc.value)
    assert calls == [] and _contents(out) == before


def test_seeds_never_overwrite_a_run_over_other_seeds(tmp_path):
    out = tmp_path / "tuned"
    train_over_seeds(_fake_runs({1: 0.5, 2: 0.6}), TrainConfig(seeds=[1, 2]), out, False)
    before = _contents(out)
    calls: list = []
    for resume in (False, True):
        with pytest.raises(IrtuneError, match=r"holds a training run over seeds \[1, 2\], not \[1, 3\]"):
            train_over_seeds(
                _fake_runs({1: 0.5, 3: 0.9}, calls=calls), TrainConfig(seeds=[1, 3]), out, resume
            )
    assert calls == [] and _contents(out) == before
    with pytest.raises(IrtuneError, match="already holds a finished training run over seeds; pass resume"):
        train_over_seeds(_fake_runs({1: 0.5, 2: 0.6}, calls=calls), TrainConfig(seeds=[1, 2]), out, False)
    with pytest.raises(IrtuneError, match="holds no unfinished training run; start one without resume"):
        train_over_seeds(_fake_runs({1: 0.5}), TrainConfig(seeds=[1, 2]), tmp_path / "new", True)


def test_seeds_ship_a_clean_copy_under_the_folder_lock(tmp_path):
    out = tmp_path / "tuned"
    out.mkdir()
    held: list[bool] = []

    def locked(run: TrainConfig, folder: Path, resume: bool) -> Path:
        fd = os.open(out, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.append(False)
        except BlockingIOError:
            held.append(True)
        finally:
            os.close(fd)
        return _fake_runs({1: 0.5, 2: 0.6}, extra={2: "tokenizer.json"})(run, folder, resume)

    train_over_seeds(locked, TrainConfig(seeds=[1, 2]), out, False)
    assert held == [True, True]
    assert (out / "model.safetensors").read_text() == "weights of seed 2\n" and (
        out / "tokenizer.json"
    ).exists()
    # seed 2's run is retrained and now loses on dev: seed 1 ships, and nothing of seed 2's copy stays
    shutil.rmtree(out / "seeds" / "seed-2")
    train_over_seeds(_fake_runs({1: 0.5, 2: 0.4}), TrainConfig(seeds=[1, 2]), out, True)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["model.safetensors", TRAINING_METADATA, SEEDS_RECORD, "seeds"]
    )
    assert _contents(out / "seeds" / "seed-1").items() <= _contents(out).items()
    assert json.loads((out / SEEDS_RECORD).read_text())["shipped"]["seed"] == 1
