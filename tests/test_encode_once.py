"""The README's main job encodes each corpus once per distinct weights: the baseline's corpus
embeddings serve hard-negative mining and the base candidate of dev selection; the shipped
candidate's embeddings, computed for selection, serve its test evaluation."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import irtune.retrieval.encode as encode_module
from irtune.data.beir import BeirDataset
from irtune.evaluation.job import EvaluationJob, run_evaluation
from irtune.models.loading import load_model
from irtune.retrieval.encode import encode_corpus_cached, entry_folder, share_entry
from irtune.retrieval.settings import RetrievalSettings
from irtune.study.config import load_study
from irtune.study.runner import run_study


def study_file(root: Path, model: Path, dataset: Path, alphas: str) -> Path:
    """The quickstart's shape on a slice: dense + BM25 baseline, one epoch, hard negatives,
    bf16 for evaluation and for mining and dev scoring."""
    path = root / "study.toml"
    path.write_text(f"""
name = "once"
out_dir = "{root / "run"}"
data_dir = "{dataset.parent}"

[model]
base = "{model}"

[evaluation]
datasets = ["{dataset.name}"]
precision = "bf16"
retrievers = ["dense", "bm25"]

[training]
epochs = 1
batch_size = 8
learning_rate = 5e-4
warmup_steps = 1
hard_negatives = true
negatives_range_max = 20
interpolation_alphas = {alphas}
precision = "bf16"

[[variants]]
name = "single"
train = ["{dataset.name}"]
""")
    return path


def run_counting_corpus_encodes(
    root: Path, model: Path, dataset: Path, alphas: str, monkeypatch
) -> tuple[Counter[str], Path]:
    """Run the study; texts encoded into corpus caches, by the weights hash that encoded them."""
    encoded: Counter[str] = Counter()
    real_encode = encode_module.encode_texts

    def counting(model, texts, *args, **kwargs):
        encoded[model.weights_sha256] += len(texts)
        return real_encode(model, texts, *args, **kwargs)

    monkeypatch.setattr(encode_module, "encode_texts", counting)  # the corpus chunks' encoder only
    study = load_study(study_file(root, model, dataset, alphas))
    run_study(study, cache_dir=root / "cache")
    return encoded, root / "run" / "stages"


@pytest.fixture(scope="module")
def model_with_negative_zero(tiny_model, tmp_path_factory) -> Path:
    """The tiny model with a -0.0 in a word-embedding row no text uses, as MiniLM has one:
    training leaves it as it is, so the epoch model keeps it."""
    model = load_model(str(tiny_model)).model
    embeddings = model[0].auto_model.embeddings.word_embeddings.weight
    with torch.no_grad():
        embeddings[1, 0] = -0.0  # [unused0]
    folder = tmp_path_factory.mktemp("negative-zero")
    model.save(str(folder))
    return folder


def results(stages: Path, stage: str) -> dict:
    return json.loads(next(stages.glob(f"{stage}-*")).joinpath("results.json").read_text())


@pytest.mark.parametrize(
    ("alphas", "shipped_alpha"),
    [("[0.0, 0.5, 1.0]", None), ("[1.0]", 1.0)],
    ids=["quickstart-alphas", "epoch-model-shipped"],
)
def test_each_weights_encode_the_corpus_once(
    model_with_negative_zero, scifact_slice, tmp_path, monkeypatch, alphas, shipped_alpha
):
    encoded, stages = run_counting_corpus_encodes(
        tmp_path, model_with_negative_zero, scifact_slice, alphas, monkeypatch
    )
    documents = len(BeirDataset(scifact_slice).doc_ids)
    baseline, tuned = results(stages, "baseline"), results(stages, "eval-single")
    model_dir = next(stages.glob("train-single-*")) / "model"
    record = json.loads((model_dir / "irtune_training.json").read_text())
    candidates = 1 + len(set(json.loads(alphas)) - {0.0})  # the base, each alpha > 0 (1: the epoch model)
    if shipped_alpha is not None:
        assert record["selected"]["alpha"] == shipped_alpha
    assert baseline["model"]["weights_sha256"] in encoded
    assert tuned["model"]["weights_sha256"] in encoded  # its selection encode served its test run
    assert dict(encoded) == {weights: documents for weights in encoded}
    assert len(encoded) == candidates

    # the reused embeddings give the numbers a fresh encode of the shipped model gives
    settings = RetrievalSettings(precision="bf16", cache_dir=tmp_path / "fresh")
    job = EvaluationJob(str(model_dir), [scifact_slice.name], settings, data_dir=scifact_slice.parent)
    fresh = run_evaluation(job).datasets[0]
    assert fresh.queries.ids_sha256 == tuned["datasets"][0]["queries"]["ids_sha256"]
    assert fresh.metrics == tuned["datasets"][0]["metrics"]


def test_a_shared_entry_serves_only_its_own_key(tiny_model, tmp_path, monkeypatch):
    texts = [f"document {i} about topic {i % 3}" for i in range(5)]
    model = load_model(str(tiny_model))
    run_cache, shared = tmp_path / "run", tmp_path / "shared"
    encoded = encode_corpus_cached(model, texts, "texts-v1", run_cache, precision="bf16", chunk_size=2)
    vectors = encoded.to_array()
    assert share_entry(entry_folder(model, "texts-v1", run_cache, "bf16"), shared)
    assert not share_entry(entry_folder(model, "texts-v1", run_cache, "bf16"), shared)  # moved already

    calls: list[int] = []
    real_encode = encode_module.encode_texts

    def counting(model, texts, *args, **kwargs):
        calls.append(len(texts))
        return real_encode(model, texts, *args, **kwargs)

    monkeypatch.setattr(encode_module, "encode_texts", counting)
    reused = encode_corpus_cached(model, texts, "texts-v1", shared, precision="bf16", chunk_size=2)
    assert calls == []
    assert reused.folder == entry_folder(model, "texts-v1", shared, "bf16")
    np.testing.assert_array_equal(reused.to_array(), vectors)
    encode_corpus_cached(model, texts, "texts-v1", shared, precision="fp32", chunk_size=2)  # another key
    assert calls == [2, 2, 1]
