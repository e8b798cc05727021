"""A results file's training summary is typed: validated when the file is read (a key the report
needs that is missing is one line naming the file and the key, never a blank cell), and a
summary written by the last release (0.1.0) reads and reports as it did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from irtune.errors import DataError
from irtune.reporting.training import training_rows
from irtune.results.schema import read_results

from results_fixtures import LEVELS, results_doc, training_summary, write

RELEASED_SUMMARY = Path(__file__).parent / "data" / "training_summary_0.1.0.json"


def _tuned_doc(summary: dict) -> dict:
    doc = results_doc("tuned", {"scifact": LEVELS["scifact"]}, trained_on=("scifact",))
    doc["model"]["training"] = summary
    return doc


@pytest.mark.parametrize(
    ("where", "key"),
    [
        (("selected",), "criterion"),
        (("config",), "loss"),
        (("config",), "num_negatives"),
        (("config",), "max_steps"),
        (("train_sets", 0, "plan"), "method"),
        ((), "protocol"),
    ],
)
def test_a_summary_without_a_key_the_report_needs_is_refused_on_reading(tmp_path, where, key):
    summary = training_summary(("scifact",))
    part = summary
    for step in where:
        part = part[step]
    del part[key]
    path = write(tmp_path / "tuned" / "results.json", _tuned_doc(summary))
    field = ".".join(str(step) for step in ("model", "training", *where, key))
    with pytest.raises(DataError) as raised:
        read_results(path)
    assert str(raised.value) == f"{path}: invalid results file ({field}: Field required)"


def test_a_summary_of_the_last_release_reads_and_reports_as_it_did(tmp_path):
    summary = json.loads(RELEASED_SUMMARY.read_text(encoding="utf-8"))
    result = read_results(write(tmp_path / "tuned" / "results.json", _tuned_doc(summary)))
    assert result.model is not None and result.model.training is not None
    assert training_rows(result.model.training) == [
        (
            "trained on",
            "scifact:train (held-out subset): 646 queries (train split with a held-out dev slice; "
            "test reported)",
        ),
        ("protocol", "honest"),
        ("loss and schedule", "mnrl, 1 epoch, batch 32, learning rate 3e-05, warmup 10 steps"),
        ("hard negatives", "1 per row, mined from the base model's ranks 0–50, relative margin 0.05"),
        (
            "selection",
            "dev ndcg@10, every candidate and the base scored on the same documents; scifact: "
            "161 dev queries over full corpus (5,183 documents)",
        ),
        ("shipped", "epoch 1, interpolation α 1.0 (fine-tuned); dev NDCG@10 0.6812 (base) → 0.7084"),
        ("training wall time", "530 s"),
    ]
