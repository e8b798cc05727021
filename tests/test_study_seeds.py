"""A variant trained over several seeds: which run ships is read from the runs' training records,
through their type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from irtune.errors import DataError
from irtune.study.runner import _record_shipped_seed
from irtune.training.config import TrainConfig


def test_a_damaged_training_record_is_one_line_naming_it_not_a_silent_choice(tmp_path):
    """Old code read `irtune_training.json` as bare JSON: a record that lost its fields still
    chose the shipped seed by whatever dev score it held."""
    runs = []
    for seed in (1, 2):
        trained = tmp_path / f"train-{seed}"
        (trained / "model").mkdir(parents=True)
        record = {"selected": {"dev": {"ndcg@10": 0.1 * seed}}}  # no base model, weights, ...
        (trained / "model" / "irtune_training.json").write_text(json.dumps(record))
        runs.append((TrainConfig(seed=seed), trained, tmp_path / f"eval-{seed}"))
    with pytest.raises(DataError, match=r"train-1/model/irtune_training.json: invalid training record \("):
        _record_shipped_seed(tmp_path / "v.seeds.json", "v", runs)
    assert not Path(tmp_path / "v.seeds.json").exists()
