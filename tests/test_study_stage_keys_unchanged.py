"""A study's stage folders are named by the hashes of their inputs: the same study on the same
data names them as the code before the study was split into config, stages and runner did, so
a study finished then resumes without redoing a stage."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from types import SimpleNamespace

import irtune.study.stages as stages_module
from irtune.study.config import load_study
from irtune.study.runner import run_study
from irtune.study.stages import StudyInputs

STUDY = """
name = "fixed"
out_dir = "run"
data_dir = "data"

[model]
base = "model"

[evaluation]
datasets = ["scifact"]
retrievers = ["dense", "bm25"]

[training]
epochs = 1
batch_size = 8
learning_rate = 5e-4
warmup_steps = 1
interpolation_alphas = [1.0]

[[variants]]
name = "single"
train = ["scifact"]
"""


def test_a_fixed_study_keys_its_stages_as_the_code_before_the_split(
    tmp_path, tiny_model, scifact_slice, monkeypatch
):
    """Fixed inputs: relative paths, the base model keyed by a fixed hash (its saved bytes depend
    on the library versions) and run ids counted from 1."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(scifact_slice, tmp_path / "data" / "scifact")
    shutil.copytree(tiny_model, tmp_path / "model")
    (tmp_path / "study.toml").write_text(STUDY)
    monkeypatch.setattr(StudyInputs, "model", lambda self, spec: {"spec": spec, "files": {"w": "0" * 64}})
    ids = (SimpleNamespace(hex=f"{n:032x}") for n in itertools.count(1))
    monkeypatch.setattr(stages_module, "uuid", SimpleNamespace(uuid4=lambda: next(ids)))
    run_study(load_study(Path("study.toml")), cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in (tmp_path / "run" / "stages").iterdir()) == [
        "baseline-c5af3da214a6",
        "bm25-885fb1eb96dc",
        "eval-single-b792bbb58453",
        "report-e922d1d03c73",
        "splits-scifact-88eefc447d32",
        "train-single-9839d112098d",
    ]
