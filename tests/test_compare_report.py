"""compare/report on hand-made results: alignment, significance, contamination marks, HTML."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from irtune.cli import app
from irtune.compare import compare, load_results
from irtune.errors import IrtuneError
from irtune.significance import bootstrap_ci, holm, paired_randomization_test

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
    fewer = results_doc("fewer", LEVELS, n_queries=40)
    fewer["_path"] = "fewer.json"
    with pytest.raises(IrtuneError, match=r"cannot compare scifact:test: .*50 queries.*40"):
        compare(base, fewer)
    other_data = results_doc("other", LEVELS)
    other_data["datasets"][0]["data_files_sha256"] = {"corpus.jsonl": "different"}
    other_data["_path"] = "other.json"
    with pytest.raises(IrtuneError, match="data files differ"):
        compare(base, other_data)


def test_compare_cli_marks_contamination_and_writes_json(files, tmp_path):
    base, _, _, dirty = files
    result = runner.invoke(app, ["compare", str(base), str(dirty), "--json", str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    assert "contaminated" in result.output
    data = json.loads((tmp_path / "c.json").read_text())
    assert data[0]["contaminated"] and all(d["contaminated"] for d in data[0]["datasets"])


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
    assert "<script" not in html
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
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        ["chromium", *flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    assert dom.count("<svg") >= 11  # bars + 2 scatters + 4 radars + 4 histograms
    assert "contamination-banner" in dom and "irtune report" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", *flags, f"--screenshot={shot}", "--window-size=1200,2400", out.as_uri()],
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
