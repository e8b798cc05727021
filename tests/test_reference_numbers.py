"""Full-dataset checks against published MTEB figures (minutes each: `pytest -m slow`)."""

from __future__ import annotations

import pytest

from irtune.data.beir import BeirDataset
from irtune.evaluation.runner import evaluate_dataset
from irtune.models.loading import load_model
from irtune.retrieval.settings import RetrievalSettings

from conftest import shared_dataset

pytestmark = pytest.mark.slow

MINILM = {
    "scifact": {"ndcg@10": 0.6451, "ndcg@100": 0.6766, "map@100": 0.6031, "recall@100": 0.9250},
    "nfcorpus": {"ndcg@10": 0.3159, "ndcg@100": 0.2945, "map@100": 0.1424, "recall@100": 0.3115},
}


@pytest.mark.parametrize("name", ["scifact", "nfcorpus"])
def test_bundled_minilm_reproduces_mteb(name, tmp_path):
    entry = evaluate_dataset(
        BeirDataset(shared_dataset(name)), RetrievalSettings(cache_dir=tmp_path), load_model("minilm")
    ).result
    for metric, expected in MINILM[name].items():
        assert entry.metrics[metric] == pytest.approx(expected, abs=0.001), metric


def test_bm25_reproduces_the_mteb_bm25s_baseline():
    entry = evaluate_dataset(
        BeirDataset(shared_dataset("scifact")), RetrievalSettings(retriever="bm25")
    ).result
    assert entry.metrics["ndcg@10"] == pytest.approx(0.6874, abs=0.01)
