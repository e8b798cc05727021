"""The report tells its answer first: verdict in words, training and selection curves, the
domain study's two questions (domain vs per-dataset models, transfer or forgetting), each
backed by a test of the report's one Holm family."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from browser import chromium_command

from irtune.reporting.files import write_report
from irtune.reporting.html import html_report
from irtune.reporting.markdown import markdown_report
from irtune.reporting.training import training_rows
from irtune.reporting.verdict import verdict
from irtune.results.compare import load_comparisons
from irtune.results.model import TrainingSummary

from results_fixtures import LEVELS, results_doc, training_summary, write


def _quickstart_like(tmp_path: Path) -> list[Path]:
    """A dense baseline, BM25 and one model tuned on scifact, on scifact's test queries."""
    one = {"scifact": LEVELS["scifact"]}
    return [
        write(tmp_path / "base" / "results.json", results_doc("minilm (base)", one)),
        write(
            tmp_path / "bm25" / "results.json",
            results_doc("bm25", one, shift=0.0, seed=4, settings={"retriever": "bm25"}),
        ),
        write(
            tmp_path / "tuned" / "results.json",
            results_doc("minilm tuned on scifact", one, shift=0.05, seed=1, trained_on=("scifact",)),
        ),
    ]


def _domain_study(tmp_path: Path) -> list[Path]:
    """Baseline; per-dataset models that gain on their own dataset and lose / hold on the other;
    a domain model on both. Every run is evaluated on both datasets."""

    def tuned(label, trained_on, seed, shift):
        doc = results_doc(label, LEVELS, shift=0.0, seed=seed, trained_on=trained_on)
        for entry in doc["datasets"]:
            move = shift[entry["dataset"]]
            for scores in entry["per_query"].values():
                for metric in scores:
                    scores[metric] = min(1.0, max(0.0, scores[metric] + move))
            entry["metrics"] = {
                m: sum(s[m] for s in entry["per_query"].values()) / len(entry["per_query"])
                for m in entry["metrics"]
            }
        return write(tmp_path / label.replace(" ", "_") / "results.json", doc)

    return [
        write(tmp_path / "base" / "results.json", results_doc("minilm (base)", LEVELS)),
        tuned("minilm tuned on scifact", ("scifact",), 1, {"scifact": 0.05, "nfcorpus": -0.06}),
        tuned("minilm tuned on nfcorpus", ("nfcorpus",), 2, {"scifact": 0.0, "nfcorpus": 0.05}),
        tuned(
            "minilm tuned on scifact+nfcorpus (scientific)",
            ("nfcorpus", "scifact"),
            3,
            {"scifact": 0.05, "nfcorpus": 0.0},
        ),
    ]


def test_the_verdict_states_each_result_in_words_with_its_numbers(tmp_path):
    comparisons, results = load_comparisons(_quickstart_like(tmp_path))
    page = html_report(comparisons, results)
    verdict = page[page.index('<section id="verdict">') : page.index("</section>")]
    tuned = next(c for c in comparisons if c.candidate_trained_on)
    m = tuned.datasets[0].metric("ndcg@10")
    assert m.significant and m.delta > 0
    assert (
        f"minilm tuned on scifact: fine-tuning raised NDCG@10 on the 50 held-out scifact test queries: "
        f"{m.baseline:.4f} → {m.candidate:.4f} ({100 * m.relative:+.1f}%, " in verdict
    )
    bm25 = next(c for c in comparisons if c.candidate_label == "bm25").datasets[0].metric("ndcg@10")
    assert not bm25.significant
    assert "bm25 vs minilm (base): no significant change in NDCG@10 on the 50 scifact test queries" in verdict
    assert verdict.index("minilm tuned on scifact") < verdict.index("bm25 vs")  # the tuned model first
    # the verdict comes before any table
    assert page.index('id="verdict"') < page.index("<table")
    assert "## Verdict" in markdown_report(comparisons)


def test_a_domain_study_is_answered_with_head_to_head_tests_in_the_same_family(tmp_path):
    comparisons, results = load_comparisons(_domain_study(tmp_path))
    head = [c for c in comparisons if c.kind == "head to head"]
    assert sorted((c.baseline_label, c.datasets[0].dataset) for c in head) == [
        ("minilm tuned on nfcorpus", "nfcorpus"),
        ("minilm tuned on scifact", "scifact"),
    ]
    assert all(len(c.datasets) == 1 for c in head)
    # one family: 3 candidates x 2 datasets x 4 metrics + 2 head-to-head x 1 dataset x 4 metrics
    assert {c.correction.tests for c in comparisons if c.correction} == {32}
    page = html_report(comparisons, results)
    domain = page[
        page.index('<section id="domain">') : page.index("</section>", page.index('<section id="domain">'))
    ]
    scifact = next(c for c in head if c.datasets[0].dataset == "scifact").datasets[0].metric("ndcg@10")
    assert not scifact.significant  # both +0.05 on scifact: the domain model matches
    assert (
        "On scifact, minilm tuned on scifact+nfcorpus (scientific) is not significantly different from "
        "minilm tuned on scifact" in domain
    )
    nf = next(c for c in head if c.datasets[0].dataset == "nfcorpus").datasets[0].metric("ndcg@10")
    assert nf.significant and nf.delta < 0
    assert (
        "On nfcorpus, minilm tuned on scifact+nfcorpus (scientific) falls short of minilm tuned on nfcorpus"
        in domain
    )
    assert "minilm tuned on scifact on nfcorpus, which it never trained on" in domain
    assert "forgetting (a significant loss)" in domain  # -0.06 on nfcorpus
    assert "minilm tuned on nfcorpus on scifact, which it never trained on" in domain
    assert "no significant transfer or forgetting" in domain  # 0.0 on scifact
    assert 'id="chart-domain"' in domain and domain.count("<svg") == 1
    # the summary and the bars chart only hold the comparisons against the baseline
    summary = page[
        page.index('<table class="summary">') : page.index("</table>", page.index('<table class="summary">'))
    ]
    assert summary.count("<tr>") == 4


def test_no_domain_section_without_two_tuned_runs(tmp_path):
    comparisons, results = load_comparisons(_quickstart_like(tmp_path))
    assert all(c.kind == "vs baseline" for c in comparisons)
    assert 'id="domain"' not in html_report(comparisons, results)


def test_training_is_a_readable_table_not_a_dict_dump(tmp_path):
    rows = dict(training_rows(TrainingSummary.model_validate(training_summary(("scifact",)))))
    assert rows["trained on"].startswith("scifact:train (held-out subset): 640 queries")
    assert rows["hard negatives"] == "1 per row, mined from the base model's ranks 0–50, relative margin 0.05"
    assert rows["shipped"] == "epoch 2, interpolation α 0.5 (fine-tuned); dev NDCG@10 0.6800 (base) → 0.7100"
    assert rows["training wall time"] == "788 s"
    comparisons, results = load_comparisons(_quickstart_like(tmp_path))
    page = html_report(comparisons, results)
    assert "{'" not in page and "&#x27;base_model&#x27;" not in page  # no raw Python dicts
    assert page.count('id="chart-training"') == 1
    assert page.index('id="chart-training"') < page.index('<table class="summary">')


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)"
)
def test_the_first_screen_shows_the_verdict_and_the_training_curves(tmp_path):
    """Opened in Chromium at 1280x900, the verdict and the training/selection chart are on the
    first screen (measured by the browser's layout, not guessed from the HTML)."""
    html_path, _, _ = write_report(_quickstart_like(tmp_path), tmp_path / "report.html")
    probe = tmp_path / "probe.html"
    script = (
        "<script>const box = id => { const r = document.getElementById(id).getBoundingClientRect();"
        " return {top: r.top, bottom: r.bottom, height: r.height}; };"
        " document.body.setAttribute('data-layout', JSON.stringify("
        "{verdict: box('verdict'), training: box('chart-training'), height: window.innerHeight}));</script>"
    )
    probe.write_text(html_path.read_text().replace("</body>", script + "</body>"))
    profile, window = tmp_path / "profile", "--window-size=1280,900"
    dom = subprocess.run(
        chromium_command(profile, window, "--dump-dom", probe.as_uri()),
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    layout = json.loads(re.search(r"data-layout=\"([^\"]+)\"", dom).group(1).replace("&quot;", '"'))
    screen = layout["height"]  # the viewport headless Chromium lays out (its window less its frame)
    assert screen >= 700
    assert layout["verdict"]["top"] > 0 and layout["verdict"]["bottom"] <= screen
    assert layout["training"]["height"] > 200 and layout["training"]["bottom"] <= screen
    shot = tmp_path / "first-screen.png"
    subprocess.run(
        chromium_command(profile, window, f"--screenshot={shot}", html_path.as_uri()),
        capture_output=True,
        timeout=120,
    )
    from PIL import Image

    image = Image.open(shot)
    assert image.size == (1280, 900)


def test_fine_tuning_is_credited_only_against_the_model_it_was_tuned_from(tmp_path):
    """With BM25 as the baseline, a tuned model's difference is not what fine-tuning did."""
    base, bm25, tuned = _quickstart_like(tmp_path)
    comparisons, _ = load_comparisons([bm25, tuned, base])
    assert not any(c.against_base for c in comparisons)
    words = " ".join(verdict(comparisons))
    assert "fine-tuning" not in words and "minilm tuned on scifact vs bm25:" in words
    doc = json.loads(tuned.read_text())
    doc["model"]["training"]["base_model"]["weights_sha256"] = "ef" * 32  # tuned from another model
    other = write(tmp_path / "other" / "results.json", doc)
    comparisons, _ = load_comparisons([base, other])
    assert not comparisons[0].against_base and "fine-tuning" not in " ".join(verdict(comparisons))


def test_each_run_keeps_one_color_in_every_chart(tmp_path):
    """A legend is read once: each run is drawn in the same color in the training curves, the
    domain chart and the metric bars, and no two runs share one."""
    from irtune.reporting.charts import COLORS, run_colors

    comparisons, results = load_comparisons(_domain_study(tmp_path))
    page = html_report(comparisons, results)
    color = run_colors([r.label for r in results])
    assert len(set(color.values())) == len(results) == 4

    def drawn(chart_id: str) -> set[str]:
        start = page.index(f'id="{chart_id}"')
        svg = page[start : page.index("</svg>", start)]
        return {c for c in COLORS if c in svg}

    tuned = {color[r.label] for r in results if r.model and r.model.training}
    assert len(tuned) == 3 and color["minilm (base)"] not in tuned
    assert drawn("chart-training") == tuned
    assert drawn("chart-domain") == tuned
    assert drawn("chart-bars") == set(color.values())


def test_the_verdict_names_every_significant_change_not_only_the_headline(tmp_path):
    """A model whose NDCG@10 did not move significantly but whose MAP@100 rose and whose
    Recall@100 fell must not read as 'nothing changed'."""
    one = {"scifact": LEVELS["scifact"]}
    doc = results_doc("minilm tuned on scifact", one, seed=1, trained_on=("scifact",))
    entry = doc["datasets"][0]
    for scores in entry["per_query"].values():
        scores["map@100"] = min(1.0, scores["map@100"] + 0.05)
        scores["ndcg@100"] = max(0.0, scores["ndcg@100"] - 0.05)
    entry["metrics"] = {
        m: sum(s[m] for s in entry["per_query"].values()) / len(entry["per_query"]) for m in entry["metrics"]
    }
    paths = [
        write(tmp_path / "base" / "results.json", results_doc("minilm (base)", one)),
        write(tmp_path / "tuned" / "results.json", doc),
    ]
    comparisons, _ = load_comparisons(paths)
    d = comparisons[0].datasets[0]
    assert not d.metric("ndcg@10").significant
    assert d.metric("map@100").significant and d.metric("ndcg@100").significant
    (said,) = verdict(comparisons)
    assert "no significant change in NDCG@10" in said
    map100, ndcg100 = d.metric("map@100"), d.metric("ndcg@100")
    assert f"MAP@100 up {map100.baseline:.4f} → {map100.candidate:.4f}" in said
    assert f"NDCG@100 down {ndcg100.baseline:.4f} → {ndcg100.candidate:.4f}" in said


def test_a_change_significant_only_before_the_correction_says_so():
    """'No significant change' beside a CI that excludes 0 reads as a contradiction unless the
    sentence says the test was significant before the Holm correction, and only then."""
    from irtune.reporting.verdict import _change
    from irtune.results.compare import MetricComparison

    def metric(p_value: float) -> MetricComparison:
        return MetricComparison(
            metric="ndcg@10", baseline=0.6457, candidate=0.6863, ci_low=0.006, ci_high=0.0757,
            p_value=p_value, wins=72, ties=168, losses=60, p_holm=0.107,
        )  # fmt: skip

    said = _change(metric(0.013), "the 300 scifact test queries", tuned=False)
    assert said.startswith("no significant change in NDCG@10") and "p_holm = 0.107" in said
    assert "uncorrected p = 0.013" in said
    assert "uncorrected" not in _change(metric(0.2), "the 300 scifact test queries", tuned=False)


def test_runs_that_share_a_label_are_told_apart(tmp_path):
    """`irtune eval m` and `irtune eval m --precision fp16` are both labelled "m": in one report
    they were one name in every table and one color in every chart."""
    one = {"scifact": LEVELS["scifact"]}
    paths = [
        write(tmp_path / "fp32" / "results.json", results_doc("minilm", one)),
        write(tmp_path / "fp16" / "results.json", results_doc("minilm", one, shift=0.01, seed=2)),
    ]
    comparisons, results = load_comparisons(paths)
    assert [r.label for r in results] == ["minilm (fp32)", "minilm (fp16)"]
    assert (comparisons[0].baseline_label, comparisons[0].candidate_label) == (
        "minilm (fp32)",
        "minilm (fp16)",
    )
    page = html_report(comparisons, results)
    assert "minilm (fp16) vs minilm (fp32)" in page


def test_verdict_wording_never_says_unchanged_and_head_to_head_reads_candidate_first():
    from irtune.reporting.verdict import _p, _short
    from irtune.results.compare import MetricComparison

    flat = MetricComparison(
        metric="recall@100", baseline=0.925, candidate=0.95, ci_low=0.005, ci_high=0.047,
        p_value=0.0001, wins=10, ties=287, losses=3, p_holm=0.06,
    )  # fmt: skip
    said = _short(flat)
    assert "unchanged" not in said and said.startswith("Recall@100 not significantly changed")
    assert "uncorrected p < 0.001" in _p(flat)
    up = flat.model_copy(update={"p_holm": 0.01})
    assert _short(up).startswith("Recall@100 up 0.9250 → 0.9500")
    assert _short(up, head_to_head=True).startswith("Recall@100 higher (0.9500 vs 0.9250")
