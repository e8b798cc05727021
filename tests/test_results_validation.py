"""Numbers are checked when read: a results file whose metrics are not finite, not in [0, 1], or
whose averages are not the mean of the per-query values they summarise is refused with one
line naming the file and the field, by compare, report and export alike (exit 2)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from irtune.errors import DataError
from irtune.results.schema import read_results

from results_fixtures import LEVELS, results_doc, write

ONE = {"scifact": LEVELS["scifact"]}


def _first_query(doc: dict) -> str:
    return sorted(doc["datasets"][0]["per_query"])[0]


def _set_per_query(value: float):
    def change(doc: dict) -> None:
        doc["datasets"][0]["per_query"][_first_query(doc)]["ndcg@10"] = value

    return change


def _set_average(value: float):
    def change(doc: dict) -> None:
        doc["datasets"][0]["metrics"]["ndcg@10"] = value

    return change


def _consistent(value: float):
    """A per-query value with the average recomputed, so only the value itself is wrong."""

    def change(doc: dict) -> None:
        entry = doc["datasets"][0]
        entry["per_query"][_first_query(doc)]["ndcg@10"] = value
        values = [v["ndcg@10"] for v in entry["per_query"].values()]
        entry["metrics"]["ndcg@10"] = math.fsum(values) / len(values)

    return change


def _drop_per_query(doc: dict) -> None:
    del doc["datasets"][0]["per_query"][_first_query(doc)]["ndcg@10"]


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (_drop_per_query, "per_query", "ndcg@10 (averaged in metrics) is held by 49 of 50 queries"),
        (_set_per_query(math.nan), "per_query.scifact-q0.ndcg@10", "nan is not a number in [0, 1]"),
        (_consistent(math.nan), "per_query.scifact-q0.ndcg@10", "nan is not a number in [0, 1]"),
        (_consistent(7.5), "per_query.scifact-q0.ndcg@10", "7.5 is not a number in [0, 1]"),
        (_consistent(-0.25), "per_query.scifact-q0.ndcg@10", "-0.25 is not a number in [0, 1]"),
        (_consistent(math.inf), "per_query.scifact-q0.ndcg@10", "inf is not a number in [0, 1]"),
        (_set_average(math.nan), "metrics.ndcg@10", "nan is not a number in [0, 1]"),
        (_set_average(0.9), "metrics.ndcg@10", "0.9 is not the mean of its 50 per-query values"),
        (_set_per_query(0.0), "metrics.ndcg@10", "is not the mean of its 50 per-query values"),
    ],
)
def test_a_bad_number_is_one_line_naming_file_and_field(tmp_path, change, field, problem):
    doc = results_doc("base", ONE)
    change(doc)
    path = write(tmp_path / "bad" / "results.json", doc)
    with pytest.raises(DataError) as caught:
        read_results(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: datasets.0 (scifact): {field}: ")
    assert problem in message and "\n" not in message


def test_averages_written_by_the_evaluator_are_accepted(tmp_path):
    """fsum/n (the evaluator) and a plain sum/n (the fixtures) differ in the last bits: both pass."""
    doc = results_doc("base", LEVELS)
    read_results(write(tmp_path / "ok" / "results.json", doc))
    for entry in doc["datasets"]:
        entry["metrics"] = {m: v * (1 + 1e-12) for m, v in entry["metrics"].items()}
    read_results(write(tmp_path / "ulp" / "results.json", doc))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "irtune", *args], capture_output=True, text=True)


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.strip()]
    return line


def test_compare_report_and_export_refuse_a_nan_with_exit_2(tmp_path):
    """The issue: a NaN gave `p_holm 0.0004 *` in compare, '→ nan' in the verdict and
    `"main_score": NaN` in the MTEB export, all with exit 0."""
    base = write(tmp_path / "base" / "results.json", results_doc("base", ONE))
    doc = results_doc("tuned", ONE, shift=0.05, seed=1)
    _set_per_query(math.nan)(doc)
    bad = write(tmp_path / "tuned" / "results.json", doc)
    for args in (
        ("compare", str(base), str(bad)),
        ("report", str(base), str(bad), "--out", str(tmp_path / "r.html")),
        ("export", str(bad), "--out", str(tmp_path / "mteb")),
    ):
        assert "per_query.scifact-q0.ndcg@10: nan is not a number in [0, 1]" in _one_line(_cli(*args))
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "mteb").exists()


def test_a_deeply_nested_file_is_one_line(tmp_path):
    """json.loads raised RecursionError on 100,000 nested lists: a traceback, not a message."""
    path = tmp_path / "deep" / "results.json"
    path.parent.mkdir()
    path.write_text('{"format": "irtune-results-v2", "label": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(DataError, match=r"results.json: malformed JSON \(nested too deeply\)"):
        read_results(path)
    line = _one_line(_cli("compare", str(path), str(path)))
    assert line.endswith("results.json: malformed JSON (nested too deeply)")


def test_results_built_in_memory_are_checked_too():
    """Old code checked only `read_results`: `ResultsFile.model_validate` took a NaN and
    `irtune.compare` printed `candidate: nan, p_holm 0.0004`."""
    from pydantic import ValidationError

    from irtune.results.schema import ResultsFile

    doc = results_doc("tuned", ONE, shift=0.05, seed=1)
    _set_per_query(math.nan)(doc)
    with pytest.raises(ValidationError) as caught:
        ResultsFile.model_validate(doc)
    (error,) = caught.value.errors()
    assert error["loc"] == ("datasets", 0)
    assert error["msg"] == "per_query.scifact-q0.ndcg@10: nan is not a number in [0, 1]"


def test_an_average_without_per_query_values_is_refused(tmp_path):
    """Old code: a metric that no query held was not checked, and its average (0.99) was
    exported as MTEB's main score."""
    doc = results_doc("base", ONE)
    entry = doc["datasets"][0]
    for scores in entry["per_query"].values():
        del scores["ndcg@10"]
    entry["metrics"]["ndcg@10"] = 0.99
    path = write(tmp_path / "bad" / "results.json", doc)
    with pytest.raises(DataError) as caught:
        read_results(path)
    assert str(caught.value) == (
        f"{path}: datasets.0 (scifact): per_query: ndcg@10 (averaged in metrics) is held by 0 of 50 queries"
    )
