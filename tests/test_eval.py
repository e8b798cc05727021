"""`irtune eval`: real model quality on a slice, results.json, run files, cache and resume."""

from __future__ import annotations

import json

import pytest
import pytrec_eval
from typer.testing import CliRunner

from irtune.cli import app
from irtune.data.beir import BeirDataset
from irtune.evaluate import EvalSettings, evaluate_dataset
from irtune.metrics import HEADLINE_METRICS
from irtune.models import load_model
from irtune.retrieval import encode

runner = CliRunner()


def read_run(path):
    run: dict[str, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        qid, q0, doc, _rank, score, _tag = line.split()
        assert q0 == "Q0"
        run.setdefault(qid, {})[doc] = float(score)
    return run


def test_eval_cli_bundled_model_on_scifact_slice(scifact_slice, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "eval",
            "-m",
            "minilm",
            "-d",
            str(scifact_slice),
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "NDCG@10" in result.output
    data = json.loads((out / "results.json").read_text())
    entry = data["datasets"][0]
    assert entry["queries"]["count"] == 30 and entry["split"] == "test"
    # a real model on a 250-document slice: clearly better than chance
    assert entry["metrics"]["ndcg@10"] > 0.7
    assert data["model"]["weights_sha256"] and data["model"]["prompts"]["source"] == "none"
    assert set(entry["data_files_sha256"]) == {"corpus.jsonl", "queries.jsonl", "qrels/test.tsv"}
    assert data["environment"]["torch"] and "encode_corpus_s" in entry["timings_s"]
    assert not data["contaminated"]
    # the written run file reproduces the numbers through trec_eval itself
    run = read_run(out / entry["run_file"])
    qrels = BeirDataset(scifact_slice).qrels("test")
    oracle = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10", "recall_100"}).evaluate(run)
    for qid, values in oracle.items():
        assert entry["per_query"][qid]["ndcg@10"] == pytest.approx(values["ndcg_cut_10"], abs=1e-6)
        assert entry["per_query"][qid]["recall@100"] == pytest.approx(values["recall_100"], abs=1e-9)


def test_bm25_on_slice(scifact_slice):
    entry = evaluate_dataset(BeirDataset(scifact_slice), EvalSettings(retriever="bm25")).entry
    assert entry["retriever"].startswith("bm25s") and "method=lucene" in entry["retriever"]
    assert entry["metrics"]["ndcg@10"] > 0.6
    assert set(HEADLINE_METRICS) <= set(entry["metrics"])


def test_cached_rerun_does_not_encode_and_resume_encodes_only_missing_chunks(
    tiny_model, scifact_slice, cache_dir, monkeypatch
):
    model = load_model(str(tiny_model), device="cpu")
    dataset = BeirDataset(scifact_slice)
    texts = [d.full_text() for d in dataset.corpus.values()]
    calls = []
    real = encode.encode_texts
    monkeypatch.setattr(
        encode, "encode_texts", lambda m, t, *a, **k: calls.append(len(t)) or real(m, t, *a, **k)
    )
    first = encode.encode_corpus_cached(model, texts, "key", cache_dir, chunk_size=64)
    assert sum(calls) == len(texts)
    calls.clear()
    again = encode.encode_corpus_cached(model, texts, "key", cache_dir, chunk_size=64)
    assert calls == []
    assert (first.to_array() == again.to_array()).all()
    # simulate an interrupted encode: one chunk is missing
    chunk = sorted(first.folder.glob("chunk_*.npy"))[1]
    chunk.unlink()
    resumed = encode.encode_corpus_cached(model, texts, "key", cache_dir, chunk_size=64)
    assert calls == [64]
    assert abs(resumed.to_array() - first.to_array()).max() < 1e-5
    # another prompt is another cache entry
    other = encode.cache_key(model, "passage: ", "fp32", "key")
    assert other != first.folder.name


def test_selection_file_restricts_queries(tiny_model, scifact_slice, tmp_path):
    out = tmp_path / "splits"
    assert runner.invoke(app, ["split", "-d", str(scifact_slice), "--out", str(out)]).exit_code == 0
    split_file = out / "scifact.split.json"
    plan = json.loads(split_file.read_text())
    assert plan["eval"] == {"split": "test", "query_ids": None}
    result = runner.invoke(
        app,
        [
            "eval",
            "-m",
            str(tiny_model),
            "-d",
            str(scifact_slice),
            "--split-file",
            str(split_file),
            "--out",
            str(tmp_path / "r"),
            "--cache-dir",
            str(tmp_path / "c"),
        ],
    )
    assert result.exit_code == 0, result.output
    entry = json.loads((tmp_path / "r" / "results.json").read_text())["datasets"][0]
    assert entry["queries"]["selection"] == "eval part of scifact.split.json"
