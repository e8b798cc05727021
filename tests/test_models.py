"""Model resolution and prompts: bundled model, family presets, config prompts, overrides, and
the training record and split plans of a model loaded by hub id."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hub_stub import hub_env, serve_repos

from irtune.data.beir import BeirDataset
from irtune.data.leakage import TrainingQueries
from irtune.data.splits import SplitPart, SplitPlan, save_plan
from irtune.errors import IrtuneError
from irtune.models.lineage import SPLITS_DIR, TRAINING_METADATA
from irtune.models.loading import (
    BGE_QUERY,
    bundled_model_path,
    hub_repo_id,
    load_model,
    resolve_model_location,
    resolve_prompts,
)

from results_fixtures import training_summary


def test_bundled_aliases_resolve_to_the_installed_package():
    path = str(bundled_model_path())
    for alias in ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        assert resolve_model_location(alias) == path
    assert (bundled_model_path() / "model.safetensors").is_file()


@pytest.mark.parametrize(
    ("name", "query", "document"),
    [
        ("intfloat/e5-base-v2", "query: ", "passage: "),
        ("intfloat/multilingual-e5-large", "query: ", "passage: "),
        ("BAAI/bge-base-en-v1.5", BGE_QUERY, ""),
        ("sentence-transformers/all-MiniLM-L6-v2", "", ""),
        ("sentence-transformers/all-mpnet-base-v2", "", ""),
    ],
)
def test_family_presets(name, query, document):
    prompts = resolve_prompts(name, {"query": "", "document": ""})
    assert (prompts.query, prompts.document) == (query, document)


def test_model_config_prompts_win_over_presets_and_overrides_win_over_both():
    own = resolve_prompts("intfloat/e5-base-v2", {"query": "Q: ", "passage": "P: "})
    assert (own.query, own.document, own.source) == ("Q: ", "P: ", "model config")
    forced = resolve_prompts("intfloat/e5-base-v2", {}, query_override="", document_override="D: ")
    assert (forced.query, forced.document, forced.source) == ("", "D: ", "override")


def test_local_folder_and_errors(tiny_model, tmp_path):
    model = load_model(str(tiny_model), device="cpu", max_seq_length=32, query_prompt="q: ")
    assert model.max_seq_length == 32 and model.prompts.query == "q: "
    assert len(model.weights_sha256) == 64 and model.normalize
    with pytest.raises(IrtuneError, match="not a sentence-transformers or transformers model folder"):
        resolve_model_location(str(tmp_path))
    with pytest.raises(IrtuneError, match="model folder not found"):
        resolve_model_location("./nowhere")


def test_a_model_stored_in_half_precision_computes_in_fp32(tiny_model, tmp_path):
    """Transformers 5 loads weights in their stored dtype: a model saved in fp16 would encode in
    fp16 under a result that says fp32, and train fp16 master weights into NaN. irtune loads fp32
    weights; `precision` lowers the computation by autocast, and says so."""
    import torch
    from sentence_transformers import SentenceTransformer

    half = tmp_path / "half"
    SentenceTransformer(str(tiny_model), device="cpu").half().save(str(half))
    assert next(SentenceTransformer(str(half), device="cpu").parameters()).dtype == torch.float16
    loaded = load_model(str(half), device="cpu")
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    reference = SentenceTransformer(str(half), device="cpu").float().encode(["a query"])
    assert loaded.model.encode(["a query"]) == pytest.approx(reference, abs=1e-6)


HUB_CHECK = """
import json, sys
from pathlib import Path
from irtune.retrieval.settings import RetrievalSettings
from irtune.models.loading import load_model
from irtune.retrieval.settings import ModelOptions
from irtune.evaluation.job import EvaluationJob, run_evaluation

tuned, plain, dataset, cache = sys.argv[1:5]
model = load_model(tuned, device="cpu")
result = run_evaluation(EvaluationJob(
    tuned, [dataset], RetrievalSettings(cache_dir=Path(cache)), model_options=ModelOptions(device="cpu")
))
entry = result.datasets[0]
report = {
    "contaminated": model.contaminated,
    "folder": str(model.folder),
    "location": result.model.location,
    "revision": result.model.revision,
    "result_contaminated": result.contaminated,
    "selection": entry.queries.selection,
    "evaluated": entry.queries.count,
    "overlap": [o["queries"] for o in entry.contamination.overlap],
}
if plain:
    other = load_model(plain, device="cpu")
    report["plain"] = {"training": other.training, "folder": str(other.folder)}
print(json.dumps(report))
"""


def _run_hub_check(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", HUB_CHECK, *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture()
def leaky_model(tiny_model, scifact_slice, tmp_path) -> tuple[Path, int]:
    """A fine-tuned model folder as irtune writes it after training with --allow-leakage on all
    of scifact:test, with a split plan that holds out part of test: (folder, held-out count)."""
    folder = tmp_path / "leaky"
    shutil.copytree(tiny_model, folder)
    dataset = BeirDataset(scifact_slice)
    test_ids = sorted(dataset.qrels("test"))
    trained = TrainingQueries.from_queries("scifact", "test", {q: dataset.queries[q] for q in test_ids})
    record = {
        "format": "irtune-training-v1",
        "base_model": {"name": str(tiny_model), "weights_sha256": "ab" * 32},
        "weights_sha256": "cd" * 32,
        "train_sets": [],
        "protocol": "honest",
        "config": training_summary(())["config"],  # as irtune records them
        "selected": training_summary(())["selected"],
        "contaminated": True,
        "leakage": [{"dataset": "scifact", "split": "test", "queries": len(test_ids)}],
        "train_queries": [trained.to_json()],
    }
    (folder / TRAINING_METADATA).write_text(json.dumps(record), encoding="utf-8")
    held_out = frozenset(test_ids[15:])
    plan = SplitPlan(
        dataset="scifact",
        method="test split cut into tune and eval halves",
        seed=13,
        train=SplitPart("test", frozenset(test_ids[:10])),
        dev=SplitPart("test", frozenset(test_ids[10:15])),
        eval=SplitPart("test", held_out),
    )
    save_plan(plan, folder / SPLITS_DIR / "scifact.split.json")
    return folder, len(held_out)


def test_a_model_loaded_by_hub_id_keeps_its_training_record_and_split_plans(
    leaky_model, tiny_model, scifact_slice, tmp_path
):
    """A contaminated model pushed to a hub and evaluated by id must still say so, and still be
    scored on the queries its plan held out: both files are fetched into the cache snapshot of the
    same commit as the weights (the real huggingface_hub code, against a local stub hub), and are
    found there again offline."""
    folder, held_out = leaky_model
    hf_home, cache = tmp_path / "hf-home", tmp_path / "emb-cache"
    args = ("acme/tuned", "acme/plain", str(scifact_slice), str(cache))
    with serve_repos({"acme/tuned": folder, "acme/plain": tiny_model}) as hub:
        online = _run_hub_check(hub_env(hub.url, hf_home, offline=False), *args)
    sha = hub.repos["acme/tuned"].sha
    snapshot = hf_home / "hub" / "models--acme--tuned" / "snapshots" / sha
    expected = {
        "contaminated": True,
        "folder": str(snapshot),
        "location": "acme/tuned",
        "revision": sha,
        "result_contaminated": True,
        "selection": "eval part of scifact.split.json",
        "evaluated": held_out,
        "overlap": [held_out],
    }
    assert {k: online[k] for k in expected} == expected
    assert {TRAINING_METADATA, f"{SPLITS_DIR}/scifact.split.json"} <= hub.downloaded("acme/tuned")
    assert not hub.unexpected, "the stub hub was asked for something it does not implement"
    plain_snapshot = hf_home / "hub" / "models--acme--plain" / "snapshots"
    assert online["plain"]["training"] is None  # a repo without irtune's files is a plain model
    assert Path(online["plain"]["folder"]).parent == plain_snapshot
    # offline, with the hub gone: the record and the plan come from the cache snapshot
    offline = _run_hub_check(hub_env(hub.url, hf_home, offline=True), *args[:1], "", *args[2:])
    assert {k: offline[k] for k in expected} == expected


def test_hub_repo_id_follows_sentence_transformers():
    """A bare name is a sentence-transformers repo, as sentence-transformers loads it; the
    original transformers checkpoints and full ids are kept."""
    assert hub_repo_id("all-mpnet-base-v2") == "sentence-transformers/all-mpnet-base-v2"
    assert hub_repo_id("bert-base-uncased") == "bert-base-uncased"
    assert hub_repo_id("acme/tuned") == "acme/tuned"


def test_a_damaged_training_record_is_one_line_naming_the_field(leaky_model):
    folder, _ = leaky_model
    record = json.loads((folder / TRAINING_METADATA).read_text())
    assert load_model(str(folder), device="cpu").training.contaminated  # the intact record loads
    del record["contaminated"]
    (folder / TRAINING_METADATA).write_text(json.dumps(record))
    with pytest.raises(
        IrtuneError, match=r"irtune_training.json: invalid training record \(contaminated: Field"
    ):
        load_model(str(folder), device="cpu")
