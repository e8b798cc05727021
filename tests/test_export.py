"""`irtune export --format mteb`: results as MTEB task results, read back by mteb itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from irtune.cli.app import app
from irtune.core.files import sha256_text
from irtune.data.beir import BeirDataset
from irtune.errors import IrtuneError
from irtune.results.mteb import export_mteb, mteb_metric

from conftest import shared_dataset
from results_fixtures import LEVELS, results_doc, write

runner = CliRunner()


def official_doc(label: str, levels: dict) -> dict:
    """A results document whose datasets were read from the official files."""
    doc = results_doc(label, levels)
    for entry in doc["datasets"]:
        entry["public_dataset"] = entry["dataset"]
    return doc


def evaluated_on(entry: dict, qids: list[str], selection: str) -> None:
    """The entry's per-query values moved onto `qids` (as if those queries were evaluated)."""
    values = list(entry["per_query"].values())
    entry["per_query"] = {q: values[i % len(values)] for i, q in enumerate(qids)}
    entry["metrics"] = {
        m: sum(v[m] for v in entry["per_query"].values()) / len(qids) for m in entry["metrics"]
    }
    entry["queries"].update(selection=selection, count=len(qids), ids_sha256=sha256_text(*sorted(qids)))


def test_export_loads_in_mteb_as_its_task_results(tmp_path):
    import mteb
    from mteb.results import TaskResult

    doc = official_doc("minilm", LEVELS)
    source = write(tmp_path / "run" / "results.json", doc)
    result = runner.invoke(
        app,
        ["export", str(source), "--format", "mteb", "--out", str(tmp_path / "mteb"), "--model-name", "org/m"],
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / "mteb" / "org__m" / "no_revision_available"
    assert sorted(p.name for p in folder.iterdir()) == ["NFCorpus.json", "SciFact.json"]
    for entry, task_name in zip(doc["datasets"], ("SciFact", "NFCorpus"), strict=True):
        loaded = TaskResult.from_disk(folder / f"{task_name}.json")  # MTEB's own schema and loader
        task = mteb.get_task(task_name)
        checked = loaded.validate_and_filter_scores(task=task)  # splits and subsets MTEB expects
        assert checked.task_name == task_name
        assert checked.get_score() == pytest.approx(entry["metrics"]["ndcg@10"], abs=1e-6)
        scores = checked.scores["test"][0]
        assert scores["recall_at_100"] == pytest.approx(entry["metrics"]["recall@100"], abs=1e-6)
        assert scores["main_score"] == scores["ndcg_at_10"] and scores["languages"] == ["eng-Latn"]
        assert json.loads((folder / f"{task_name}.json").read_text())["dataset_revision"].startswith(
            "irtune-beir-files-"
        )


def test_metric_names_follow_mteb():
    assert [mteb_metric(m) for m in ("ndcg@10", "map@100", "recall@1000", "p@1", "mrr@10")] == [
        "ndcg_at_10",
        "map_at_100",
        "recall_at_1000",
        "precision_at_1",
        "mrr_at_10",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["datasets"][0]["queries"].update(selection="eval part of scifact.split.json"),
            "MTEB scores all",
        ),
        (lambda d: d.update(contaminated=True), "contaminated"),
        # MTEB keeps a document whose id is the query's on SciFact; irtune dropped them here
        (lambda d: d["datasets"][0].update(query_ids_in_corpus=3), "evaluate again keeping them"),
        (lambda d: d["datasets"][0].update(query_ids_in_corpus=None), "did not record whether any exist"),
        (lambda d: d["retriever"].update(precision="bf16"), "evaluate again in fp32 on the torch backend"),
        (lambda d: d["retriever"].update(store_dtype="float16"), "float16 cache"),
        (lambda d: d["retriever"].update(params={"compression": "128 dims"}), "compressed vectors"),
        (lambda d: d["datasets"][0]["metrics"].pop("ndcg@10"), "has no NDCG@10"),
        # a 50-query folder named scifact is not SciFact (issue 23, item 4)
        (lambda d: d["datasets"][0].update(public_dataset=None), "not the official files of scifact"),
        (lambda d: d["datasets"][0].update(dataset="my-wiki", public_dataset=None), "not the official files"),
        (lambda d: d["datasets"][0].update(split="dev"), "MTEB reports SciFact on its test split"),
    ],
)
def test_numbers_that_would_not_mean_mteb_numbers_are_refused(tmp_path, change, message):
    doc = official_doc("minilm", {"scifact": LEVELS["scifact"]})
    change(doc)
    source = write(tmp_path / "run" / "results.json", doc)
    with pytest.raises(IrtuneError, match=message):
        export_mteb(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_all_test_queries_selected_through_a_split_file_are_exported(tmp_path):
    """`irtune run` evaluates through split files even when their eval part is all of test."""
    doc = official_doc("minilm", {"scifact": LEVELS["scifact"]})
    test_queries = BeirDataset(shared_dataset("scifact")).relevant_queries("test")
    evaluated_on(doc["datasets"][0], test_queries, "eval part of scifact.split.json")
    written = export_mteb(write(tmp_path / "run" / "results.json", doc), tmp_path / "out")
    assert [p.name for p in written] == ["SciFact.json"]
    evaluated_on(doc["datasets"][0], test_queries[1:], "eval part of scifact.split.json")
    with pytest.raises(IrtuneError, match="scored on 299 of its 300 test queries"):
        export_mteb(write(tmp_path / "run2" / "results.json", doc), tmp_path / "out2")


def test_a_renamed_copy_of_the_official_files_is_exported_as_its_task(tmp_path):
    doc = official_doc("minilm", {"scifact": LEVELS["scifact"]})
    doc["datasets"][0]["dataset"] = "claims"
    written = export_mteb(write(tmp_path / "run" / "results.json", doc), tmp_path / "out")
    assert [p.name for p in written] == ["SciFact.json"]


def test_a_model_name_that_is_only_dots_is_refused(tmp_path):
    source = write(tmp_path / "run" / "results.json", official_doc("minilm", {"scifact": LEVELS["scifact"]}))
    with pytest.raises(IrtuneError, match="not a usable folder name"):
        export_mteb(source, tmp_path / "out", model_name="..")


def test_bm25_is_not_an_embedding_model(tmp_path):
    source = write(
        tmp_path / "run" / "results.json", results_doc("bm25", LEVELS, settings={"retriever": "bm25"})
    )
    with pytest.raises(IrtuneError, match="this is a bm25 run"):
        export_mteb(source, tmp_path / "out")


def test_a_dataset_is_official_by_its_files_not_its_name(tmp_path, scifact_slice):
    import gzip
    import shutil

    from irtune.data.official import official_name
    from irtune.evaluation.runner import evaluate_dataset
    from irtune.retrieval.settings import RetrievalSettings

    source = shared_dataset("scifact")
    copy = Path(shutil.copytree(source, tmp_path / "claims"))
    (copy / "corpus.jsonl.gz").chmod(0o644)
    (copy / "corpus.jsonl").write_bytes(gzip.decompress((copy / "corpus.jsonl.gz").read_bytes()))
    (copy / "corpus.jsonl.gz").unlink()  # as the official zip holds it, in a folder of another name
    assert official_name(BeirDataset(copy), "test") == "scifact"
    assert official_name(BeirDataset(copy), "train") == "scifact"
    qrels = copy / "qrels" / "test.tsv"
    qrels.chmod(0o644)
    qrels.write_bytes(b"".join(qrels.read_bytes().splitlines(keepends=True)[:-1]))  # one judgement less
    assert official_name(BeirDataset(copy), "test") is None
    bm25 = RetrievalSettings(retriever="bm25")
    assert evaluate_dataset(BeirDataset(source), bm25).result.public_dataset == "scifact"
    sliced = evaluate_dataset(BeirDataset(scifact_slice), bm25).result  # a folder named scifact
    assert sliced.dataset == "scifact" and sliced.public_dataset is None


def test_a_query_judged_relevant_to_its_own_id_is_counted_and_warned_about(tmp_path, caplog):
    """Identical ids are dropped (BEIR's default), so a qrels row `d1 d1 1` can never be found:
    that query scores 0, which must not pass silently."""
    from irtune.evaluation.runner import evaluate_dataset
    from irtune.retrieval.settings import RetrievalSettings

    from conftest import write_beir

    corpus = {"d1": {"text": "apples are red"}, "d2": {"text": "pears are green"}, "d3": {"text": "sky"}}
    queries = {"d1": "red apples", "q2": "green pears"}
    folder = write_beir(tmp_path / "self", corpus, queries, {"test": {"d1": {"d1": 1}, "q2": {"d2": 1}}})
    result = evaluate_dataset(BeirDataset(folder), RetrievalSettings(retriever="bm25")).result
    assert result.self_judged_queries == 1 and result.per_query["d1"]["ndcg@10"] == 0.0
    assert (
        "self: 1 of 2 evaluated queries are judged relevant to the document with their own id" in caplog.text
    )
    caplog.clear()
    kept = evaluate_dataset(
        BeirDataset(folder), RetrievalSettings(retriever="bm25", ignore_identical_ids=False)
    )
    assert kept.result.self_judged_queries == 1 and kept.result.per_query["d1"]["ndcg@10"] == 1.0
    assert "own id" not in caplog.text  # nothing is dropped: nothing to warn about
