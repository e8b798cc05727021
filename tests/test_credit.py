"""Credit where it is due: "fine-tuning raised X" only for two runs that differ by weights alone;
any other difference (retriever, compression, precision, backend, prompts, max length) is named
by compare's caveats and by the verdict, which then credits nothing to fine-tuning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from irtune.cli.app import app
from irtune.reporting.html import html_report
from irtune.reporting.verdict import domain_answer, verdict
from irtune.results.compare import load_comparisons

from results_fixtures import LEVELS, results_doc, write

ONE = {"scifact": LEVELS["scifact"]}
BASE_LABEL, TUNED_LABEL = "minilm (base)", "minilm tuned on scifact"
TUNED_WEIGHTS = "cd" * 32  # the base model's weights are results_doc's "ab" * 32


def _dense_part(doc: dict) -> dict:
    return doc["retriever"] if doc["retriever"]["name"] == "dense" else doc["retriever"]["components"][0]


def as_hybrid(doc: dict) -> dict:
    """The run as `--retriever hybrid` records it: a fusion of its dense run and BM25."""
    bm25 = {"name": "bm25", "description": "bm25s 0.2 (method=lucene)", "encodes": False}
    doc["retriever"] = {
        "name": "hybrid",
        "description": "convex fusion of dense and bm25 runs",
        "encodes": False,
        "params": {"fusion": "convex"},
        "components": [doc["retriever"], bm25],
    }
    doc["settings"]["retriever"] = "hybrid"
    return doc


def with_compression(doc: dict) -> dict:
    _dense_part(doc)["params"] = {"backend": "torch", "dims": 16, "compression": "16 dims, int8"}
    return doc


def with_backend(doc: dict) -> dict:
    _dense_part(doc)["params"] = {"backend": "onnx"}
    return doc


def with_precision(doc: dict) -> dict:
    _dense_part(doc)["precision"] = "bf16"
    return doc


def with_e5_prompts(doc: dict) -> dict:
    doc["model"]["prompts"] = {"query": "query: ", "document": "passage: ", "source": "override"}
    return doc


def with_max_length(doc: dict) -> dict:
    _dense_part(doc)["max_seq_length"] = doc["model"]["max_seq_length"] = 512
    return doc


def _tuned(change=None) -> dict:
    doc = results_doc(TUNED_LABEL, ONE, shift=0.05, seed=1, trained_on=("scifact",))
    doc["model"]["weights_sha256"] = TUNED_WEIGHTS
    return change(doc) if change else doc


def _compared(tmp_path: Path, tuned: dict):
    paths = [
        write(tmp_path / "base" / "results.json", results_doc(BASE_LABEL, ONE)),
        write(tmp_path / "tuned" / "results.json", tuned),
    ]
    return paths, load_comparisons(paths)[0]


def test_a_model_that_differs_by_weights_alone_is_credited_to_fine_tuning(tmp_path):
    _, [comparison] = _compared(tmp_path, _tuned())
    assert comparison.differences == [] and comparison.caveats == []
    [said] = verdict([comparison])
    assert said.startswith(f"{TUNED_LABEL}: fine-tuning raised NDCG@10 on the 50 held-out scifact test")


@pytest.mark.parametrize(
    ("change", "difference"),
    [
        (as_hybrid, "retriever (dense → hybrid)"),
        (with_compression, "compression (full vectors → 16 dims, int8)"),
        (with_precision, "precision (fp32 → bf16)"),
        (with_backend, "backend (torch → onnx)"),
        (with_e5_prompts, "prompts (none → query 'query: ', document 'passage: ')"),
        (with_max_length, "max_seq_length (256 → 512)"),
    ],
)
def test_a_run_that_differs_in_more_than_weights_is_not_credited_to_fine_tuning(tmp_path, change, difference):
    paths, [comparison] = _compared(tmp_path, _tuned(change))
    assert comparison.against_base and comparison.differences == [difference]
    setting = difference.split(" (")[0]
    [caveat] = comparison.caveats
    assert caveat.startswith(f"{setting} differs")
    [said] = verdict([comparison])
    m = comparison.datasets[0].metric("ndcg@10")
    assert said.startswith(
        f"{TUNED_LABEL} vs {BASE_LABEL}: NDCG@10 higher on the 50 held-out scifact test queries: "
        f"{m.baseline:.4f} → {m.candidate:.4f} ({100 * m.relative:+.1f}%, "
    )
    assert (
        f"; the runs differ in {difference} as well as weights: the change is not credited to fine-tuning"
        in said
    )
    assert "fine-tuning raised" not in said
    page = html_report(*load_comparisons(paths))
    assert "fine-tuning raised" not in page and "not credited to fine-tuning" in page
    result = CliRunner().invoke(app, ["compare", *map(str, paths), "--json", str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    assert caveat in " ".join(result.output.split())
    assert json.loads((tmp_path / "c.json").read_text())[0]["caveats"] == [caveat]


def test_the_issue_repro_base_dense_against_tuned_hybrid(tmp_path):
    """The issue: 'fine-tuning raised NDCG@10 ... 0.0845 → 0.9247 (+994.6%)' where BM25 alone
    scored 0.904: most of the change was the retriever's."""
    low = {"scifact": {m: 0.08 for m in LEVELS["scifact"]}}
    base = results_doc(BASE_LABEL, low)
    tuned = results_doc(TUNED_LABEL, low, shift=0.84, seed=1, trained_on=("scifact",))
    tuned["model"]["weights_sha256"] = TUNED_WEIGHTS
    paths = [
        write(tmp_path / "b" / "results.json", base),
        write(tmp_path / "t" / "results.json", as_hybrid(tuned)),
    ]
    comparisons, _ = load_comparisons(paths)
    [said] = verdict(comparisons)
    assert "fine-tuning" not in said.split(";")[0]
    assert "the runs differ in retriever (dense → hybrid) as well as weights" in said
    assert comparisons[0].caveats == [
        "retriever differs (baseline dense, candidate hybrid) as well as the model's weights: part of "
        "the difference may come from it, not from the model"
    ]


def test_a_tuned_model_with_other_prompts_claims_no_transfer_or_forgetting(tmp_path):
    """The domain section's 'transfer'/'forgetting' credit training too: not across prompts."""
    both = results_doc(TUNED_LABEL, LEVELS, shift=0.05, seed=1, trained_on=("scifact",))
    both["model"]["weights_sha256"] = TUNED_WEIGHTS
    paths = [
        write(tmp_path / "base" / "results.json", results_doc(BASE_LABEL, LEVELS)),
        write(tmp_path / "tuned" / "results.json", with_e5_prompts(both)),
    ]
    comparisons, _ = load_comparisons(paths)
    assert domain_answer(comparisons) == ([], [])


def test_two_dense_runs_of_one_model_with_other_prompts_carry_a_caveat(tmp_path):
    """The seed study's central mistake: the same model with and without its prompts."""
    plain = results_doc("e5", ONE)
    prompted = with_e5_prompts(results_doc("e5 with prompts", ONE, shift=0.02, seed=1))
    paths = [write(tmp_path / "a" / "results.json", plain), write(tmp_path / "b" / "results.json", prompted)]
    [comparison], _ = load_comparisons(paths)
    assert comparison.caveats == [
        "prompts differs (baseline none, candidate query 'query: ', document 'passage: '): part of the "
        "difference may come from it, not from the model"
    ]
