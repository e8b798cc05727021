"""What the CLI does around the library, as functions of the API: fetch, info, split, export,
push and run take what the commands take and return what they print."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

import irtune
from irtune.api import StudyOutcome, WrittenSplit
from irtune.data.beir import BeirDataset
from irtune.data.splits import load_plan
from irtune.errors import IrtuneError

from conftest import write_beir
from results_fixtures import LEVELS, results_doc, write

CORPUS = {"d1": {"text": "aspirin lowers heart attack risk"}, "d2": {"text": "vitamin d and bone fractures"}}
QUERIES = {"q1": "aspirin heart", "q2": "vitamin d bones"}
JUDGED = {"test": {"q1": {"d1": 1}, "q2": {"d2": 1}}}


def test_fetch_dataset_verifies_and_extracts_into_the_data_folder(tmp_path: Path, monkeypatch):
    source = write_beir(tmp_path / "src" / "tiny", CORPUS, QUERIES, JUDGED)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with zipfile.ZipFile(mirror / "tiny.zip", "w") as archive:
        for path in sorted(source.rglob("*")):
            archive.write(path, Path("tiny") / path.relative_to(source))
    md5 = hashlib.md5((mirror / "tiny.zip").read_bytes()).hexdigest()
    monkeypatch.setenv("IRTUNE_DATA_DIR", str(tmp_path / "default"))
    folder = irtune.fetch_dataset("tiny", mirror=str(mirror), md5=md5)
    assert folder == tmp_path / "default" / "tiny"
    assert sorted(BeirDataset(folder).qrels("test")) == ["q1", "q2"]
    there = irtune.fetch_dataset("tiny", data_dir=str(tmp_path / "data"), mirror=str(mirror), md5=md5)
    assert there == tmp_path / "data" / "tiny" and (there / "qrels" / "test.tsv").is_file()
    with pytest.raises(IrtuneError, match="md5 mismatch"):
        irtune.fetch_dataset("tiny", data_dir=tmp_path / "d2", mirror=str(mirror), md5="0" * 32)
    assert not (tmp_path / "d2" / "tiny").exists()


def test_dataset_info_counts_a_dataset_by_name_or_folder(tmp_path: Path):
    folder = write_beir(tmp_path / "data" / "ds", CORPUS, QUERIES, JUDGED)
    info = irtune.dataset_info("ds", data_dir=tmp_path / "data")
    assert info == irtune.dataset_info(folder)
    assert info["name"] == "ds" and info["corpus"]["count"] == 2 and info["queries"]["count"] == 2
    test = info["splits"]["test"]
    assert (test["queries"], test["pairs"], test["relevant_pairs"], test["relevant_per_query"]) == (
        2,
        2,
        2,
        1.0,
    )


def _test_only(root: Path, queries: int) -> Path:
    return write_beir(
        root,
        {f"d{i}": {"text": f"document {i} on subject {i}"} for i in range(queries)},
        {f"q{i}": f"subject {i}" for i in range(queries)},
        {"test": {f"q{i}": {f"d{i}": 1} for i in range(queries)}},
    )


def test_split_checks_every_file_before_writing_any(tmp_path: Path):
    data = tmp_path / "data"
    _test_only(data / "a", 20)
    _test_only(data / "b", 30)
    out = tmp_path / "splits"
    out.mkdir()
    (out / "b.split.json").write_text("{}", encoding="utf-8")  # not irtune's plan of b
    with pytest.raises(IrtuneError, match=r"b\.split\.json"):
        irtune.split(["a", "b"], out_dir=out, data_dir=data)
    assert sorted(p.name for p in out.iterdir()) == ["b.split.json"]  # a's plan was not written
    written = irtune.split(["a", "b"], out_dir=str(out), data_dir=data, seed=5, force=True)
    assert [w.dataset for w in written] == ["a", "b"]
    assert [w.path for w in written] == [out / "a.split.json", out / "b.split.json"]
    for entry in written:
        assert isinstance(entry, WrittenSplit) and load_plan(entry.path) == entry.plan
        assert entry.plan.seed == 5 and entry.plan.eval.split == "test"
    counts = written[1].plan.stats["queries"]
    assert counts["eval"] == 15 and counts["train"] + counts["dev"] == 15
    again = irtune.split("b", out_dir=out, data_dir=data, seed=5)  # the same plan: a re-run
    assert again[0].plan == written[1].plan


def test_export_writes_mteb_task_results(tmp_path: Path):
    doc = results_doc("minilm", LEVELS)
    for entry in doc["datasets"]:
        entry["public_dataset"] = entry["dataset"]
    source = write(tmp_path / "run" / "results.json", doc)
    paths = irtune.export(source.parent, out_dir=tmp_path / "mteb", model_name="org/m")
    folder = tmp_path / "mteb" / "org__m" / "no_revision_available"
    assert paths == [folder / "SciFact.json", folder / "NFCorpus.json"]
    assert json.loads(paths[0].read_text())["task_name"] == "SciFact"


def test_push_hands_the_checked_arguments_to_the_hub_upload(tmp_path: Path, monkeypatch):
    from irtune.training import push as push_module

    calls = []

    def fake_push(model_dir, repo_id, *, results=(), private=False):
        calls.append((model_dir, repo_id, results, private))
        return "https://huggingface.co/me/tuned/commit/1"

    monkeypatch.setattr(push_module, "push_model", fake_push)
    url = irtune.push(str(tmp_path / "model"), repo_id="me/tuned", results=str(tmp_path / "r"), private=True)
    assert url == "https://huggingface.co/me/tuned/commit/1"
    assert calls == [(tmp_path / "model", "me/tuned", [tmp_path / "r"], True)]


def test_run_runs_a_study_and_returns_its_report_and_comparisons(tiny_model: Path, tmp_path: Path):
    _test_only(tmp_path / "data" / "ds", 20)  # a test-only dataset: the study evaluates its eval half
    study = tmp_path / "study.toml"
    study.write_text(
        f'name = "api"\nout_dir = "{tmp_path / "study"}"\n\n[model]\nbase = "{tiny_model}"\n\n'
        '[evaluation]\ndatasets = ["ds"]\nretrievers = ["dense", "bm25"]\n',
        encoding="utf-8",
    )
    outcome = irtune.run(study, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    assert isinstance(outcome, StudyOutcome)
    assert outcome.report.is_file() and outcome.report.with_suffix(".md").is_file()
    [comparison] = outcome.comparisons
    assert comparison.candidate_label == "bm25" and comparison.datasets[0].dataset == "ds"
    again = irtune.run(str(study), data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", force="baseline")
    assert again.report == outcome.report


def test_the_new_functions_are_part_of_the_light_api():
    for name in ("fetch_dataset", "dataset_info", "split", "export", "push", "run"):
        assert name in irtune.__all__ and getattr(irtune, name).__module__ == "irtune.api"
