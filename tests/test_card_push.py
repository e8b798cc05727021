"""The model card keeps sentence-transformers' card and adds irtune's facts as Hub metadata;
`irtune push` uploads through huggingface_hub to a local stub of the Hub API (no hub is
reachable here), with the token from the environment and never printed."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hub_stub import hub_env, serve_repos
from huggingface_hub import ModelCard

from irtune.errors import IrtuneError
from irtune.evaluation.job import EvaluationJob, run_evaluation
from irtune.models.lineage import TrainingRecord
from irtune.results.schema import read_results
from irtune.retrieval.settings import RetrievalSettings
from irtune.training.card import add_test_results, base_model_id, model_card
from irtune.training.config import TrainConfig
from irtune.training.trainer import train_model

TOKEN = "hf_stub_secret_token_0123456789"


@pytest.fixture(scope="module")
def tuned(tiny_model, scifact_slice, tmp_path_factory):
    """A model tuned on the slice, its test results and the base model's."""
    root = tmp_path_factory.mktemp("card")
    cache = root / "cache"
    # the last epoch ships (no dev selection): the tuned weights surely differ from the base's
    config = TrainConfig(epochs=1, batch_size=8, learning_rate=5e-4, warmup_steps=1, select_on_dev=False)
    model = root / "tuned"
    train_model(str(tiny_model), [str(scifact_slice)], model, config, cache_dir=cache)
    settings = RetrievalSettings(cache_dir=cache)
    run_evaluation(EvaluationJob(str(model), [str(scifact_slice)], settings, out_dir=root / "tuned-eval"))
    run_evaluation(EvaluationJob(str(tiny_model), [str(scifact_slice)], settings, out_dir=root / "base-eval"))
    return model, root / "tuned-eval" / "results.json", root / "base-eval" / "results.json"


def test_the_card_keeps_sentence_transformers_card_and_adds_hub_metadata(tuned):
    model, _, _ = tuned
    card = ModelCard.load(model / "README.md")
    assert card.data.library_name == "sentence-transformers"
    assert {"sentence-transformers", "irtune"} <= set(card.data.tags)
    # a 70-query slice named scifact is not SciFact: it goes by its own name, never as BeIR's
    assert card.data.datasets == ["scifact"]
    assert card.data.base_model is None  # a local base folder has no hub id (no path leaks in)
    text = card.text
    assert text.index("# SentenceTransformer") < text.index("## Fine-tuned with irtune")  # ST's title first
    assert "## Model Details" in text and "### Training data" in text  # both cards, in full


def test_hub_metadata_names_the_hub_base_model_license_and_beir_datasets(tuned):
    model, _, _ = tuned
    import json

    meta = json.loads((model / "irtune_training.json").read_text())
    meta["base_model"]["name"] = "minilm"
    meta["train_sets"][0].update(dataset="claims", public_dataset="scifact")  # the official files, renamed
    card = ModelCard(model_card(TrainingRecord.model_validate(meta), (model / "README.md").read_text()))
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert card.data.license == "apache-2.0"
    assert card.data.datasets == ["BeIR/scifact"]
    assert card.text.count("## Fine-tuned with irtune") == 1  # a rebuilt card replaces its irtune section
    assert "## Model Details" in card.text


def test_only_a_model_loaded_from_the_hub_is_named_as_its_base_model():
    assert (
        base_model_id("mpnet", "/cache/models/all-mpnet-base-v2") == "sentence-transformers/all-mpnet-base-v2"
    )
    assert base_model_id("intfloat/e5-base-v2", "intfloat/e5-base-v2") == "intfloat/e5-base-v2"
    assert base_model_id("runs/base", "/work/runs/base") is None  # a relative folder is not a hub id
    assert base_model_id("/abs/model", "/abs/model") is None


def test_test_results_go_into_the_model_index_and_only_those(tuned, tmp_path):
    model, tuned_results, base_results = tuned
    results = read_results(tuned_results)
    assert add_test_results(model, [results]) == 1
    card = ModelCard.load(model / "README.md")  # parsed back as the Hub parses it
    found = {r.metric_type: r for r in card.data.eval_results}
    entry = results.datasets[0]
    assert set(found) == {"ndcg_at_10", "ndcg_at_100", "map_at_100", "recall_at_100"}
    assert found["ndcg_at_10"].metric_value == pytest.approx(entry.metrics["ndcg@10"], abs=1e-5)
    assert found["ndcg_at_10"].dataset_split == "test" and found["ndcg_at_10"].task_type == "retrieval"
    assert found["ndcg_at_10"].dataset_type == "scifact"  # a slice: not published as BeIR/scifact
    assert f"{entry.queries.count} held-out queries" in found["ndcg_at_10"].metric_name
    assert found["ndcg_at_10"].metric_args["queries"] == entry.queries.count
    assert found["ndcg_at_10"].metric_args["precision"] == "fp32"
    assert f"| {entry.queries.count} ({entry.queries.selection}) | fp32 |" in card.text
    assert "## Held-out test results (irtune)" in card.text
    assert add_test_results(model, [results]) == 1  # again: replaced, not doubled
    assert len(ModelCard.load(model / "README.md").data.eval_results) == 4
    with pytest.raises(IrtuneError, match="another model"):
        add_test_results(model, [read_results(base_results)])
    dev = results.model_copy(update={"datasets": [entry.model_copy(update={"split": "dev"})]})
    with pytest.raises(IrtuneError, match="held-out test results only"):
        add_test_results(model, [dev])


def _push(args, hub_url, tmp_path, token):
    env = hub_env(hub_url, tmp_path / "hf-home", offline=False)
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "irtune", "push", *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_push_uploads_the_model_with_its_card_to_the_hub_api(tuned, tmp_path):
    model, tuned_results, _ = tuned
    with serve_repos({}, token=TOKEN) as hub:
        done = _push(
            [str(model), "--repo-id", "me/tuned", "--results", str(tuned_results), "--private"],
            hub.url,
            tmp_path,
            TOKEN,
        )
        assert done.returncode == 0, (done.stderr, hub.unexpected)
        assert not hub.unexpected
        assert hub.created == [{"repo_id": "me/tuned", "visibility": "private"}] and not hub.invalid_cards
        files = hub.repos["me/tuned"].files
    assert TOKEN not in done.stdout + done.stderr
    assert {"README.md", "irtune_training.json", "model.safetensors", "modules.json"} <= set(files)
    assert not [f for f in files if f.startswith("_irtune_work")]
    assert files["model.safetensors"] == (model / "model.safetensors").read_bytes()
    card = ModelCard(files["README.md"].decode())
    assert {r.metric_type for r in card.data.eval_results} >= {"ndcg_at_10"}


def test_push_without_or_with_a_wrong_token_is_one_line_and_never_prints_it(tuned, tmp_path):
    model, _, _ = tuned
    with serve_repos({}, token=TOKEN) as hub:
        missing = _push([str(model), "--repo-id", "me/tuned"], hub.url, tmp_path, None)
        wrong = _push([str(model), "--repo-id", "me/tuned"], hub.url, tmp_path, "hf_wrong_token_987")
        assert not hub.created
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "HF_TOKEN" in missing.stderr
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1, wrong.stderr
    assert "push to me/tuned failed (401)" in wrong.stderr
    assert "hf_wrong_token_987" not in wrong.stdout + wrong.stderr and "Traceback" not in wrong.stderr
    unreachable = _push([str(model), "--repo-id", "me/tuned"], "http://127.0.0.1:9", tmp_path, TOKEN)
    assert unreachable.returncode == 2 and unreachable.stderr.count("\n") == 1, unreachable.stderr
    assert "cannot reach the Hub" in unreachable.stderr and TOKEN not in unreachable.stderr
    not_a_model = _push([str(tmp_path), "--repo-id", "me/tuned"], "http://127.0.0.1:9", tmp_path, TOKEN)
    assert not_a_model.returncode == 2 and "not an irtune model folder" in not_a_model.stderr
