"""`irtune run` stages key on the content of everything they read: change one input and exactly
the stages that read it (or are built on a stage that did) are redone; the others are kept."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

import irtune.study.stages as stages
from irtune.evaluation.job import EvaluationJob, run_evaluation
from irtune.retrieval.settings import RetrievalSettings
from irtune.study.config import load_study
from irtune.study.runner import run_study
from irtune.study.stages import StudyInputs

from conftest import write_beir

SCIFACT_STAGES = {"splits:scifact", "baseline", "bm25", "train:single", "eval:single", "report"}
NFCORPUS_STAGES = {"splits:nfcorpus", "baseline", "bm25", "report"}


def write_study(root: Path, model: Path, training: str = "") -> Path:
    """Dense + BM25 on scifact and nfcorpus; one variant trained (and evaluated) on scifact only."""
    path = root / "study.toml"
    path.write_text(f"""
name = "keys"
out_dir = "{root / "run"}"
data_dir = "{root / "data"}"

[model]
base = "{model}"

[evaluation]
datasets = ["scifact", "nfcorpus"]
retrievers = ["dense", "bm25"]

[training]
epochs = 1
batch_size = 8
learning_rate = 5e-4
warmup_steps = 1
interpolation_alphas = [1.0]
{training}

[[variants]]
name = "single"
train = ["scifact"]
""")
    return path


def run(root: Path, model: Path, training: str = "", force: tuple[str, ...] = ()):
    study = load_study(write_study(root, model, training))
    return run_study(study, cache_dir=root / "cache", force=force)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_model, scifact_slice, nfcorpus_slice) -> Path:
    """A folder with `data/` (copies of both slices), `cache/` and `run/`, a finished study."""
    root = tmp_path_factory.mktemp("finished")
    for dataset in (scifact_slice, nfcorpus_slice):
        shutil.copytree(dataset, root / "data" / dataset.name)
    run(root, tiny_model)
    return root


def finished_copy(finished: Path, tmp_path: Path) -> Path:
    root = tmp_path / "study"
    shutil.copytree(finished, root)
    return root


def finished_stages(root: Path) -> dict[str, str]:
    """done.json id -> stage name, for every finished stage of the study."""
    found = {}
    for done in (root / "run" / "stages").glob("*/done.json"):
        record = json.loads(done.read_text())
        found[record["id"]] = record["stage"]
    return found


def rewrite_lines(path: Path, change: Callable[[list[bytes]], list[bytes]]) -> None:
    path.write_bytes(b"".join(change(path.read_bytes().splitlines(keepends=True))))


def every_other_judgement(lines: list[bytes]) -> list[bytes]:
    """The header and every other judgement row (the issue's repro)."""
    return lines[:1] + lines[1::2]


def first_record_edited(lines: list[bytes]) -> list[bytes]:
    record = json.loads(lines[0])
    record["text"] += " (edited)"
    return [(json.dumps(record) + "\n").encode(), *lines[1:]]


EDITS: dict[str, tuple[str, Callable[[list[bytes]], list[bytes]]]] = {
    "scifact corpus": ("scifact/corpus.jsonl", first_record_edited),
    "scifact queries": ("scifact/queries.jsonl", first_record_edited),
    "scifact test qrels": ("scifact/qrels/test.tsv", every_other_judgement),
    "scifact train qrels": ("scifact/qrels/train.tsv", every_other_judgement),
    "nfcorpus corpus": ("nfcorpus/corpus.jsonl", first_record_edited),
    "nfcorpus dev qrels": ("nfcorpus/qrels/dev.tsv", every_other_judgement),
    "nfcorpus test qrels": ("nfcorpus/qrels/test.tsv", every_other_judgement),
}


@pytest.mark.parametrize(
    ("edit", "redone"),
    [
        ("nothing", set()),
        ("scifact corpus", SCIFACT_STAGES),
        ("scifact queries", SCIFACT_STAGES),
        ("scifact test qrels", SCIFACT_STAGES),
        ("scifact train qrels", SCIFACT_STAGES),
        # the variant neither trains nor is evaluated on nfcorpus: its stages are kept
        ("nfcorpus corpus", NFCORPUS_STAGES),
        ("nfcorpus dev qrels", NFCORPUS_STAGES),
        ("nfcorpus test qrels", NFCORPUS_STAGES),
    ],
)
def test_a_changed_input_redoes_exactly_the_stages_that_read_it(finished, tmp_path, tiny_model, edit, redone):
    root = finished_copy(finished, tmp_path)
    if edit in EDITS:
        file, change = EDITS[edit]
        rewrite_lines(root / "data" / file, change)
    before = finished_stages(root)
    run(root, tiny_model)
    after = finished_stages(root)
    assert {stage for run_id, stage in after.items() if run_id not in before} == redone


def test_changed_split_settings_redo_both_splits_and_everything_built_on_them(finished, tmp_path, tiny_model):
    root = finished_copy(finished, tmp_path)
    before = finished_stages(root)
    run(root, tiny_model, training="split_seed = 14")
    after = finished_stages(root)
    redone = {stage for run_id, stage in after.items() if run_id not in before}
    assert redone == SCIFACT_STAGES | NFCORPUS_STAGES


@pytest.mark.parametrize(
    ("force", "redone"),
    [("splits", SCIFACT_STAGES | NFCORPUS_STAGES), ("splits:nfcorpus", NFCORPUS_STAGES)],
)
def test_a_forced_split_redoes_the_stages_built_on_it(finished, tmp_path, tiny_model, force, redone):
    """One splits stage per dataset: `--force splits` redoes them all, and every stage built on them."""
    root = finished_copy(finished, tmp_path)
    before = finished_stages(root)
    run(root, tiny_model, force=(force,))
    after = finished_stages(root)
    assert {stage for run_id, stage in after.items() if run_id not in before} == redone


def test_each_data_file_is_hashed_once_per_run(finished, tmp_path, tiny_model, monkeypatch):
    hashed: Counter[Path] = Counter()
    real = stages.sha256_file

    def counted(path: Path) -> str:
        hashed[path] += 1
        return real(path)

    monkeypatch.setattr(stages, "sha256_file", counted)
    run(finished_copy(finished, tmp_path), tiny_model)
    assert hashed and set(hashed.values()) == {1}


def test_a_generated_split_is_keyed_by_its_files(tmp_path):
    """Generated queries are read with every qrels file (real and generated queries are judged
    apart); a stage training on them also reads their qrels and the manifest."""
    root = write_beir(tmp_path / "generated", {"d1": {"text": "a"}}, {"q1": "b"}, {"test": {"q1": {"d1": 1}}})
    (root / "synthetic").mkdir()
    (root / "synthetic" / "queries.jsonl").write_text(json.dumps({"_id": "g1", "text": "c"}) + "\n")
    (root / "synthetic" / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\ng1\td1\t1\n")
    (root / "synthetic" / "manifest.json").write_text("{}")
    inputs = StudyInputs(tmp_path)
    real = {"corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "synthetic/queries.jsonl"}
    assert set(inputs.content("generated")) == real
    generated = real | {"synthetic/qrels.tsv", "synthetic/manifest.json"}
    assert set(inputs.content("generated", ["synthetic"])) == generated


def test_a_rerun_after_halving_the_test_qrels_reports_what_a_fresh_evaluation_gives(
    finished, tmp_path, tiny_model
):
    """The issue's repro: with every other line of qrels/test.tsv dropped, every stage was
    skipped and the report kept the BM25 NDCG@10 of the old judgements."""

    def reported_bm25(comparisons) -> float:
        bm25 = next(c for c in comparisons if c.candidate_label == "bm25")
        scifact = next(d for d in bm25.datasets if d.dataset == "scifact")
        return next(m.candidate for m in scifact.metrics if m.metric == "ndcg@10")

    root = finished_copy(finished, tmp_path)
    _, comparisons = run(root, tiny_model)  # nothing redone: the finished study's numbers
    old = reported_bm25(comparisons)
    rewrite_lines(root / "data" / "scifact" / "qrels" / "test.tsv", every_other_judgement)
    _, comparisons = run(root, tiny_model)
    fresh = run_evaluation(
        EvaluationJob(None, [str(root / "data" / "scifact")], RetrievalSettings(retriever="bm25"))
    )
    assert fresh.datasets[0].metrics["ndcg@10"] != pytest.approx(old)
    assert reported_bm25(comparisons) == pytest.approx(fresh.datasets[0].metrics["ndcg@10"], abs=1e-9)


def test_a_base_model_folder_changed_in_place_redoes_every_stage_that_used_it(
    tmp_path, tiny_model, scifact_slice, nfcorpus_slice
):
    """The base model is its files, not its path: new weights under the same folder name redo
    every stage that encoded with it, and nothing that did not (splits, BM25)."""
    from safetensors.torch import load_file, save_file

    root = tmp_path / "study"
    for dataset in (scifact_slice, nfcorpus_slice):
        shutil.copytree(dataset, root / "data" / dataset.name)
    model = root / "model"
    shutil.copytree(tiny_model, model)
    run(root, model)
    before = finished_stages(root)
    (weights,) = model.rglob("model.safetensors")
    tensors = load_file(str(weights))
    save_file({name: tensor * 1.01 for name, tensor in tensors.items()}, str(weights))
    run(root, model)
    after = finished_stages(root)
    redone = {stage for run_id, stage in after.items() if run_id not in before}
    assert redone == {"baseline", "train:single", "eval:single", "report"}


HUB_KEY = """
import json, sys
from irtune.study.stages import StudyInputs
print(json.dumps([StudyInputs(None).model(spec) for spec in sys.argv[1:]]))
"""


def _hub_keys(env: dict[str, str], *specs: str) -> list[dict]:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", HUB_KEY, *specs], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_hub_base_model_is_keyed_on_its_snapshot_commit(tmp_path, tiny_model):
    """Old code: `{"spec": "acme/base"}` before and after new weights were pushed under the same
    name, so `irtune run` kept every stage encoded with the old ones. The key is the commit the
    model loads at, resolved offline from the cache too; an id that cannot be resolved (offline,
    never downloaded) stays keyed on its name."""
    from hub_stub import hub_env, serve_repos

    hf_home = tmp_path / "hf-home"
    pushed_again = shutil.copytree(tiny_model, tmp_path / "pushed-again")
    (pushed_again / "README.md").write_text("new weights\n")
    with serve_repos({"acme/base": tiny_model}) as hub:
        (first,) = _hub_keys(hub_env(hub.url, hf_home, offline=False), "acme/base")
    first_sha = hub.repos["acme/base"].sha
    with serve_repos({"acme/base": pushed_again}) as hub:
        (second,) = _hub_keys(hub_env(hub.url, hf_home, offline=False), "acme/base")
    assert first == {"spec": "acme/base", "revision": first_sha}
    assert second == {"spec": "acme/base", "revision": hub.repos["acme/base"].sha} != first
    offline = _hub_keys(hub_env(hub.url, hf_home, offline=True), "acme/base", "acme/never-downloaded")
    assert offline == [second, {"spec": "acme/never-downloaded"}]
