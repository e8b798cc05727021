"""`irtune export --format mteb`: results as MTEB task results, read back by mteb itself."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from irtune.cli import app
from irtune.errors import IrtuneError
from irtune.export import export_mteb, mteb_metric

from results_fixtures import LEVELS, results_doc, write

runner = CliRunner()


def test_export_loads_in_mteb_as_its_task_results(tmp_path):
    import mteb
    from mteb.results import TaskResult

    doc = results_doc("minilm", LEVELS)
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
        (lambda d: d["datasets"][0].update(dataset="my-wiki"), "not an MTEB task"),
        # MTEB keeps a document whose id is the query's on SciFact; irtune dropped them here
        (lambda d: d["datasets"][0].update(query_ids_in_corpus=3), "evaluate with --keep-identical-ids"),
        (lambda d: d["datasets"][0].update(query_ids_in_corpus=None), "did not record whether any exist"),
        (lambda d: d["retriever"].update(precision="bf16"), "evaluate with --precision fp32"),
        (lambda d: d["retriever"].update(store_dtype="float16"), "float16 cache"),
        (lambda d: d["retriever"].update(params={"compression": "128 dims"}), "compressed vectors"),
        (lambda d: d["datasets"][0]["metrics"].pop("ndcg@10"), "has no NDCG@10"),
    ],
)
def test_numbers_that_would_not_mean_mteb_numbers_are_refused(tmp_path, change, message):
    doc = results_doc("minilm", {"scifact": LEVELS["scifact"]})
    change(doc)
    source = write(tmp_path / "run" / "results.json", doc)
    with pytest.raises(IrtuneError, match=message):
        export_mteb(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_model_name_that_is_only_dots_is_refused(tmp_path):
    source = write(tmp_path / "run" / "results.json", results_doc("minilm", {"scifact": LEVELS["scifact"]}))
    with pytest.raises(IrtuneError, match="not a usable folder name"):
        export_mteb(source, tmp_path / "out", model_name="..")


def test_bm25_is_not_an_embedding_model(tmp_path):
    source = write(
        tmp_path / "run" / "results.json", results_doc("bm25", LEVELS, settings={"retriever": "bm25"})
    )
    with pytest.raises(IrtuneError, match="this is a bm25 run"):
        export_mteb(source, tmp_path / "out")
