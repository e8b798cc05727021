"""Per-query analysis (issue 27 §1): which queries moved and how their rankings changed, the
slices with their paired tests (Holm within the slice family), the report's per-query section
(escaped, sortable and filterable offline) and `irtune inspect`.

The fixture is a tiny dataset and two hand-written runs whose every per-query value is known:
pytrec_eval (trec_eval itself) is the oracle for the numbers, the runs for the ranks."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytrec_eval
from browser import chromium_command
from test_light_imports import _run_cli

from irtune.core.files import sha256_text
from irtune.data.beir import BeirDataset
from irtune.evaluation.runner import write_run_file
from irtune.reporting.html import html_report
from irtune.reporting.queries import analyse, read_run
from irtune.results.compare import compare, load_comparisons
from irtune.results.metrics import HEADLINE_METRICS, evaluate_run
from irtune.results.schema import read_results
from irtune.results.significance import holm, paired_randomization_test

from conftest import assert_one_line_error, irtune, write_beir
from results_fixtures import LEVELS, results_doc, write

DATASET = "tinyds"
HOSTILE_TITLE = '<script>alert("title")</script> & Vitamin D'
HOSTILE_QUERY = "<b>vitamin</b> & <img src=x onerror=alert(1)> fractures"
CORPUS = {
    "d1": {"title": "Aspirin and heart attacks", "text": "Aspirin lowers the risk of heart attacks."},
    "d2": {"title": "Statins", "text": "Statins reduce cholesterol and cardiovascular events."},
    "d3": {"title": HOSTILE_TITLE, "text": "Vitamin D supplements do not prevent fractures."},
    "d4": {"title": "", "text": "Statins lower cholesterol in adults with diabetes, a trial found."},
    "d5": {"title": "Exercise", "text": "Regular exercise improves sleep quality."},
    "d6": {"title": "Graded evidence", "text": "Vitamin D and statins in older adults with heart disease."},
    "d7": {"title": "Partly relevant", "text": "Heart disease in older adults."},
    "d8": {"title": "Sleep", "text": "Exercise and sleep."},
}
QUERIES = {
    "q1": "aspirin heart",
    "q2": HOSTILE_QUERY,  # 6 words
    "q3": "do statins lower cholesterol in adults with diabetes",  # 8 words
    "q4": "exercise",
    "q5": "graded judgements of vitamin d and statins in older adults with heart disease today",  # 14
    "q6": "exercise sleep",
}
QRELS = {
    "q1": {"d1": 1},
    "q2": {"d3": 1},
    "q3": {"d2": 1, "d4": 1},
    "q4": {"d5": 1},
    "q5": {"d6": 2, "d7": 1},
    "q6": {"d8": 1, "d1": 0},  # a grade-0 row: judged, not relevant
}
BASE = {
    "q1": ["d2", "d3", "d1", "d4"],  # relevant at 3: 1/log2(4) = 0.5
    "q2": ["d3", "d1", "d2"],  # 1.0
    "q3": ["d2", "d4", "d1"],  # 1.0
    "q4": ["d1", "d2", "d3"],  # its relevant document is not retrieved: 0.0
    "q5": ["d7", "d6", "d1"],
    "q6": ["d1", "d8"],
}
TUNED = {
    "q1": ["d1", "d2"],  # 1.0: +0.5
    "q2": ["d1", "d3"],
    "q3": ["d2", "d1", "d4"],
    "q4": ["d5", "d1"],  # 1.0: +1.0
    "q5": ["d6", "d7"],
    "q6": ["d1", "d8"],  # unchanged
}


def _scores(rankings: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    return {q: {d: float(len(docs) - i) for i, d in enumerate(docs)} for q, docs in rankings.items()}


def _oracle(rankings: dict[str, list[str]]) -> dict[str, float]:
    """NDCG@10 per query by trec_eval (pytrec_eval), not by irtune."""
    evaluator = pytrec_eval.RelevanceEvaluator(QRELS, {"ndcg_cut_10"})
    return {q: v["ndcg_cut_10"] for q, v in evaluator.evaluate(_scores(rankings)).items()}


def _run_folder(folder: Path, label: str, rankings: dict[str, list[str]], data: Path) -> Path:
    """results.json and its run file as `irtune eval` writes them, for these rankings."""
    run = _scores(rankings)
    doc = results_doc(label, {DATASET: LEVELS["scifact"]}, n_queries=len(QUERIES))
    per_query = evaluate_run(QRELS, run, HEADLINE_METRICS)
    entry = doc["datasets"][0]
    entry.update(
        per_query=per_query,
        metrics={m: math.fsum(v[m] for v in per_query.values()) / len(per_query) for m in HEADLINE_METRICS},
        queries={**entry["queries"], "count": len(QUERIES), "ids_sha256": sha256_text(*sorted(QUERIES))},
        data_files_sha256=BeirDataset(data / DATASET).file_hashes("test"),
        corpus_size=len(CORPUS),
        run_file=f"runs/{DATASET}.test.trec",
    )
    write_run_file(folder / "runs" / f"{DATASET}.test.trec", run, tag=label)
    return write(folder / "results.json", doc)


@dataclass
class Pair:
    data: Path
    base: Path
    tuned: Path


@pytest.fixture()
def pair(tmp_path) -> Pair:
    data = tmp_path / "data"
    write_beir(data / DATASET, CORPUS, QUERIES, {"test": QRELS})
    return Pair(
        data,
        _run_folder(tmp_path / "base", "base", BASE, data),
        _run_folder(tmp_path / "tuned", "tuned", TUNED, data),
    )


def _analysis(pair: Pair, data_dir: Path | None = None, query: str | None = None):
    base, tuned = read_results(pair.base), read_results(pair.tuned)
    return analyse(compare(base, tuned), base, tuned, data_dir or pair.data, query)


def test_every_query_moves_by_what_trec_eval_says(pair):
    before, after = _oracle(BASE), _oracle(TUNED)
    assert before["q1"] == 0.5 and after["q4"] == 1.0 and before["q4"] == 0.0  # the fixture's design
    (found,) = _analysis(pair).datasets
    assert [(r.qid, r.baseline, r.candidate) for r in found.rows] == [
        (q, before[q], after[q]) for q in sorted(QUERIES)
    ]
    assert [r.delta for r in found.rows] == [after[q] - before[q] for q in sorted(QUERIES)]
    assert [(r.text, r.relevant, r.words) for r in found.rows] == [
        ("aspirin heart", 1, 2),
        (HOSTILE_QUERY, 1, 6),
        (QUERIES["q3"], 2, 8),
        ("exercise", 1, 1),
        (QUERIES["q5"], 2, 14),
        ("exercise sleep", 1, 2),
    ]
    # gained most: q4 +1, q1 +0.5, q5; lost most: q2, q3; q6 is a tie, in neither
    assert [r.qid for r in found.gained] == ["q4", "q1", "q5"]
    assert [r.qid for r in found.lost] == ["q2", "q3"]


def test_the_movers_rankings_come_from_the_run_files_with_titles_and_relevance(pair):
    (found,) = _analysis(pair).datasets
    assert sorted(found.stories) == ["q1", "q2", "q3", "q4", "q5"]
    q4 = found.stories["q4"]
    assert [(r.doc.doc_id, r.before, r.after) for r in q4.ranks] == [("d5", None, 1)]
    assert q4.depth == 1000  # the depth the runs were retrieved to (top_k)
    q1 = found.stories["q1"]
    assert [(h.doc_id, h.title, h.grade) for h in q1.top_before] == [
        ("d2", "Statins", 0),
        ("d3", HOSTILE_TITLE, 0),
        ("d1", "Aspirin and heart attacks", 1),
        ("d4", CORPUS["d4"]["text"], 0),  # no title: the start of its text
    ]
    assert [(h.doc_id, h.grade) for h in q1.top_after] == [("d1", 1), ("d2", 0)]
    assert [(r.doc.doc_id, r.before, r.after) for r in q1.ranks] == [("d1", 3, 1)]
    q5 = found.stories["q5"]  # graded: best rank in either run first, then the higher grade
    assert [(r.doc.doc_id, r.doc.grade, r.before, r.after) for r in q5.ranks] == [
        ("d6", 2, 2, 1),
        ("d7", 1, 1, 2),
    ]
    assert any(
        "rankings from" in s and "reproduces every recorded per-query value" in s for s in found.sources
    )


def test_one_query_is_told_on_request_and_an_unknown_one_is_refused(pair):
    (found,) = _analysis(pair, query="q6").datasets
    assert list(found.stories) == ["q6"]
    story = found.stories["q6"]
    assert [(r.doc.doc_id, r.before, r.after) for r in story.ranks] == [("d8", 2, 2)]
    assert [(h.doc_id, h.grade) for h in story.top_before] == [("d1", 0), ("d8", 1)]  # grade 0: not relevant
    with pytest.raises(Exception, match=r"query 'q9' is not among the 6 queries both runs evaluated"):
        _analysis(pair, query="q9")


def test_slices_are_tested_pairwise_and_holm_corrected_within_their_family(pair):
    analysis = _analysis(pair)
    before, after = _oracle(BASE), _oracle(TUNED)
    expected = [
        ("query length", "1–5 words", ["q1", "q4", "q6"]),
        ("query length", "6–10 words", ["q2", "q3"]),
        ("query length", "11–20 words", ["q5"]),
        ("relevant documents", "1 relevant", ["q1", "q2", "q4", "q6"]),
        ("relevant documents", "2–3 relevant", ["q3", "q5"]),
        ("dataset", DATASET, sorted(QUERIES)),
    ]
    deltas = [[after[q] - before[q] for q in qids] for _, _, qids in expected]
    pvalues = [paired_randomization_test(d) for d in deltas]
    assert [(t.family, t.name, t.queries) for t in analysis.slices] == [
        (f, n, len(q)) for f, n, q in expected
    ]
    assert [t.p_value for t in analysis.slices] == pvalues
    assert [t.p_holm for t in analysis.slices] == holm(pvalues)  # one family: the 6 slice tests
    assert [t.delta for t in analysis.slices] == pytest.approx([sum(d) / len(d) for d in deltas], abs=1e-15)
    assert "Holm-corrected over the 6 slice tests of this comparison" in analysis.correction()


def _report(pair: Pair, data_dir: Path | None = None) -> str:
    comparisons, results = load_comparisons([pair.base, pair.tuned])
    return html_report(comparisons, results, data_dir or pair.data)


def _section(page: str) -> str:
    start = page.index('<section class="per-query"')
    return page[start : page.index("</section>", start)]


def test_the_report_tells_the_movers_in_words_and_escapes_user_text(pair):
    page = _report(pair)
    section = _section(page)
    assert "Which queries moved: tuned vs base" in section
    assert "tinyds:test: 6 queries: 3 gained, 1 unchanged, 2 lost NDCG@10." in section
    assert "<strong>+1.0000</strong> NDCG@10 (0.0000 → 1.0000): <q>exercise</q> <code>q4</code>" in section
    assert "“Exercise” (grade 1) rank not in the top 1000 → 1" in section
    assert "“Aspirin and heart attacks” (grade 1) rank 3 → 1" in section
    # user text is data, never markup: escaped in prose, cells and the filter's attribute
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>vitamin" not in page
    assert html_escaped(HOSTILE_TITLE) in section and html_escaped(HOSTILE_QUERY) in section
    assert (
        'data-text="q2 &lt;b&gt;vitamin&lt;/b&gt; &amp; &lt;img src=x onerror=alert(1)&gt; fractures"'
        in section
    )
    # the slices' correction is said, and the table holds every query
    assert "Holm-corrected over the 6 slice tests of this comparison" in section
    assert section.count("<tr data-text=") == len(QUERIES)
    # self-contained: one inline script, nothing fetched
    assert page.count("<script>") == 1 and "src=" not in page.replace("src=x", "")
    assert "http" not in page[page.index("<script>") :]


def html_escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_irtune_report_reads_the_datasets_under_data_dir(pair, tmp_path):
    out = tmp_path / "report.html"
    done = irtune("report", str(pair.base), str(pair.tuned), "--out", str(out), "--data-dir", str(pair.data))
    assert done.returncode == 0, done.stderr
    assert "<q>exercise</q> <code>q4</code>" in _section(out.read_text(encoding="utf-8"))


def test_without_the_dataset_the_report_says_why_texts_and_rankings_are_missing(pair, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    section = _section(_report(pair, elsewhere))
    assert (
        f"query texts and rankings not shown: dataset &quot;{DATASET}&quot; not found in {elsewhere}"
        in section
    )
    assert section.count("<tr data-text=") == len(QUERIES)  # the numbers are still every query's
    assert "<q>" not in section


def test_a_dataset_with_other_files_is_not_used(pair):
    qrels = pair.data / DATASET / "qrels" / "test.tsv"
    qrels.write_bytes(qrels.read_bytes().replace(b"q4\td5\t1", b"q4\td1\t1"))
    (found,) = _analysis(pair).datasets
    assert found.stories == {} and all(r.text is None for r in found.rows)
    assert found.sources == [
        f"query texts and rankings not shown: {pair.data / DATASET} holds other files than were evaluated "
        "(qrels/test.tsv differ from the recorded sha256)"
    ]


def test_a_run_file_that_does_not_reproduce_the_numbers_is_not_shown(pair):
    """A stale run file would show rankings that contradict the recorded NDCG@10."""
    run_file = pair.tuned.parent / "runs" / f"{DATASET}.test.trec"
    write_run_file(run_file, _scores({**TUNED, "q1": ["d2", "d1"]}), tag="tuned")
    (found,) = _analysis(pair).datasets
    assert found.stories == {}
    said = f"rankings not shown: {run_file} gives ndcg@10 0.6309297535714575 for query 'q1'"
    assert f"{said}, not the recorded 1.0 (stale or edited)" in " ".join(found.sources)


def test_run_files_of_labels_with_spaces_are_read(pair, tmp_path):
    """`irtune eval` tags a run with its label as one token ("minilm (base)" -> `minilm_(base)`):
    TREC tools split a line on whitespace. Run files written before, tagged with the label
    spaces and all, are read too (the tag is the rest of the line)."""
    base = _run_folder(tmp_path / "spaced", "minilm (base)", BASE, pair.data)
    run_file = base.with_name("runs").joinpath(f"{DATASET}.test.trec")
    lines = run_file.read_text().splitlines()
    assert lines[0] == "q1 Q0 d2 1 4.0 minilm_(base)" and all(len(line.split()) == 6 for line in lines)
    results = read_results(base), read_results(pair.tuned)
    (found,) = analyse(compare(*results), *results, pair.data).datasets
    assert sorted(found.stories) == ["q1", "q2", "q3", "q4", "q5"], found.sources
    run_file.write_text("".join(line.replace("minilm_(base)", "minilm (base)") + "\n" for line in lines))
    assert read_run(run_file)["q1"] == {"d2": 4.0, "d3": 3.0, "d1": 2.0, "d4": 1.0}


@dataclass(frozen=True)
class Case:
    """One hostile-but-fair `irtune inspect` call: what is done to the workspace, the command's
    arguments, and the one error line expected (None: it succeeds and says `says`)."""

    name: str
    args: tuple[str, ...]
    error: str | None = None
    says: str | None = None
    edit: str | None = None  # "run-outside", "run-garbage"


CASES = [
    Case("missing results", ("{tmp}/nowhere", "{tuned}"), error="results file not found"),
    Case(
        "unknown query", ("{base}", "{tuned}", "--query", "q9"), error="query 'q9' is not among the 6 queries"
    ),
    Case(
        "run file outside its folder",
        ("{base}", "{tuned}"),
        says="run file ../../etc/passwd is outside its folder",
        edit="run-outside",
    ),
    Case(
        "run file not a TREC run",
        ("{base}", "{tuned}"),
        says="expected 6 fields (qid Q0 doc rank score tag), got 3",
        edit="run-garbage",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_inspect_on_hostile_input(pair, tmp_path, case):
    if case.edit == "run-outside":
        doc = json.loads(pair.tuned.read_text())
        doc["datasets"][0]["run_file"] = "../../etc/passwd"
        pair.tuned.write_text(json.dumps(doc))
    if case.edit == "run-garbage":
        (pair.tuned.parent / "runs" / f"{DATASET}.test.trec").write_text("not a run\n")
    args = [a.format(tmp=tmp_path, base=pair.base.parent, tuned=pair.tuned.parent) for a in case.args]
    done = irtune("inspect", *args, "--data-dir", str(pair.data))
    if case.error is not None:
        assert_one_line_error(done, case.error)
    else:
        assert done.returncode == 0, done.stderr
        assert case.says in " ".join(done.stdout.split())
        assert "q4" in done.stdout  # the numbers are still shown


def test_inspect_does_not_import_the_ml_stack(pair):
    args = ("inspect", str(pair.base), str(pair.tuned), "--data-dir", str(pair.data))
    assert _run_cli(*args) == {"code": 0, "heavy": []}


def test_inspect_prints_the_movers_slices_and_one_querys_story(pair):
    done = irtune("inspect", str(pair.base.parent), str(pair.tuned.parent), "--data-dir", str(pair.data))
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "tinyds:test: the queries that gained most" in text
    assert "+1.0000" in text and "not in the top 1000 → 1" in text
    assert "Holm-corrected over the 6 slice tests of this comparison" in text
    one = irtune(
        "inspect",
        str(pair.base.parent),
        str(pair.tuned.parent),
        "--query",
        "q2",
        "--data-dir",
        str(pair.data),
    )
    assert one.returncode == 0, one.stderr
    text = " ".join(one.stdout.split())
    assert HOSTILE_QUERY in text and HOSTILE_TITLE in text  # printed as text, not as rich markup
    assert "-0.3691" in text and "the queries that gained most" not in text


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)"
)
def test_the_query_table_sorts_and_filters_in_a_browser(pair, tmp_path):
    """Headless Chromium, offline: a click on Δ sorts ascending, a second descending; typing
    filters the rows by query text."""
    page = _report(pair)
    probe = (
        "<script>const ids = () => Array.from(document.querySelectorAll('#queries-0 tbody tr'))"
        ".filter(r => !r.hidden).map(r => r.cells[1].textContent);"
        "const delta = document.querySelectorAll('#queries-0 th')[7];"
        "const out = {}; delta.click(); out.ascending = ids(); delta.click(); out.descending = ids();"
        "const input = document.querySelector('input.query-filter');"
        "input.value = 'EXERCISE'; input.dispatchEvent(new Event('input')); out.filtered = ids();"
        "out.count = document.getElementById('queries-0-count').textContent;"
        "document.body.setAttribute('data-probe', JSON.stringify(out));</script>"
    )
    path = tmp_path / "probe.html"
    path.write_text(page.replace("</body>", probe + "</body>"), encoding="utf-8")
    dom = subprocess.run(
        chromium_command(tmp_path / "profile", "--dump-dom", path.as_uri()),
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    found = json.loads(re.search(r'data-probe="([^"]+)"', dom).group(1).replace("&quot;", '"'))
    # Δ: q2 -0.369, q3 -0.080, q6 0, q5 +0.140, q1 +0.5, q4 +1
    assert found["ascending"] == ["q2", "q3", "q6", "q5", "q1", "q4"]
    assert found["descending"] == ["q4", "q1", "q5", "q6", "q3", "q2"]
    assert found["filtered"] == ["q4", "q6"]  # still in descending Δ order
    assert found["count"] == "2"


def test_the_api_inspects_results_given_by_path(pair):
    import irtune

    moved = irtune.inspect(str(pair.base.parent), pair.tuned, query="q1", data_dir=str(pair.data))
    (found,) = moved.datasets
    assert list(found.stories) == ["q1"] and [r.qid for r in found.gained] == ["q4", "q1", "q5"]
