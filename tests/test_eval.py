"""`irtune eval`: real model quality on a slice, results.json, run files, cache and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import pytrec_eval
from typer.testing import CliRunner

from irtune.cli.app import app
from irtune.core import files as fileio
from irtune.core.files import sha256_text
from irtune.data.beir import BeirDataset
from irtune.data.splits import SPLIT_FORMAT
from irtune.errors import IrtuneError
from irtune.evaluation.job import EvaluationJob, run_evaluation
from irtune.evaluation.runner import evaluate_dataset, write_run_file
from irtune.models.loading import load_model
from irtune.results.metrics import (
    DEFAULT_METRICS,
    HEADLINE_METRICS,
    evaluate_run,
    mean_metrics,
    rank_documents,
)
from irtune.results.schema import read_results
from irtune.retrieval import encode
from irtune.retrieval.settings import RetrievalSettings, make_retriever

from conftest import shared_dataset, slice_dataset

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
    settings = RetrievalSettings(retriever="bm25")
    retriever = make_retriever("bm25", settings, None)
    entry = evaluate_dataset(BeirDataset(scifact_slice), settings, retriever=retriever).result
    described = retriever.describe()
    assert described.description.startswith("bm25s") and "method=lucene" in described.description
    assert entry.metrics["ndcg@10"] > 0.6
    assert set(HEADLINE_METRICS) <= set(entry.metrics)


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


def _garbage(chunk):  # same shape and dtype, other numbers: loads fine, ranks nonsense
    np.save(chunk, np.random.default_rng(0).standard_normal(np.load(chunk).shape).astype(np.float32))


@pytest.mark.parametrize(
    "damage",
    [
        _garbage,
        lambda chunk: chunk.write_bytes(b""),  # zero bytes
        lambda chunk: chunk.write_bytes(chunk.read_bytes()[:-100]),  # truncated
        lambda chunk: np.save(chunk, np.zeros((3, 32), np.float32)),  # another shape
    ],
    ids=["same-shape-garbage", "zero-bytes", "truncated", "wrong-shape"],
)
def test_a_damaged_cache_chunk_is_reported_dropped_and_encoded_again(
    tiny_model, scifact_slice, cache_dir, monkeypatch, caplog, damage
):
    model = load_model(str(tiny_model), device="cpu")
    texts = [d.full_text() for d in BeirDataset(scifact_slice).corpus.values()]
    shards = encode.encode_corpus_cached(model, texts, "key", cache_dir, chunk_size=64)
    first = shards.to_array()
    chunk = sorted(shards.folder.glob("chunk_*.npy"))[1]
    assert chunk.name in json.loads((shards.folder / "manifest.json").read_text())["chunks"]
    damage(chunk)
    fileio.hashed_files.clear()  # a new process: nothing verified yet
    calls = []
    real = encode.encode_texts
    monkeypatch.setattr(
        encode, "encode_texts", lambda m, t, *a, **k: calls.append(len(t)) or real(m, t, *a, **k)
    )
    with caplog.at_level("WARNING", logger="irtune.retrieval.encode"):
        again = encode.encode_corpus_cached(
            model, iter(texts), "key", cache_dir, chunk_size=64, count=len(texts)
        ).to_array()
    assert calls == [64]  # only the damaged chunk, its texts found further along the stream
    assert abs(again - first).max() < 1e-5
    assert any(chunk.name in r.getMessage() and "encoding it again" in r.getMessage() for r in caplog.records)


def _split_file(path, dataset: str, split: str, eval_ids: list[str]):
    """A hand-made split file whose `eval` part is exactly `eval_ids`."""
    plan = {
        "format": SPLIT_FORMAT,
        "dataset": dataset,
        "method": "hand-made",
        "seed": 0,
        "train": {"split": "train", "query_ids": None},
        "dev": {"split": "train", "query_ids": []},
        "eval": {"split": split, "query_ids": eval_ids},
    }
    path.write_text(json.dumps(plan))
    return path


def test_selection_file_restricts_queries(tiny_model, scifact_slice, tmp_path):
    # `irtune split` on SciFact (train + test) keeps all of test for evaluation, which
    # restricts nothing: hand-make an eval part that is a strict subset of test instead.
    dataset = BeirDataset(scifact_slice)
    chosen = sorted(dataset.relevant_queries("test")[::3])
    split_file = _split_file(tmp_path / "scifact.split.json", dataset.name, "test", chosen)
    common = ["eval", "-m", str(tiny_model), "-d", str(scifact_slice), "--cache-dir", str(tmp_path / "c")]
    full_result = runner.invoke(app, [*common, "--out", str(tmp_path / "full")])
    assert full_result.exit_code == 0, full_result.output
    result = runner.invoke(app, [*common, "--split-file", str(split_file), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    full = json.loads((tmp_path / "full" / "results.json").read_text())["datasets"][0]
    entry = json.loads((tmp_path / "r" / "results.json").read_text())["datasets"][0]
    assert entry["queries"]["selection"] == "eval part of scifact.split.json"
    assert entry["queries"]["count"] == len(chosen) == 10 and full["queries"]["count"] == 30
    assert entry["queries"]["ids_sha256"] == sha256_text(*chosen) != full["queries"]["ids_sha256"]
    assert sorted(entry["per_query"]) == chosen
    # the same numbers as the full run (its written run file) restricted to those queries
    full_run = read_run(tmp_path / "full" / full["run_file"])
    qrels = dataset.qrels("test")
    expected = evaluate_run({q: qrels[q] for q in chosen}, {q: full_run[q] for q in chosen}, DEFAULT_METRICS)
    for qid in chosen:
        assert entry["per_query"][qid] == pytest.approx(expected[qid], abs=1e-9)
        assert entry["per_query"][qid] == pytest.approx(full["per_query"][qid], abs=1e-9)
    assert entry["metrics"] == pytest.approx(mean_metrics(expected), abs=1e-9)


def test_heldout_eval_part_of_a_test_only_dataset_is_scored_end_to_end(tmp_path):
    # a test-only dataset (as SciDocs): `irtune split` cuts test into tune and eval halves
    root = slice_dataset(shared_dataset("scifact"), tmp_path / "beir" / "scifact", {"test": 40}, 60)
    assert runner.invoke(app, ["split", "-d", str(root), "--out", str(tmp_path / "splits")]).exit_code == 0
    split_file = tmp_path / "splits" / "scifact.split.json"
    plan = json.loads(split_file.read_text())
    held_out = sorted(plan["eval"]["query_ids"])
    tuned_on = set(plan["train"]["query_ids"]) | set(plan["dev"]["query_ids"])
    assert plan["eval"]["split"] == "test" and 0 < len(held_out) < 40
    job = EvaluationJob(
        None,
        [str(root)],
        RetrievalSettings(retriever="bm25"),
        out_dir=tmp_path / "r",
        split_files=[split_file],
    )
    result = run_evaluation(job)
    entry = result.datasets[0]
    assert sorted(entry.per_query) == held_out and not tuned_on & set(entry.per_query)
    assert entry.queries.count == len(held_out)
    assert entry.queries.ids_sha256 == sha256_text(*held_out)
    written = json.loads((tmp_path / "r" / "results.json").read_text())["datasets"][0]
    assert sorted(read_run(tmp_path / "r" / written["run_file"])) == held_out


def test_top_k_below_a_metric_cutoff_is_refused(scifact_slice):
    with pytest.raises(IrtuneError, match=r"^top_k 100 .*recall@1000") as caught:
        RetrievalSettings(top_k=100)  # the default metrics include recall@1000
    assert "\n" not in str(caught.value)
    assert RetrievalSettings(top_k=100, metrics=("ndcg@10", "recall@100")).top_k == 100
    with pytest.raises(IrtuneError, match="unknown metric"):
        RetrievalSettings(metrics=("ndcg@ten",))
    result = runner.invoke(app, ["eval", "--retriever", "bm25", "-d", str(scifact_slice), "--top-k", "100"])
    assert isinstance(result.exception, IrtuneError) and "recall@1000" in str(result.exception)


def test_run_file_scores_round_trip_in_order_and_value(tmp_path):
    # a and b differ in the 8th decimal; 6 decimals would tie them and trec_eval would
    # then rank b (the larger id) first
    run = {"q1": {"a": 0.12345679, "b": 0.12345671, "c": 1 / 3, "d": 1e-9, "e": -2.5000000001}}
    path = tmp_path / "run.trec"
    write_run_file(path, run, tag="t")
    lines = [line.split() for line in path.read_text().splitlines()]
    assert [line[2] for line in lines] == ["c", "a", "b", "d", "e"] == rank_documents(run["q1"])
    assert [int(line[3]) for line in lines] == [1, 2, 3, 4, 5]
    back = read_run(path)
    assert back == run  # exact values
    assert rank_documents(back["q1"]) == rank_documents(run["q1"])


def test_a_run_file_of_a_label_with_spaces_has_six_columns(tmp_path):
    """Labels such as "minilm (base)" are the run tag: TREC tools split a line on whitespace."""
    path = tmp_path / "run.trec"
    write_run_file(path, {"q1": {"d1": 0.5, "d2": 0.25}}, tag="minilm tuned\ton  scifact (base)")
    assert [line.split()[5] for line in path.read_text().splitlines()] == [
        "minilm_tuned_on_scifact_(base)"
    ] * 2
    assert read_run(path) == {"q1": {"d1": 0.5, "d2": 0.25}}


def test_a_reused_out_folder_holds_only_the_run_files_of_its_results(tmp_path):
    """Evaluating fewer datasets into the same --out must not leave the other datasets' run
    files beside a results.json that no longer mentions them."""
    from conftest import write_beir

    docs = {"d1": {"text": "aspirin heart"}, "d2": {"text": "vitamin bones"}}
    queries = {"q1": "aspirin", "q2": "vitamin"}
    judged = {"test": {"q1": {"d1": 1}, "q2": {"d2": 1}}}
    first, second = (
        write_beir(tmp_path / "a", docs, queries, judged),
        write_beir(tmp_path / "b", {**docs, "d3": {"text": "another document"}}, queries, judged),
    )
    out = tmp_path / "out"
    settings = RetrievalSettings(retriever="bm25")
    run_evaluation(EvaluationJob(None, [str(first), str(second)], settings, out_dir=out))
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["a.test.trec", "b.test.trec"]
    (out / "runs" / "mine.trec").write_text("a run file irtune did not write\n")
    with pytest.raises(IrtuneError, match="holds the results of another evaluation"):
        run_evaluation(EvaluationJob(None, [str(first)], settings, out_dir=out))  # another evaluation
    run_evaluation(EvaluationJob(None, [str(first)], settings, out_dir=out, force=True))
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["a.test.trec", "mine.trec"]
    assert [d["dataset"] for d in json.loads((out / "results.json").read_text())["datasets"]] == ["a"]


TREC_MEASURES = {"ndcg": "ndcg_cut", "map": "map_cut", "recall": "recall", "p": "P"}


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid", "hybrid-rrf"])
def test_trec_eval_scores_each_written_run_file_as_irtune_did(retriever, tiny_model, scifact_slice, tmp_path):
    """The run file, read by pytrec_eval's own parser and scored by trec_eval, gives every
    per-query value results.json holds (fused runs included: trec_eval ranks by float32 scores)."""
    out = tmp_path / retriever
    model = None if retriever == "bm25" else str(tiny_model)
    settings = RetrievalSettings(retriever=retriever, cache_dir=tmp_path / "cache")
    run_evaluation(EvaluationJob(model, [str(scifact_slice)], settings, out_dir=out))
    entry = read_results(out).datasets[0]
    assert entry.run_file is not None
    with open(out / entry.run_file, encoding="utf-8") as handle:
        run = pytrec_eval.parse_run(handle)
    measures = {m: (m.split("@")[0], m.split("@")[1]) for m in DEFAULT_METRICS if not m.startswith("mrr")}
    oracle = pytrec_eval.RelevanceEvaluator(
        BeirDataset(scifact_slice).qrels("test"), {f"{TREC_MEASURES[f]}_{k}" for f, k in measures.values()}
    ).evaluate(run)
    assert sorted(oracle) == sorted(entry.per_query)
    for qid, values in entry.per_query.items():
        for metric, (family, k) in measures.items():
            assert values[metric] == pytest.approx(oracle[qid][f"{TREC_MEASURES[family]}_{k}"], abs=1e-12), (
                qid,
                metric,
            )
