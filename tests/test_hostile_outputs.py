"""Hostile-but-fair outputs and backends (issue 25): names longer than the file system allows,
folders that cannot be locked, another run's results in `--out`, a full disk under the embedding
cache and the exports, damaged exports, a max length beyond the model's positions, SIGTERM.
The table runs the real command line like `tests/test_hostile_input.py` (its helpers), and asserts
one message line, no traceback and an untouched workspace."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from test_hostile_input import CORPUS, QUERIES, Case, _says, _snapshot, _workspace, case

from irtune.api import evaluate
from irtune.errors import IrtuneError
from irtune.models.loading import load_model

from conftest import assert_one_line_error, irtune, shared_dataset, write_beir
from results_fixtures import LEVELS, results_doc, write

LONG = "n" * 256  # one byte over NAME_MAX (255) of every common Linux file system
TOO_LONG = ("name too long (a part of it is", "bytes; the limit is 255)")
BM25 = ("eval", "--retriever", "bm25", "-d", "ds")

CASES = [
    case(*BM25, "--out", f"{{tmp}}/{LONG}/x", message=("--out", *TOO_LONG)),
    case(*BM25, "--out", f"{{tmp}}/{LONG}", message=("--out", *TOO_LONG)),
    case("eval", "--retriever", "bm25", "-d", LONG, message=(LONG[:40], *TOO_LONG)),
    case("split", "-d", "ds", "--out", f"{{tmp}}/{LONG}", message=("--out", *TOO_LONG)),
    case("report", "{tmp}/base.json", "--out", f"{{tmp}}/{LONG}.html", message=("--out", *TOO_LONG)),
    case("data", "import", LONG, "--corpus", "{tmp}/docs.csv", message=(LONG[:40], *TOO_LONG)),
    case(
        *BM25,
        "--out",
        "/proc/irtune-x",
        message="/proc/irtune-x: cannot create this results folder (No such file or directory)",
    ),
]


def _qrels_outside_the_dataset(tmp: Path) -> None:
    """Qrels where `--split ../../evil` would reach: beside the data folder's datasets."""
    (tmp / "data" / "evil.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")


PLAIN_SPLIT = "must be a plain name (letters, digits, '.', '_', '-'; no '/' or '..')"
CASES += [
    case(
        *BM25,
        "--split",
        "../../evil",
        "--out",
        "{tmp}/out",
        message=("--split '../../evil'", PLAIN_SPLIT),
        setup=_qrels_outside_the_dataset,
    ),
    case(*BM25, "--split", "/etc/passwd", message=("--split '/etc/passwd'", PLAIN_SPLIT)),
    case(*BM25, "--split", "..", message=("--split '..'", PLAIN_SPLIT)),
    case(
        "train",
        "-m",
        "minilm",
        "--train",
        "ds:../../evil",
        "--out",
        "{tmp}/t",
        message=("'../../evil'", PLAIN_SPLIT),
        setup=_qrels_outside_the_dataset,
    ),
]


def test_a_split_name_that_leaves_the_dataset_is_refused_by_the_api(tmp_path):
    dataset = str(_dataset(tmp_path / "data"))
    _qrels_outside_the_dataset(tmp_path)
    with pytest.raises(IrtuneError) as refused:
        evaluate(None, dataset, retriever="bm25", split="../../evil", out_dir=tmp_path / "out")
    assert str(refused.value) == f"split '../../evil': {PLAIN_SPLIT}"
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.test.trec").exists()


def _run(hostile: Case, tmp_path: Path) -> None:
    env = _workspace(tmp_path)
    if hostile.setup:
        hostile.setup(tmp_path)
    before = _snapshot(tmp_path)
    args = [a.format(tmp=tmp_path) for a in hostile.args]
    done = subprocess.run(
        [sys.executable, "-m", "irtune", *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == hostile.code, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and _says(lines[0], hostile.message, tmp_path), done.stderr
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("hostile", CASES, ids=[" ".join(c.args)[:50] for c in CASES])
def test_hostile_outputs_are_one_line_and_leave_nothing_behind(hostile: Case, tmp_path: Path):
    _run(hostile, tmp_path)


# --- eval --out over another evaluation's results


def _dataset(tmp_path: Path, name: str = "ds", extra: str = "") -> Path:
    corpus = {**CORPUS, "d5": {"title": "Sleep", "text": "Sleep and memory." + extra}}
    return write_beir(tmp_path / name, corpus, QUERIES, {"test": {"q1": {"d1": 1}, "q2": {"d3": 2}}})


def test_results_of_another_evaluation_are_not_replaced_without_force(tmp_path):
    out = tmp_path / "out"
    dataset = str(_dataset(tmp_path))
    first = evaluate(None, dataset, retriever="bm25", out_dir=out)
    written = (out / "results.json").read_bytes()
    again = evaluate(None, dataset, retriever="bm25", out_dir=out, label="a re-run")  # same setup
    assert again.datasets[0].metrics == first.datasets[0].metrics
    with pytest.raises(IrtuneError) as refused:
        evaluate(None, dataset, retriever="bm25", out_dir=out, ignore_identical_ids=False)
    assert str(refused.value) == (
        f"out_dir {out}: holds the results of another evaluation (other settings); "
        "choose another folder, or force replacing them"
    )
    other = str(_dataset(tmp_path, "other", extra=" More."))
    with pytest.raises(IrtuneError, match=r"another evaluation \(other datasets\)"):
        evaluate(None, other, retriever="bm25", out_dir=out)
    assert json.loads((out / "results.json").read_bytes())["label"] == "a re-run"
    assert (out / "results.json").read_bytes() != written  # the re-run replaced it
    replaced = evaluate(None, other, retriever="bm25", out_dir=out, ignore_identical_ids=False, force=True)
    assert json.loads((out / "results.json").read_text())["settings"]["ignore_identical_ids"] is False
    assert replaced.datasets[0].dataset == "other"
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["other.test.trec"]


def test_results_of_other_weights_are_not_replaced(tiny_model, tmp_path):
    out = tmp_path / "out"
    dataset = str(_dataset(tmp_path))
    evaluate(str(tiny_model), dataset, out_dir=out, cache_dir=tmp_path / "cache")
    written = (out / "results.json").read_bytes()
    model = load_model(str(tiny_model), device="cpu")
    with torch.no_grad():
        next(model.model.parameters()).add_(0.01)
    model.refresh_hash()
    with pytest.raises(IrtuneError, match=r"another evaluation \(other model\)"):
        evaluate(model, dataset, out_dir=out, cache_dir=tmp_path / "cache")
    with pytest.raises(IrtuneError, match=r"another evaluation \(other retriever\)"):
        evaluate(None, dataset, retriever="bm25", out_dir=out)
    assert (out / "results.json").read_bytes() == written


def test_eval_over_other_results_is_one_line_and_force_replaces_them(tmp_path):
    env = _workspace(tmp_path)
    out = str(tmp_path / "out")
    assert irtune(*BM25, "--out", out, env=env).returncode == 0
    before = _snapshot(tmp_path)
    refused = irtune(*BM25, "--out", out, "--keep-identical-ids", env=env)
    assert_one_line_error(refused, f"--out {out}: holds the results of another evaluation")
    assert "choose another folder, or force replacing them" in refused.stderr
    assert _snapshot(tmp_path) == before
    forced = irtune(*BM25, "--out", out, "--keep-identical-ids", "--force", env=env)
    assert forced.returncode == 0, forced.stderr


# --- a full disk (the file-size limit makes writes fail as a full disk does: EFBIG, not ENOSPC)


def _files_up_to(size: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def test_a_full_disk_under_an_embedding_shard_is_one_line_naming_the_shard(tiny_model, tmp_path):
    """numpy writes an array with C stdio and reports a short write without errno
    ("[Errno None] None: chunk_00000_2048.npy"): the shard is written by Python instead."""
    env = _workspace(tmp_path)
    cache = tmp_path / "cache"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "irtune",
            "eval",
            "-m",
            str(tiny_model),
            "-d",
            "ds",
            "--cache-dir",
            f"{cache}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        preexec_fn=_files_up_to(500),
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.strip()]
    assert re.search(rf"{cache}/embeddings/[0-9a-f]{{64}}/chunk_00000_2048.npy: File too large;", line), line
    assert not cache.exists()  # no partial shard, no manifest vouching for one, no empty folder


def test_export_on_a_full_disk_leaves_no_empty_folders(tmp_path):
    doc = results_doc("minilm", LEVELS)
    for entry in doc["datasets"]:
        entry["public_dataset"] = entry["dataset"]
    source = write(tmp_path / "run" / "results.json", doc)
    out = tmp_path / "mteb"
    done = subprocess.run(
        [sys.executable, "-m", "irtune", "export", str(source), "--out", str(out), "--model-name", "org/m"],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_files_up_to(100),
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.strip()]
    assert "SciFact.json: File too large;" in line, line
    assert not out.exists()


# --- a max length beyond the model's position embeddings


def test_a_max_length_beyond_the_models_positions_is_refused_before_encoding(tiny_model, tmp_path):
    dataset = str(_dataset(tmp_path))
    with pytest.raises(IrtuneError) as refused:
        evaluate(str(tiny_model), dataset, max_seq_length=129, cache_dir=tmp_path / "cache")
    assert str(refused.value) == (f"max_seq_length 129 is above the limit of {tiny_model} (128 positions)")
    assert not (tmp_path / "cache").exists()
    assert load_model(str(tiny_model), max_seq_length=128).max_seq_length == 128


def test_eval_with_a_max_length_beyond_the_models_positions_is_one_line(tiny_model, tmp_path):
    env = _workspace(tmp_path)
    before = _snapshot(tmp_path)
    done = irtune("eval", "-m", str(tiny_model), "-d", "ds", "--max-seq-length", "829", env=env)
    assert_one_line_error(done, f"--max-seq-length 829 is above the limit of {tiny_model} (128 positions)")
    assert _snapshot(tmp_path) == before


# --- SIGTERM (kill, a scheduler's time limit)


def test_sigterm_during_eval_says_so_and_leaves_no_empty_out_folder(tiny_model, tmp_path):
    dataset = shared_dataset("scifact")
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["eval", "-m", str(tiny_model), "-d", str(dataset), "--out", str(out), "--cache-dir", str(cache)]
    process = subprocess.Popen(
        [sys.executable, "-m", "irtune", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while not list(cache.glob("embeddings/*")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    assert out.is_dir() and process.poll() is None  # encoding the corpus, into an empty --out
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("terminated: finished work")
    assert not out.exists()


# --- files irtune did not write (reports, split files, exports) are not replaced


def _two_results(tmp_path: Path) -> list[str]:
    base = write(tmp_path / "base.json", results_doc("base", LEVELS))
    return [str(base), str(write(tmp_path / "tuned.json", results_doc("tuned", LEVELS, shift=0.02)))]


def test_report_does_not_replace_a_file_it_did_not_write(tmp_path):
    results, rep = _two_results(tmp_path), tmp_path / "rep"
    rep.mkdir()
    (rep / "notes.md").write_text("my notes\n")
    before = _snapshot(tmp_path)
    refused = irtune("report", *results, "--out", str(rep / "notes.html"))
    assert_one_line_error(refused, "")
    assert f"--out {rep / 'notes.md'}: exists and is not a report irtune wrote" in refused.stderr
    assert _snapshot(tmp_path) == before
    assert irtune("report", *results, "--out", str(rep / "report.html")).returncode == 0
    again = irtune("report", *results, "--out", str(rep / "report.html"))  # its own files: replaced
    assert again.returncode == 0, again.stderr
    forced = irtune("report", *results, "--out", str(rep / "notes.html"), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (rep / "notes.md").read_text().startswith("# irtune comparison")


def test_report_refuses_an_output_that_is_not_a_regular_file(tmp_path):
    results, pipe = _two_results(tmp_path), tmp_path / "pipe"
    os.mkfifo(pipe)
    refused = irtune("report", *results, "--out", str(pipe), "--force")
    assert_one_line_error(refused, "")
    assert f"--out {pipe}: is not a regular file" in refused.stderr
    assert stat.S_ISFIFO(pipe.lstat().st_mode) and not (tmp_path / "pipe.md").exists()


def test_split_does_not_replace_another_split_file(tmp_path):
    env = _workspace(tmp_path)
    corpus = {f"d{i}": {"title": "", "text": f"document {i}"} for i in range(30)}
    queries = {f"q{i}": f"query {i}" for i in range(30)}
    write_beir(
        tmp_path / "data" / "ds", corpus, queries, {"test": {f"q{i}": {f"d{i}": 1} for i in range(30)}}
    )
    out = tmp_path / "usersplit"
    out.mkdir()
    (out / "ds.split.json").write_text('{"mine": true}\n')
    refused = irtune("split", "-d", "ds", "--out", str(out), env=env)
    assert_one_line_error(refused, "")
    assert (
        f"--out {out / 'ds.split.json'}: exists and is not irtune's split file of this plan" in refused.stderr
    )
    assert (out / "ds.split.json").read_text() == '{"mine": true}\n'
    assert irtune("split", "-d", "ds", "--out", str(out), "--force", env=env).returncode == 0
    assert irtune("split", "-d", "ds", "--out", str(out), env=env).returncode == 0  # the same plan again
    other_seed = irtune("split", "-d", "ds", "--out", str(out), "--seed", "7", env=env)
    assert_one_line_error(other_seed, "")
    assert "exists and is not irtune's split file of this plan" in other_seed.stderr


def test_export_does_not_replace_a_foreign_task_result(tmp_path):
    doc = results_doc("minilm", LEVELS)
    for entry in doc["datasets"]:
        entry["public_dataset"] = entry["dataset"]
    source = write(tmp_path / "run" / "results.json", doc)
    out = tmp_path / "mteb"
    folder = out / "org__m" / "no_revision_available"
    folder.mkdir(parents=True)
    foreign = json.dumps({"task_name": "SciFact", "dataset_revision": "5f7d1fa", "scores": {}})
    (folder / "SciFact.json").write_text(foreign)
    refused = irtune("export", str(source), "--out", str(out), "--model-name", "org/m")
    assert_one_line_error(refused, "")
    assert f"--out {folder / 'SciFact.json'}: exists and is not irtune's export" in refused.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["SciFact.json"]
    assert (folder / "SciFact.json").read_text() == foreign
    forced = irtune("export", str(source), "--out", str(out), "--model-name", "org/m", "--force")
    assert forced.returncode == 0, forced.stderr
    again = irtune("export", str(source), "--out", str(out), "--model-name", "org/m")  # its own: replaced
    assert again.returncode == 0, again.stderr
    assert json.loads((folder / "SciFact.json").read_text())["dataset_revision"].startswith(
        "irtune-beir-files-"
    )
