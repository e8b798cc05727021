"""`irtune run`: the whole study on a slice with a tiny model; resume after interruption."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from typer.testing import CliRunner

import irtune.training.dev as dev_module
from irtune.cli.app import app
from irtune.errors import InvalidValueError, IrtuneError
from irtune.study.config import load_study
from irtune.study.runner import run_study

from conftest import write_beir

runner = CliRunner()


def study_file(tmp_path: Path, model: Path, dataset: Path, extra: str = "") -> Path:
    path = tmp_path / "study.toml"
    path.write_text(f"""
name = "tiny"
out_dir = "{tmp_path / "run"}"
data_dir = "{dataset.parent}"

[model]
base = "{model}"

[evaluation]
datasets = ["{dataset.name}"]
retrievers = ["dense", "bm25"]

[training]
epochs = 2
batch_size = 8
learning_rate = 5e-4
warmup_steps = 1
hard_negatives = true
negatives_range_max = 20
interpolation_alphas = [0.0, 0.5, 1.0]

[[variants]]
name = "single"
train = ["{dataset.name}"]
{extra}
""")
    return path


def test_study_runs_end_to_end_and_resumes_after_interruption(
    tiny_model, scifact_slice, tmp_path, monkeypatch, caplog
):
    path = study_file(tmp_path, tiny_model, scifact_slice)
    study = load_study(path)
    data_dir, cache = scifact_slice.parent, tmp_path / "cache"

    real_score = dev_module.score_dev
    calls = {"n": 0}

    def interrupt_in_epoch_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # base dev, epoch 1, then: interrupted during epoch 2
            raise KeyboardInterrupt
        return real_score(*args, **kwargs)

    monkeypatch.setattr(dev_module, "score_dev", interrupt_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        run_study(study, data_dir=data_dir, cache_dir=cache)
    stages = tmp_path / "run" / "stages"
    baseline = next(stages.glob("baseline-*"))
    assert (baseline / "done.json").is_file()
    stamp = (baseline / "results.json").stat().st_mtime_ns
    state = next(stages.glob("train-single-*")) / "model" / "_irtune_work" / "state.json"
    assert json.loads(state.read_text())["completed_epochs"] == 1

    monkeypatch.setattr(dev_module, "score_dev", real_score)
    report, comparisons = run_study(study, data_dir=data_dir, cache_dir=cache)
    tuned_label = f"{tiny_model.name} tuned on {scifact_slice.name} (single)"
    assert [c.candidate_label for c in comparisons] == ["bm25", tuned_label]
    assert {c.baseline_label for c in comparisons} == {f"{tiny_model.name} (base)"}
    assert (baseline / "results.json").stat().st_mtime_ns == stamp  # baseline not redone
    model_dir = next(stages.glob("train-single-*")) / "model"
    meta = json.loads((model_dir / "irtune_training.json").read_text())
    assert [p["epoch"] for p in meta["curve"]] == [1, 2]
    html = report.read_text()
    assert f"{tuned_label} vs {tiny_model.name} (base)" in html and "bm25 vs" in html
    tuned = json.loads(next(stages.glob("eval-single-*")).joinpath("results.json").read_text())
    base = json.loads((baseline / "results.json").read_text())
    assert tuned["datasets"][0]["queries"]["ids_sha256"] == base["datasets"][0]["queries"]["ids_sha256"]
    assert tuned["model"]["training"]["train_sets"][0]["split"] == "train"
    card = ModelCard.load(model_dir / "README.md")  # the model's card holds its held-out test metrics
    ndcg = next(r for r in card.data.eval_results if r.metric_type == "ndcg_at_10")
    assert ndcg.metric_value == pytest.approx(tuned["datasets"][0]["metrics"]["ndcg@10"], abs=1e-5)

    # a third run does nothing but re-report; --force redoes one stage
    with caplog.at_level(logging.INFO, logger="irtune"):
        result = runner.invoke(
            app, ["run", str(path), "--data-dir", str(data_dir), "--cache-dir", str(cache), "--force", "bm25"]
        )
    assert result.exit_code == 0, result.output
    assert "baseline: done, skipped" in caplog.text and "stage 3/6: bm25" in caplog.text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("bogus = 1", r"variants.0.bogus: unknown key"),
        ("[variants.training]\nepochs = 0", r"variants.single.training: epochs: Input should be greater"),
        ('[tracking]\nreport_to = ["neptune"]', r"tracking.report_to: .*unknown tracker 'neptune'"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tiny_model, scifact_slice, tmp_path, extra, message):
    with pytest.raises(IrtuneError, match=message):
        load_study(study_file(tmp_path, tiny_model, scifact_slice, extra))


def test_seed_protocol_marks_everything_contaminated(tiny_model, scifact_slice, tmp_path):
    path = study_file(tmp_path, tiny_model, scifact_slice)
    text = path.read_text().replace("[training]\n", '[training]\nprotocol = "seed"\nallow_leakage = true\n')
    text = text.replace("epochs = 2", "epochs = 1").replace('"dense", "bm25"', '"dense"')
    path.write_text(text)
    report, _ = run_study(load_study(path), data_dir=scifact_slice.parent, cache_dir=tmp_path / "cache")
    assert 'id="contamination-banner"' in report.read_text()
    tuned = json.loads(
        next((tmp_path / "run" / "stages").glob("eval-single-*")).joinpath("results.json").read_text()
    )
    assert tuned["contaminated"] and tuned["datasets"][0]["contaminated"]
    assert tuned["model"]["training"]["protocol"] == "seed"


def test_seed_protocol_on_a_test_only_dataset_compares_the_same_queries(tiny_model, scifact_slice, tmp_path):
    """The tuned model used to carry its honest plan (the eval half of test) while the
    baseline was scored on all of test, and the report refused to compare them."""
    root = tmp_path / "data" / "scidocs"
    (root / "qrels").mkdir(parents=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        (root / name).symlink_to(scifact_slice / name)
    (root / "qrels" / "test.tsv").symlink_to(scifact_slice / "qrels" / "test.tsv")
    path = study_file(tmp_path, tiny_model, root)
    text = path.read_text().replace("[training]\n", '[training]\nprotocol = "seed"\nallow_leakage = true\n')
    path.write_text(text.replace("epochs = 2", "epochs = 1").replace('"dense", "bm25"', '"dense"'))
    report, comparisons = run_study(load_study(path), data_dir=root.parent, cache_dir=tmp_path / "cache")
    assert comparisons[0].datasets[0].queries == 30 and comparisons[0].contaminated
    assert 'id="contamination-banner"' in report.read_text()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("bm25 = true", r"evaluation.bm25 was replaced by evaluation.retrievers .*choices: dense, bm25"),
        ('retrievers = ["dense", "sparse"]', r"evaluation.retrievers: .*unknown retriever 'sparse'"),
        ('retrievers = ["dense", "dense"]', r"evaluation.retrievers: .*must not repeat"),
    ],
)
def test_retrievers_are_checked_against_the_registry(tiny_model, scifact_slice, tmp_path, line, message):
    path = study_file(tmp_path, tiny_model, scifact_slice)
    path.write_text(path.read_text().replace('retrievers = ["dense", "bm25"]', line))
    with pytest.raises(IrtuneError, match=message):
        load_study(path)


@pytest.mark.parametrize("example", sorted(Path(__file__).parents[1].joinpath("examples").glob("*.toml")))
def test_every_example_study_is_a_valid_config(example):
    """The shipped studies parse with every variant's training options (datasets are resolved
    when run: the seed study needs SciDocs and Quora fetched)."""
    from irtune.core.configs import read_toml, validated
    from irtune.study.config import Study
    from irtune.training.config import TrainConfig

    study = validated(Study, read_toml(example), str(example))
    for variant in study.variants:
        validated(TrainConfig, {**study.training.model_dump(), **variant.training}, variant.name)
    assert study.variants and study.evaluation.datasets


def finished_one_epoch_study(tmp_path: Path, model: Path, dataset: Path):
    """The study with one epoch and the dense retriever only, run to the end once:
    (study, data_dir, cache_dir)."""
    path = study_file(tmp_path, model, dataset)
    text = path.read_text().replace("epochs = 2", "epochs = 1")
    path.write_text(text.replace('"dense", "bm25"', '"dense"'))
    study = load_study(path)
    data_dir, cache = dataset.parent, tmp_path / "cache"
    run_study(study, data_dir=data_dir, cache_dir=cache)
    return study, data_dir, cache


def test_a_forced_stage_redoes_every_stage_built_on_it(tiny_model, scifact_slice, tmp_path):
    """`--force train:X` retrains X; the evaluation of X and the report were keyed on the train
    stage's folder name only, so they were skipped and kept describing the old weights."""
    study, data_dir, cache = finished_one_epoch_study(tmp_path, tiny_model, scifact_slice)
    stages = tmp_path / "run" / "stages"

    def evaluated() -> dict[str, int]:
        return {p.parent.name: p.stat().st_mtime_ns for p in stages.glob("*/results.json")}

    def report_done() -> list[int]:
        return sorted(p.stat().st_mtime_ns for p in stages.glob("report-*/done.json"))

    before, reported = evaluated(), report_done()
    run_study(study, data_dir=data_dir, cache_dir=cache, force=["train:single"])
    after = evaluated()
    baseline = next(name for name in before if name.startswith("baseline-"))
    assert after[baseline] == before[baseline]  # nothing upstream is redone
    latest = max((name for name in after if name.startswith("eval-single-")), key=after.__getitem__)
    assert after[latest] > max(t for n, t in before.items() if n.startswith("eval-single-"))
    assert report_done()[-1] > reported[-1]
    trained = next(stages.glob("train-single-*")) / "model" / "irtune_training.json"
    tuned = json.loads((stages / latest / "results.json").read_text())
    assert tuned["model"]["weights_sha256"] == json.loads(trained.read_text())["weights_sha256"]


def test_an_evaluation_of_other_weights_than_the_trained_model_is_redone(
    tiny_model, scifact_slice, tmp_path, caplog
):
    """A stage finished before stages recorded run ids keys on its folder name alone: after a
    retrain by such a version, the evaluation stage looked done although it measured the old
    weights. The evaluation is checked against the trained model's weights hash instead."""
    study, data_dir, cache = finished_one_epoch_study(tmp_path, tiny_model, scifact_slice)
    stages = tmp_path / "run" / "stages"
    results = next(stages.glob("eval-single-*")) / "results.json"
    doc = json.loads(results.read_text())
    trained_sha = doc["model"]["weights_sha256"]
    doc["model"]["weights_sha256"] = "0" * 64  # the old weights
    results.write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING, logger="irtune"):
        run_study(study, data_dir=data_dir, cache_dir=cache)
    assert "eval:single: measured other weights than train:single holds; redone" in caplog.text
    assert json.loads(results.read_text())["model"]["weights_sha256"] == trained_sha


def test_a_variant_trained_over_seeds_keeps_every_run_and_ships_the_one_chosen_on_dev(
    tiny_model, scifact_slice, tmp_path
):
    path = study_file(tmp_path, tiny_model, scifact_slice)
    text = path.read_text().replace("epochs = 2", "epochs = 1").replace('"dense", "bm25"', '"dense"')
    path.write_text(text.replace("[training]\n", "[training]\nseeds = [2, 1]\n"))
    report, comparisons = run_study(
        load_study(path), data_dir=scifact_slice.parent, cache_dir=tmp_path / "cache"
    )
    stages = tmp_path / "run" / "stages"
    trained = {p.name.rsplit("-", 1)[0]: p / "model" for p in stages.glob("train-*")}
    assert sorted(trained) == ["train-single@seed-1", "train-single@seed-2"]
    assert sorted(p.name.rsplit("-", 1)[0] for p in stages.glob("eval-*")) == [
        "eval-single@seed-1",
        "eval-single@seed-2",
    ]
    records = {
        seed: json.loads((trained[f"train-single@seed-{seed}"] / "irtune_training.json").read_text())
        for seed in (1, 2)
    }
    assert {seed: r["config"]["seed"] for seed, r in records.items()} == {1: 1, 2: 2}
    dev = {seed: r["selected"]["dev"]["ndcg@10"] for seed, r in records.items()}
    shipped = max((1, 2), key=lambda s: (round(dev[s], 12), -s))
    chosen = json.loads((tmp_path / "run" / "single.seeds.json").read_text())
    assert chosen["shipped"]["seed"] == shipped
    assert chosen["shipped"]["model"] == str(trained[f"train-single@seed-{shipped}"])
    [comparison] = comparisons  # one test for the variant, whatever the number of seeds
    assert comparison.seeds is not None and comparison.seeds.seeds == [1, 2]
    assert comparison.seeds.shipped == shipped
    assert (
        comparison.candidate_label
        == f"{tiny_model.name} tuned on {scifact_slice.name} (single, seed {shipped})"
    )
    html = report.read_text()
    assert 'id="seeds"' in html and "<th>seed 1</th><th>seed 2</th>" in html
    assert f"The recipe over seeds 1, 2 vs {tiny_model.name} (base)" in html


def test_a_dataset_with_no_train_dev_or_test_split_is_one_line_not_a_traceback(tmp_path):
    """The split a dataset named without one trains on (the first of train, dev and test it
    has) is one helper, shared by the study's checks and the seed protocol's plan."""
    from irtune.study.config import _refuse_repeated_training_sets
    from irtune.study.stages import StudyInputs

    corpus, queries, judged = {"d1": {"text": "aspirin"}}, {"q1": "aspirin"}, {"q1": {"d1": 1}}
    write_beir(tmp_path / "imported", corpus, queries, {"validation": judged})
    write_beir(tmp_path / "dt", corpus, queries, {"dev": judged, "test": judged})
    with pytest.raises(
        IrtuneError, match=r"no train, dev or test split to train on \(available: validation\)"
    ):
        _refuse_repeated_training_sets(["imported"], StudyInputs(tmp_path).dataset)
    with pytest.raises(IrtuneError, match=r"'dt' and 'dt:dev' both train on dt:dev"):
        _refuse_repeated_training_sets(["dt", "dt:dev"], StudyInputs(tmp_path).dataset)


def test_an_unknown_forced_stage_is_named_by_its_parameter(tiny_model, scifact_slice, tmp_path):
    """The library names its parameter (`force`); `irtune run` names the flag (test_hostile_input)."""
    study = load_study(study_file(tmp_path, tiny_model, scifact_slice))
    with pytest.raises(InvalidValueError) as raised:
        run_study(study, data_dir=scifact_slice.parent, force=["nosuchstage"])
    assert raised.value.parameter == "force"
    assert str(raised.value) == (
        "force: unknown stage 'nosuchstage' "
        "(stages: baseline, bm25, eval:single, report, splits, splits:scifact, train:single)"
    )
