"""The Python API as careful as the CLI: every public function takes `str` or `pathlib.Path`
wherever a path goes, reads one item as a list of one, and refuses a wrong type, an empty
input or a repeated dataset with a `TypeError` / `ValueError` that names the parameter (never a
CLI flag: the CLI translates parameters to the flags of the command the user typed)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import irtune
from irtune.cli.app import flag_names
from irtune.core.configs import read_toml
from irtune.errors import IrtuneError

from conftest import irtune as run_cli
from conftest import write_beir
from results_fixtures import LEVELS, results_doc, write

CORPUS = {"d1": {"text": "aspirin lowers heart attack risk"}, "d2": {"text": "vitamin d and bone fractures"}}
QUERIES = {"q1": "aspirin heart", "q2": "vitamin d bones"}


@dataclass(frozen=True)
class Workspace:
    data: Path  # the data folder, holding the dataset "ds"
    ds: Path
    base: Path  # results files
    tuned: Path
    tmp: Path


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    tmp = tmp_path_factory.mktemp("api")
    ds = write_beir(tmp / "data" / "ds", CORPUS, QUERIES, {"test": {"q1": {"d1": 1}, "q2": {"d2": 1}}})
    shutil.copytree(ds, tmp / "data" / "dscopy")  # the same dataset under another name
    base = write(tmp / "base" / "results.json", results_doc("base", LEVELS))
    tuned = write(tmp / "tuned" / "results.json", results_doc("tuned", LEVELS, shift=0.05, seed=1))
    return Workspace(tmp / "data", ds, base, tuned, tmp)


def bm25(ws: Workspace, **kw: object) -> object:
    return irtune.evaluate(None, kw.pop("datasets", str(ws.ds)), retriever="bm25", **kw)


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[Workspace], object]
    error: type[Exception]  # TypeError or ValueError
    parameter: str
    message: str  # expected in the message, which starts with the parameter


CASES = [
    # evaluate: paths, lists, empty inputs, settings
    Case("evaluate-datasets-empty", lambda w: irtune.evaluate(None, []), ValueError, "datasets", "is empty"),
    Case("evaluate-datasets-none", lambda w: irtune.evaluate(None, None), TypeError, "datasets", "a list"),
    Case("evaluate-datasets-set", lambda w: bm25(w, datasets={"ds"}), TypeError, "datasets", "not set"),
    Case("evaluate-datasets-int-item", lambda w: bm25(w, datasets=[w.ds, 3]), TypeError, "datasets", "[1]"),
    Case("evaluate-datasets-blank", lambda w: bm25(w, datasets=" "), ValueError, "datasets", "is empty"),
    Case(
        "evaluate-datasets-twice",
        lambda w: bm25(w, datasets=[w.ds, str(w.ds)]),
        ValueError,
        "datasets",
        "'ds' is given twice",
    ),
    Case(
        "evaluate-datasets-same-content",
        lambda w: bm25(w, datasets=["ds", "dscopy"], data_dir=w.data),
        ValueError,
        "datasets",
        "'dscopy' holds the same files as 'ds'",
    ),
    Case("evaluate-model-int", lambda w: irtune.evaluate(42, "ds"), TypeError, "model", "not int"),
    Case("evaluate-model-empty", lambda w: irtune.evaluate("", "ds"), ValueError, "model", "is empty"),
    Case("evaluate-out-dir-int", lambda w: bm25(w, out_dir=3), TypeError, "out_dir", "must be a path"),
    Case("evaluate-out-dir-empty", lambda w: bm25(w, out_dir=""), ValueError, "out_dir", "is empty"),
    Case("evaluate-data-dir-empty", lambda w: bm25(w, data_dir=""), ValueError, "data_dir", "is empty"),
    Case("evaluate-split-files-int", lambda w: bm25(w, split_files=7), TypeError, "split_files", "a list"),
    Case("evaluate-label-empty", lambda w: bm25(w, label=""), ValueError, "label", "is empty"),
    Case(
        "evaluate-batch-size-0",
        lambda w: bm25(w, batch_size=0),
        ValueError,
        "batch_size",
        "must be at least 1",
    ),
    Case(
        "evaluate-batch-size-str", lambda w: bm25(w, batch_size="8"), TypeError, "batch_size", "whole number"
    ),
    Case("evaluate-top-k-10", lambda w: bm25(w, top_k=10), ValueError, "top_k", "10 is below the deepest"),
    Case("evaluate-precision", lambda w: bm25(w, precision="fp8"), ValueError, "precision", "one of fp32"),
    Case("evaluate-cache-dir-empty", lambda w: bm25(w, cache_dir=""), ValueError, "cache_dir", "is empty"),
    Case("evaluate-metrics-empty", lambda w: bm25(w, metrics=[]), ValueError, "metrics", "is empty"),
    Case("evaluate-metrics-unknown", lambda w: bm25(w, metrics="ndcg@x"), ValueError, "metrics", "ndcg@x"),
    Case(
        "evaluate-index-params-list",
        lambda w: bm25(w, index_params=["nlist"]),
        TypeError,
        "index_params",
        "mapping",
    ),
    Case(
        "evaluate-unknown-setting",
        lambda w: bm25(w, bogus=1),
        TypeError,
        "bogus",
        "not a parameter of evaluate()",
    ),
    Case(
        "evaluate-device-int",
        lambda w: irtune.evaluate("minilm", "ds", device=0),
        TypeError,
        "device",
        "text",
    ),
    Case(
        "evaluate-max-seq-length-0",
        lambda w: irtune.evaluate("minilm", "ds", max_seq_length=0),
        ValueError,
        "max_seq_length",
        "at least 1",
    ),
    # booleans: a truthy string ("false", "no") must not decide a run
    Case(
        "evaluate-ignore-identical-ids-text",
        lambda w: bm25(w, ignore_identical_ids="false"),
        TypeError,
        "ignore_identical_ids",
        "must be True or False (bool), not str",
    ),
    Case("evaluate-strict-text", lambda w: bm25(w, strict="no"), TypeError, "strict", "not str"),
    Case("evaluate-force-int", lambda w: bm25(w, force=1), TypeError, "force", "not int"),
    Case(
        "load-dataset-strict-text",
        lambda w: irtune.load_dataset(w.ds, strict="no"),
        TypeError,
        "strict",
        "bool",
    ),
    Case(
        "frontier-force-text",
        lambda w: irtune.frontier("minilm", "ds", force="no"),
        TypeError,
        "force",
        "bool",
    ),
    Case(
        "train-resume-text",
        lambda w: irtune.train("minilm", "ds", out_dir=w.tmp / "t", resume="yes"),
        TypeError,
        "resume",
        "bool",
    ),
    Case("import-force-text", lambda w: irtune.import_data("x", force="no"), TypeError, "force", "bool"),
    Case(
        "import-drop-unknown-text",
        lambda w: irtune.import_data("x", drop_unknown_judgements="yes"),
        TypeError,
        "drop_unknown_judgements",
        "bool",
    ),
    # load_dataset / load_model
    Case("load-dataset-empty", lambda w: irtune.load_dataset(""), ValueError, "name_or_path", "is empty"),
    Case("load-dataset-none", lambda w: irtune.load_dataset(None), TypeError, "name_or_path", "not NoneType"),
    Case(
        "load-dataset-data-dir-empty",
        lambda w: irtune.load_dataset("ds", data_dir=""),
        ValueError,
        "data_dir",
        "is empty",
    ),
    Case("load-model-empty", lambda w: irtune.load_model(""), ValueError, "spec", "is empty"),
    Case("load-model-none", lambda w: irtune.load_model(None), TypeError, "spec", "text"),
    Case(
        "load-model-max-seq-length",
        lambda w: irtune.load_model("minilm", max_seq_length=-1),
        ValueError,
        "max_seq_length",
        "at least 1",
    ),
    # frontier
    Case("frontier-model-none", lambda w: irtune.frontier(None, "ds"), TypeError, "model", "not NoneType"),
    Case(
        "frontier-dims-0", lambda w: irtune.frontier("minilm", "ds", dims=0), ValueError, "dims", "at least 1"
    ),
    Case(
        "frontier-dims-text",
        lambda w: irtune.frontier("minilm", "ds", dims="128"),
        TypeError,
        "dims",
        "a list, not str",
    ),
    Case(
        "frontier-quantize",
        lambda w: irtune.frontier("minilm", "ds", quantize="int4"),
        ValueError,
        "quantize",
        "'int4'",
    ),
    Case(
        "frontier-rescore",
        lambda w: irtune.frontier("minilm", "ds", rescore=4),
        ValueError,
        "rescore",
        "applies to quantize ubinary",
    ),
    # train (all refused before any model or data is read)
    Case(
        "train-model-none",
        lambda w: irtune.train(None, "ds", out_dir=w.tmp / "t"),
        TypeError,
        "model",
        "text",
    ),
    Case(
        "train-out-dir-empty",
        lambda w: irtune.train("minilm", "ds", out_dir=""),
        ValueError,
        "out_dir",
        "is empty",
    ),
    Case(
        "train-config-list",
        lambda w: irtune.train("minilm", "ds", out_dir=w.tmp / "t", config=["epochs"]),
        TypeError,
        "config",
        "mapping",
    ),
    # compare / report
    Case("compare-baseline-int", lambda w: irtune.compare(3), TypeError, "baseline", "results file"),
    Case(
        "compare-candidate-empty", lambda w: irtune.compare(w.base, ""), ValueError, "candidates", "is empty"
    ),
    Case(
        "compare-metrics-empty",
        lambda w: irtune.compare(w.base, w.tuned, metrics=[]),
        ValueError,
        "metrics",
        "is empty",
    ),
    Case(
        "report-results-empty",
        lambda w: irtune.report([], out=w.tmp / "r.html"),
        ValueError,
        "results",
        "is empty",
    ),
    Case("report-out-empty", lambda w: irtune.report([w.base], out=""), ValueError, "out", "is empty"),
    Case(
        "report-baseline-int",
        lambda w: irtune.report([w.base], out=w.tmp / "r.html", baseline=1),
        TypeError,
        "baseline",
        "a path",
    ),
    # import_data
    Case("import-name-empty", lambda w: irtune.import_data(" "), ValueError, "name", "is empty"),
    Case(
        "import-columns-list",
        lambda w: irtune.import_data("x", columns=["id"]),
        TypeError,
        "columns",
        "mapping",
    ),
    Case(
        "import-columns-int",
        lambda w: irtune.import_data("x", columns={"id": 1}),
        TypeError,
        "columns",
        "['id'] must be text",
    ),
    Case(
        "import-qrels-int",
        lambda w: irtune.import_data("x", qrels={"test": 3}),
        TypeError,
        "qrels",
        "['test'] must be a path",
    ),
    Case(
        "import-corpus-empty", lambda w: irtune.import_data("x", corpus=""), ValueError, "corpus", "is empty"
    ),
    Case("import-out-int", lambda w: irtune.import_data("x", out=5), TypeError, "out", "a path"),
    # fetch_dataset / dataset_info / split
    Case("fetch-name-int", lambda w: irtune.fetch_dataset(3), TypeError, "name", "text"),
    Case("fetch-md5-empty", lambda w: irtune.fetch_dataset("x", md5=" "), ValueError, "md5", "is empty"),
    Case(
        "fetch-data-dir-int", lambda w: irtune.fetch_dataset("x", data_dir=1), TypeError, "data_dir", "a path"
    ),
    Case("fetch-force-text", lambda w: irtune.fetch_dataset("x", force="no"), TypeError, "force", "bool"),
    Case("info-dataset-none", lambda w: irtune.dataset_info(None), TypeError, "dataset", "not NoneType"),
    Case("info-strict-text", lambda w: irtune.dataset_info(w.ds, strict="no"), TypeError, "strict", "bool"),
    Case(
        "split-datasets-empty", lambda w: irtune.split([], out_dir=w.tmp), ValueError, "datasets", "is empty"
    ),
    Case("split-out-dir-empty", lambda w: irtune.split(w.ds, out_dir=""), ValueError, "out_dir", "is empty"),
    Case(
        "split-seed-text", lambda w: irtune.split(w.ds, out_dir=w.tmp, seed="1"), TypeError, "seed", "whole"
    ),
    Case(
        "split-dev-fraction-text",
        lambda w: irtune.split(w.ds, out_dir=w.tmp, dev_fraction="0.2"),
        TypeError,
        "dev_fraction",
        "must be a number, not str",
    ),
    Case(
        "split-eval-fraction-1",
        lambda w: irtune.split(w.ds, out_dir=w.tmp / "s", eval_fraction=1),
        ValueError,
        "eval_fraction",
        "between 0 and 1",
    ),
    Case(
        "split-force-int", lambda w: irtune.split(w.ds, out_dir=w.tmp, force=1), TypeError, "force", "not int"
    ),
    # export / push / run
    Case(
        "export-format-unknown",
        lambda w: irtune.export(w.base, out_dir=w.tmp / "x", format="csv"),
        ValueError,
        "format",
        "csv: only mteb is supported",
    ),
    Case(
        "export-results-int", lambda w: irtune.export(3, out_dir=w.tmp), TypeError, "results", "results file"
    ),
    Case(
        "export-out-dir-empty", lambda w: irtune.export(w.base, out_dir=""), ValueError, "out_dir", "is empty"
    ),
    Case(
        "export-force-text",
        lambda w: irtune.export(w.base, out_dir=w.tmp, force="no"),
        TypeError,
        "force",
        "bool",
    ),
    Case("push-model-dir-int", lambda w: irtune.push(1, repo_id="me/x"), TypeError, "model_dir", "a path"),
    Case("push-repo-id-none", lambda w: irtune.push(w.tmp, repo_id=None), TypeError, "repo_id", "text"),
    Case(
        "push-results-int",
        lambda w: irtune.push(w.tmp, repo_id="me/x", results=2),
        TypeError,
        "results",
        "list",
    ),
    Case(
        "push-private-text",
        lambda w: irtune.push(w.tmp, repo_id="me/x", private="yes"),
        TypeError,
        "private",
        "bool",
    ),
    Case("run-study-empty", lambda w: irtune.run(""), ValueError, "study", "is empty"),
    Case("run-cache-dir-int", lambda w: irtune.run("s.toml", cache_dir=3), TypeError, "cache_dir", "a path"),
    Case("run-force-bool", lambda w: irtune.run("s.toml", force=True), TypeError, "force", "a list"),
    # generate_queries
    Case(
        "generate-dataset-empty",
        lambda w: irtune.generate_queries("", "hf:x"),
        ValueError,
        "dataset",
        "is empty",
    ),
    Case(
        "generate-generator-empty",
        lambda w: irtune.generate_queries(str(w.ds), ""),
        ValueError,
        "generator",
        "is empty",
    ),
    Case(
        "generate-cache-dir-empty",
        lambda w: irtune.generate_queries(w.ds, "hf:x", cache_dir=""),
        ValueError,
        "cache_dir",
        "is empty",
    ),
    Case(
        "generate-restart-text",
        lambda w: irtune.generate_queries(w.ds, "hf:x", restart="no"),
        TypeError,
        "restart",
        "bool",
    ),
    Case(
        "generate-hf-settings-list",
        lambda w: irtune.generate_queries(w.ds, "hf:x", hf_settings=["x"]),
        TypeError,
        "hf_settings",
        "mapping",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_bad_argument_is_a_value_or_type_error_naming_its_parameter(case: Case, ws: Workspace):
    with pytest.raises(case.error) as caught:
        case.call(ws)
    error = caught.value
    assert isinstance(error, IrtuneError)  # the CLI's one-line exit 2
    assert error.parameter == case.parameter
    message = str(error)
    assert message.startswith(case.parameter) and case.message in message, message
    assert "--" not in message and "\n" not in message


def test_paths_may_be_text_or_path_objects_and_one_item_a_list(ws: Workspace):
    from irtune.results.metrics import HEADLINE_METRICS

    out = ws.tmp / "runs" / "x"
    results = bm25(ws, datasets=ws.ds, out_dir=str(out), metrics="ndcg@10", top_k=10)
    assert [d.dataset for d in results.datasets] == ["ds"]
    assert list(results.datasets[0].metrics) == ["ndcg@10"]
    assert json.loads((out / "results.json").read_text())["datasets"][0]["dataset"] == "ds"
    assert irtune.load_dataset("ds", data_dir=str(ws.data)).root == ws.ds
    [comparison] = irtune.compare(str(ws.base), ws.tuned, metrics="ndcg@10")
    assert [m.metric for m in comparison.datasets[0].metrics] == ["ndcg@10"] != list(HEADLINE_METRICS)
    html = irtune.report(str(ws.tuned), out=str(ws.tmp / "report.html"), baseline=str(ws.base))
    assert html == ws.tmp / "report.html" and html.is_file()


def test_the_cli_names_the_flag_of_the_command_typed():
    assert flag_names(["eval", "-d", "x"])("batch_size") == "--batch-size"
    assert flag_names(["eval"])("out_dir") == "--out"
    assert flag_names(["eval"])("split_files") == "--split-file"
    assert flag_names(["eval"])("datasets") == "--dataset"
    assert flag_names(["eval"])("index_params") == "--index-param"
    assert flag_names(["train"])("datasets") == "--train"
    assert flag_names(["data", "import", "x"])("columns") == "--col"
    assert flag_names(["report"])("out") == "--out"
    assert flag_names(["run", "study.toml"])("out_dir") == "out_dir"  # a study key, not a flag
    assert flag_names(["eval"])("metrics") == "metrics"  # no flag sets it


def test_a_dataset_given_twice_is_refused_in_one_line(ws: Workspace):
    done = run_cli("eval", "--retriever", "bm25", "-d", "ds", "-d", "ds", "--data-dir", str(ws.data))
    assert done.returncode == 2 and done.stdout == "", done.stdout
    assert done.stderr.strip() == "error: --dataset name 'ds' is given twice"


def test_a_toml_file_with_a_utf8_byte_order_mark_is_read(tmp_path: Path):
    path = tmp_path / "study.toml"
    path.write_bytes('\ufeffname = "bom"\n'.encode())
    assert read_toml(path) == {"name": "bom"}
