"""compare/report on hand-made results: alignment, significance, contamination marks, HTML."""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from browser import chromium_command
from rich.console import Console
from typer.testing import CliRunner

from irtune import api as irtune_api
from irtune.cli.app import app
from irtune.errors import IrtuneError
from irtune.reporting.html import html_report
from irtune.reporting.markdown import markdown_report
from irtune.reporting.tables import comparison_table
from irtune.results import compare as compare_module
from irtune.results.compare import compare, load_comparisons
from irtune.results.schema import read_results as load_results
from irtune.results.significance import bootstrap_ci, holm, paired_randomization_test

from results_fixtures import LEVELS, results_doc, write

runner = CliRunner()


@pytest.fixture()
def files(tmp_path):
    base = write(tmp_path / "base" / "results.json", results_doc("base", LEVELS))
    better = write(tmp_path / "tuned" / "results.json", results_doc("tuned", LEVELS, shift=0.05, seed=1))
    same = write(tmp_path / "same" / "results.json", results_doc("same", LEVELS, shift=0.0, seed=2))
    dirty = write(
        tmp_path / "dirty" / "results.json",
        results_doc("leaky", LEVELS, shift=0.1, seed=3, contaminated=True),
    )
    return base, better, same, dirty


def test_a_real_improvement_is_significant_and_noise_is_not(files):
    base, better, same, _ = (load_results(f) for f in files)
    up = compare(base, better)
    row = up.datasets[0].metric("ndcg@10")
    assert row.delta == pytest.approx(0.05, abs=0.01)
    assert row.significant and row.ci_low > 0 and row.wins > 40
    assert row.relative == pytest.approx(row.delta / row.baseline)
    flat = compare(base, same).datasets[0].metric("ndcg@10")
    assert not flat.significant and flat.ci_low < 0 < flat.ci_high
    summary = up.summary()["ndcg@10"]
    assert summary["improved_datasets"] == 2 and summary["significant_wins"] == 2


def test_mismatched_query_sets_and_data_are_refused(files, tmp_path):
    base = load_results(files[0])
    fewer = _loaded(tmp_path, "fewer", results_doc("fewer", LEVELS, n_queries=40))
    with pytest.raises(IrtuneError, match=r"cannot compare scifact:test: .*50 queries.*40"):
        compare(base, fewer)
    other_data = results_doc("other", LEVELS)
    other_data["datasets"][0]["data_files_sha256"] = {"corpus.jsonl": "different"}
    with pytest.raises(IrtuneError, match="data files differ"):
        compare(base, _loaded(tmp_path, "other", other_data))
    older = results_doc("older", LEVELS)  # raw bytes of a gzipped file, as irtune hashed them before
    older["datasets"][0]["data_files_sha256"] = {"corpus.jsonl.gz": "raw"}
    with pytest.raises(
        IrtuneError, match=r"identify their data files differently .* evaluate the older one again"
    ):
        compare(base, _loaded(tmp_path, "older", older))


def test_a_results_file_listing_one_dataset_twice_by_content_is_refused(tmp_path):
    """Two names, one content (`cp -r data/scifact data/copy`): counting both would double the
    dataset's weight in the averages and its tests in the Holm family."""
    copied = {"scifact": LEVELS["scifact"], "copy": LEVELS["scifact"]}
    docs = [
        results_doc(label, copied, shift=shift, seed=seed)
        for label, shift, seed in (("b", 0, 0), ("t", 0.05, 1))
    ]
    for doc in docs:
        doc["datasets"][1]["data_files_sha256"] = doc["datasets"][0]["data_files_sha256"]
    base, tuned = (_loaded(tmp_path, doc["label"], doc) for doc in docs)
    with pytest.raises(
        IrtuneError, match=r"b/results.json: datasets 'copy' and 'scifact' hold the same files .*split test"
    ):
        compare(base, tuned)


V1_FILES = Path(__file__).parent / "data" / "v1"


def test_v1_results_files_still_load_and_compare(tmp_path):
    """Files written before the format version 2 (a real dense and BM25 run of SciFact,
    trimmed to 20 queries) are read through the converter, with their settings intact."""
    dense, bm25 = load_results(V1_FILES / "dense"), load_results(V1_FILES / "bm25")
    assert dense.retriever.name == "dense" and dense.retriever.precision == "bf16"
    assert dense.retriever.max_seq_length == 256 and not dense.retriever.approximate
    assert bm25.retriever.name == "bm25" and bm25.retriever.description.startswith("bm25s")
    assert bm25.model is None and dense.model is not None and dense.model.weights_sha256
    assert dense.settings.top_k == 1000 and dense.datasets[0].queries.count == 20
    comparison = compare(dense, bm25)
    assert comparison.caveats == [] and comparison.datasets[0].queries == 20
    assert comparison.datasets[0].metric("ndcg@10").baseline == pytest.approx(
        dense.datasets[0].metrics["ndcg@10"]
    )
    result = runner.invoke(
        app, ["report", str(V1_FILES / "dense"), str(V1_FILES / "bm25"), "--out", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 0, result.output


def test_a_results_file_with_a_missing_field_is_one_line_naming_it(tmp_path):
    doc = results_doc("base", LEVELS)
    del doc["datasets"][0]["queries"]
    path = write(tmp_path / "broken" / "results.json", doc)
    with pytest.raises(
        IrtuneError, match=r"results.json: invalid results file \(datasets.0.queries: Field required\)"
    ):
        load_results(path)


def test_a_results_file_whose_per_query_scores_miss_a_query_is_refused(tmp_path):
    """compare pairs per-query scores: a file holding 19 of the 20 queries it claims (an edit, a
    damaged copy) would be compared on 19 silently."""
    doc = results_doc("base", LEVELS)
    dropped = sorted(doc["datasets"][0]["per_query"])[0]
    del doc["datasets"][0]["per_query"][dropped]
    path = write(tmp_path / "edited" / "results.json", doc)
    held = len(doc["datasets"][0]["per_query"])
    with pytest.raises(
        IrtuneError, match=rf"results.json: datasets.0 \(scifact\): per_query holds {held} queries"
    ):
        load_results(path)
    doc = results_doc("base", LEVELS)
    (first, scores), *_ = doc["datasets"][0]["per_query"].items()
    doc["datasets"][0]["per_query"] = {
        "other": scores,
        **{k: v for k, v in doc["datasets"][0]["per_query"].items() if k != first},
    }
    with pytest.raises(IrtuneError, match="per_query holds"):  # same count, another query
        load_results(write(tmp_path / "swapped" / "results.json", doc))


def test_compare_cli_marks_contamination_and_writes_json(files, tmp_path):
    base, _, _, dirty = files
    result = runner.invoke(app, ["compare", str(base), str(dirty), "--json", str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    assert "contaminated" in result.output
    data = json.loads((tmp_path / "c.json").read_text())
    assert data[0]["contaminated"] and all(d["contaminated"] for d in data[0]["datasets"])


def _marked_contaminated(where: str) -> dict:
    """A contaminated run whose file holds the mark only at `where` (older or hand-made files)."""
    doc = results_doc("leaky", LEVELS, shift=0.1, seed=3)
    if where == "run and model":
        doc["contaminated"] = doc["model"]["contaminated"] = True
    elif where == "run":
        doc["contaminated"] = True
    else:  # one dataset
        doc["datasets"][0]["contaminated"] = True
    return doc


@pytest.mark.parametrize(
    ("where", "marked"),
    [("run and model", ["scifact", "nfcorpus"]), ("run", ["scifact", "nfcorpus"]), ("dataset", ["scifact"])],
)
def test_every_view_marks_the_same_numbers_contaminated(files, tmp_path, where, marked):
    """The marks of a results file are read once (its run, its model, each dataset): the
    compare table, the Markdown and the HTML report mark the same datasets and the same run."""
    dirty = write(tmp_path / "dirty2" / "results.json", _marked_contaminated(where))
    result = load_results(dirty)
    assert result.contaminated and [e.dataset for e in result.datasets if e.contaminated] == marked
    [comparison] = load_comparisons([files[0], dirty])[0]
    assert comparison.contaminated
    assert [d.dataset for d in comparison.datasets if d.contaminated] == marked
    shown = runner.invoke(app, ["compare", str(files[0]), str(dirty)], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert sum(f"{name} ⚠ contaminated" in shown.output for name in ("scifact", "nfcorpus")) == len(marked)
    md = markdown_report([comparison])
    assert [name for name in ("scifact", "nfcorpus") if f"| {name} ⚠ contaminated |" in md] == marked
    out = tmp_path / "report.html"
    assert runner.invoke(app, ["report", str(files[0]), str(dirty), "--out", str(out)]).exit_code == 0
    html = out.read_text()
    assert '<h3>leaky <span class="contaminated">⚠ contaminated</span></h3>' in html
    assert html.count(" — CONTAMINATED") == len(marked)


def test_cli_errors_are_one_line_with_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = subprocess.run(
        [sys.executable, "-m", "irtune", "compare", str(bad), str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and f"{bad}:1: malformed JSON" in lines[0]


def test_report_html_and_markdown(files, tmp_path):
    base, better, _, dirty = files
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(base), str(better), str(dirty), "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched
    assert not re.search(r"<script[^>]*\ssrc", html)  # the query table's script is inline
    assert html.count('class="chart chart-radar"') == 4  # 2 datasets x 2 comparisons
    assert html.count('class="chart chart-hist"') == 4 and 'id="chart-bars"' in html
    assert 'id="contamination-banner"' in html
    md = out.with_suffix(".md").read_text()
    assert "| scifact | NDCG@10 |" in md and "⚠ contaminated" in md


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)"
)
def test_report_renders_in_headless_chromium(files, tmp_path):
    base, better, _, dirty = files
    out = tmp_path / "report.html"
    assert (
        runner.invoke(app, ["report", str(base), str(better), str(dirty), "--out", str(out)]).exit_code == 0
    )
    dom = subprocess.run(
        chromium_command(tmp_path / "profile", "--dump-dom", out.as_uri()),
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert dom.count("<svg") >= 11  # bars + 2 scatters + 4 radars + 4 histograms
    assert "contamination-banner" in dom and "irtune report" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        chromium_command(
            tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,2400", out.as_uri()
        ),
        capture_output=True,
        timeout=120,
    )
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.std() > 10  # not blank
    assert (pixels < 128).mean() > 0.01  # ink: text and charts drawn


def test_significance_helpers():
    rng = np.random.default_rng(0)
    assert paired_randomization_test(np.zeros(10)) == 1.0
    assert paired_randomization_test(rng.normal(0.5, 0.1, 30)) < 0.001
    assert paired_randomization_test(rng.normal(0.0, 0.1, 30)) > 0.01
    low, high = bootstrap_ci(np.full(20, 0.3))
    assert low == pytest.approx(0.3) and high == pytest.approx(0.3)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


ONE_DATASET = {"scifact": LEVELS["scifact"]}


def _known_p_values(monkeypatch, values):
    """compare() then sees these p-values, in (dataset, metric) order."""
    supply = iter(values)
    monkeypatch.setattr(compare_module, "paired_randomization_test", lambda _d: next(supply))


def _loaded(tmp_path, name, doc):
    return load_results(write(tmp_path / name / "results.json", doc))


def _terminal(renderable) -> str:
    console = Console(record=True, width=200)
    console.print(renderable)
    return console.export_text()


def test_holm_covers_every_metric_of_a_single_dataset(monkeypatch, tmp_path):
    # the case: MAP@100 at p 0.041 was reported significant with one dataset
    raw = [0.004, 0.012, 0.041, 0.3]  # ndcg@10, ndcg@100, map@100, recall@100
    _known_p_values(monkeypatch, raw)
    base = _loaded(tmp_path, "base", results_doc("base", ONE_DATASET))
    tuned = _loaded(tmp_path, "tuned", results_doc("tuned", ONE_DATASET, shift=0.05, seed=1))
    comparison = compare(base, tuned)
    adjusted = [m.p_holm for m in comparison.datasets[0].metrics]
    assert adjusted == pytest.approx(holm(raw))
    assert adjusted == pytest.approx([0.016, 0.036, 0.082, 0.3])  # Holm over the 4 metrics
    assert not comparison.datasets[0].metric("map@100").significant
    assert comparison.to_json()["correction"] == {
        "method": "holm",
        "family": "comparisons x datasets x metrics",
        "comparisons": 1,
        "tests": 4,
        "datasets": 1,
        "metrics": 4,
    }


def test_holm_covers_datasets_times_metrics_and_every_view_says_so(monkeypatch, files, tmp_path):
    raw = [0.001, 0.02, 0.004, 0.3, 0.006, 0.011, 0.05, 0.009]  # scifact x 4, then nfcorpus x 4
    _known_p_values(monkeypatch, raw)
    base, better = load_results(files[0]), load_results(files[1])
    comparison = compare(base, better)
    adjusted = [m.p_holm for d in comparison.datasets for m in d.metrics]
    assert adjusted == pytest.approx(holm(raw))
    per_metric = [holm([raw[i], raw[i + 4]]) for i in range(4)]  # the old, too small family
    assert adjusted != pytest.approx([p[0] for p in per_metric] + [p[1] for p in per_metric])
    assert comparison.correction.tests == 8
    assert comparison.to_json()["correction"]["tests"] == 8
    said = "Holm-corrected over all 8 tests (2 datasets × 4 metrics)"
    assert said in _terminal(comparison_table(comparison))
    assert said in markdown_report([comparison])
    assert said in html_report([comparison], [base, better])


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"top_k": 2000}, "top_k"),
        ({"ignore_identical_ids": False}, "ignore_identical_ids"),
        ({"index": "hnsw"}, "index"),
        ({"index": "ivf", "retriever": "bm25"}, None),  # BM25 ignores --index: exact either way
        ({"index": "flat"}, None),  # FAISS flat is exact search
    ],
)
def test_runs_that_measure_different_things_are_refused(tmp_path, change, setting):
    base = _loaded(tmp_path, "base", results_doc("base", LEVELS))
    other = _loaded(tmp_path, "other", results_doc("other", LEVELS, settings=change))
    if setting is None:
        assert compare(base, other).caveats == []
        return
    for first, second in ((base, other), (other, base)):
        with pytest.raises(IrtuneError, match=setting) as caught:
            compare(first, second)
        message = str(caught.value)
        assert first.name in message and second.name in message and "\n" not in message


def test_two_approximate_runs_compare_and_show_their_index(tmp_path):
    hnsw = {"index": "hnsw"}
    base = _loaded(tmp_path, "base", results_doc("base", LEVELS, settings=hnsw))
    tuned = _loaded(tmp_path, "tuned", results_doc("tuned", LEVELS, shift=0.05, settings=hnsw))
    comparison = compare(base, tuned)
    assert comparison.caveats == []
    assert comparison.to_json()["setup"]["candidate"]["index"] == "hnsw"
    text = _terminal(comparison_table(comparison))
    assert "fp32" in text and "hnsw (FAISS, approximate)" in text


def test_dense_vs_bm25_is_a_legitimate_comparison(tmp_path):
    base = _loaded(tmp_path, "bm25", results_doc("bm25", LEVELS, settings={"retriever": "bm25"}))
    dense = _loaded(
        tmp_path, "dense", results_doc("dense", LEVELS, shift=0.05, settings={"precision": "bf16"})
    )
    comparison = compare(base, dense)
    assert comparison.caveats == []
    setup = comparison.to_json()["setup"]
    assert setup["baseline"]["retriever"] == "bm25" and setup["baseline"]["precision"] is None
    assert setup["candidate"]["precision"] == "bf16"
    text = _terminal(comparison_table(comparison))
    assert "bm25" in text and "bf16" in text and "exact search" in text


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"settings": {"precision": "bf16"}}, ("precision", "fp32", "bf16")),
        ({"max_seq_length": 512}, ("max_seq_length", "256", "512")),
    ],
)
def test_precision_or_max_length_mismatch_is_a_loud_caveat(files, tmp_path, change, words):
    base_path = files[0]
    other_path = write(tmp_path / "other" / "results.json", results_doc("other", LEVELS, **change))
    base, other = load_results(base_path), load_results(other_path)
    comparison = compare(base, other)
    assert len(comparison.caveats) == 1
    assert all(w in comparison.caveats[0] for w in words)
    result = runner.invoke(
        app, ["compare", str(base_path), str(other_path), "--json", str(tmp_path / "c.json")]
    )
    assert result.exit_code == 0, result.output
    assert comparison.caveats[0] in " ".join(result.output.split())  # under the table, maybe wrapped
    assert json.loads((tmp_path / "c.json").read_text())[0]["caveats"] == comparison.caveats
    assert comparison.caveats[0] in markdown_report([comparison])
    assert html_lib.escape(comparison.caveats[0]) in html_report([comparison], [base, other])


def test_several_candidates_share_one_holm_family(monkeypatch, tmp_path):
    """`irtune compare base a b c` reports 3 x 2 x 4 = 24 tests: each p-value is corrected
    over all of them, not over the 8 of its own comparison (which let a user compare many
    candidates and keep the one that looked significant)."""
    raw = [0.001 * (i + 1) for i in range(24)]
    _known_p_values(monkeypatch, raw)
    paths = [write(tmp_path / "base" / "results.json", results_doc("base", LEVELS))]
    for i, name in enumerate("abc"):
        doc = results_doc(name, LEVELS, shift=0.01 * (i + 1), seed=i + 1)
        paths.append(write(tmp_path / name / "results.json", doc))
    comparisons, _ = load_comparisons(paths)
    adjusted = [m.p_holm for c in comparisons for d in c.datasets for m in d.metrics]
    assert adjusted == pytest.approx(holm(raw))
    assert adjusted[7] == pytest.approx(0.008 * 17)  # 8th smallest of 24: x (24 - 7)
    said = "Holm-corrected over all 24 tests (3 comparisons × 2 datasets × 4 metrics)"
    for comparison in comparisons:
        assert comparison.correction.tests == 24 and comparison.correction.describe() == said
        assert said in _terminal(comparison_table(comparison))
    _known_p_values(monkeypatch, raw)
    assert irtune_api.compare(*paths)[0].correction.tests == 24  # the Python API too


def test_a_frontier_folders_report_takes_the_sweeps_baseline_not_the_first_folder(tmp_path):
    """`irtune report runs/sizes/*/`: the shell gives the settings alphabetically, so `d16-float`
    came first and became the baseline; the sweep compared every setting with `full`."""
    from irtune.evaluation.sweep import Frontier
    from irtune.results.files import FRONTIER_FILE

    sizes = tmp_path / "sizes"
    runs = {}
    for name, shift in (("full", 0.0), ("d16-float", -0.1), ("d64-int8", -0.02)):
        doc = results_doc(f"minilm {name}", ONE_DATASET, shift=shift, seed=len(runs))
        runs[name] = load_results(write(sizes / name / "results.json", doc))
    (sizes / FRONTIER_FILE).write_text(json.dumps(Frontier(runs, {}).to_json()))
    folders = sorted(p for p in sizes.iterdir() if p.is_dir())
    assert [p.name for p in folders] == ["d16-float", "d64-int8", "full"]
    comparisons, loaded = load_comparisons(folders)
    assert loaded[0].label == "minilm full"
    assert [(c.baseline_label, c.candidate_label) for c in comparisons] == [
        ("minilm full", "minilm d16-float"),
        ("minilm full", "minilm d64-int8"),
    ]
    out = tmp_path / "frontier.html"
    result = runner.invoke(app, ["report", *(f"{p}/" for p in folders), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "minilm d16-float vs minilm full" in out.with_suffix(".md").read_text()
    # an explicit baseline still wins, and runs of no frontier keep the first given as baseline
    comparisons, _ = load_comparisons(folders[1:], baseline=folders[0])
    assert comparisons[0].baseline_label == "minilm d16-float"
    (sizes / FRONTIER_FILE).unlink()
    assert load_comparisons(folders)[1][0].label == "minilm d16-float"


def _tuned_pair(tmp_path, base_doc: dict, tuned_doc: dict):
    tuned_doc["model"]["weights_sha256"] = "cd" * 32
    paths = [
        write(tmp_path / "b" / "results.json", base_doc),
        write(tmp_path / "t" / "results.json", tuned_doc),
    ]
    return load_comparisons(paths)[0][0]


def test_fine_tuning_is_not_credited_when_the_approximate_indexes_differ(tmp_path):
    """Old code: base on HNSW M=64, tuned on HNSW M=4: a caveat, yet `credits_training=True` and
    "fine-tuning raised NDCG@10". Credit and caveats come from one list of differences."""
    from irtune.reporting.verdict import verdict

    one = {"scifact": LEVELS["scifact"]}
    hnsw = {"index": "hnsw"}
    base = results_doc("minilm (base)", one, settings=hnsw)
    tuned = results_doc("minilm tuned", one, shift=0.05, seed=1, trained_on=("scifact",), settings=hnsw)
    base["retriever"]["index_params"], tuned["retriever"]["index_params"] = {"m": 64}, {"m": 4}
    comparison = _tuned_pair(tmp_path, base, tuned)
    assert comparison.differences == ["index (hnsw {'m': 64} → hnsw {'m': 4})"]
    assert not comparison.credits_training
    assert comparison.caveats == [
        "index differs (baseline hnsw {'m': 64}, candidate hnsw {'m': 4}): part of the difference may "
        "come from it, not from the model"
    ]
    assert "fine-tuning raised" not in verdict([comparison])[0]


def test_a_dataset_trained_on_under_another_name_is_held_out_not_never_trained_on(tmp_path):
    """Old code: trained on `my-scifact`, whose files are the evaluated `scifact`'s, and the
    verdict said "the 50 never-trained-on scifact test queries"."""
    from irtune.reporting.verdict import verdict

    one = {"scifact": LEVELS["scifact"]}
    base = results_doc("minilm (base)", one)
    tuned = results_doc("minilm tuned", one, shift=0.05, seed=1, trained_on=("my-scifact",))
    files = {"corpus.jsonl": "c" * 64, "queries.jsonl": "q" * 64}
    for doc in (base, tuned):
        doc["datasets"][0]["data_files_sha256"] = {**files, "qrels/test.tsv": "t" * 64}
    tuned["model"]["training"]["train_sets"][0]["data_files_sha256"] = {**files, "qrels/train.tsv": "r" * 64}
    comparison = _tuned_pair(tmp_path, base, tuned)
    assert "on the 50 held-out scifact test queries" in verdict([comparison])[0]
    assert [d.trained_on for d in comparison.datasets] == [True]
