"""Gains over training seeds: the two-level bootstrap, the recipe in compare and the report."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
import pytest
from typer.testing import CliRunner

from irtune.cli.app import app
from irtune.models.lineage import TRAINING_METADATA
from irtune.reporting.files import write_report
from irtune.reporting.verdict import verdict
from irtune.results.compare import load_comparisons
from irtune.results.schema import read_results
from irtune.results.significance import bootstrap_ci, two_level_bootstrap_ci, two_level_bootstrap_means

from results_fixtures import LEVELS, results_doc, write

ONE_DATASET = {"scifact": LEVELS["scifact"]}
# seed s's model minus the baseline on query q: 2 seeds x 3 queries
SMALL = np.array([[0.1, 0.2, 0.7], [0.3, -0.4, 0.0]])


def exact_distribution(d: np.ndarray) -> dict[float, float]:
    """Every resample of seeds, then of queries shared by the drawn seeds, enumerated:
    {mean gain: probability}."""
    n_seeds, n_queries = d.shape
    seed_draws = list(itertools.product(range(n_seeds), repeat=n_seeds))
    query_draws = list(itertools.product(range(n_queries), repeat=n_queries))
    counts: Counter[float] = Counter()
    for seeds in seed_draws:
        for queries in query_draws:
            counts[round(float(np.mean([d[s, q] for s in seeds for q in queries])), 9)] += 1
    total = len(seed_draws) * len(query_draws)
    return {value: n / total for value, n in counts.items()}


def test_two_level_bootstrap_matches_the_enumerated_distribution():
    exact = exact_distribution(SMALL)
    assert len(exact) > 20 and sum(exact.values()) == pytest.approx(1.0)
    n = 200_000
    drawn = Counter(round(float(m), 9) for m in two_level_bootstrap_means(SMALL, n_resamples=n))
    assert set(drawn) <= set(exact)  # no value a resample cannot produce
    for value, probability in exact.items():  # each within 5 standard errors of its probability
        assert drawn[value] / n == pytest.approx(probability, abs=5 * (probability / n) ** 0.5 + 1e-4)


def test_two_level_bootstrap_is_the_brute_force_loop_draw_for_draw():
    """The vectorised statistic against a plain loop over the same draws (fixed generators)."""
    d = np.random.default_rng(3).normal(0.02, 0.1, size=(3, 7))
    n, seed = 2500, 11
    query_rng, seed_rng = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    reference = []
    for start in range(0, n, 1000):
        size = min(1000, n - start)
        queries = query_rng.integers(0, 7, size=(size, 7))
        seeds = seed_rng.integers(0, 3, size=(size, 3))
        for row in range(size):
            reference.append(sum(d[s, q] for s in seeds[row] for q in queries[row]) / 21)
    assert two_level_bootstrap_means(d, n_resamples=n, seed=seed) == pytest.approx(reference, abs=1e-12)


def test_identical_seeds_give_the_query_bootstrap_ci():
    one = np.random.default_rng(5).normal(0.03, 0.2, size=40)
    low, high = two_level_bootstrap_ci(np.stack([one, one, one]))
    assert (low, high) == pytest.approx(bootstrap_ci(one), abs=1e-12)


def test_seed_spread_widens_the_interval_beyond_the_query_bootstrap():
    """Two training runs that disagree: the recipe's CI is wider than one run's query CI."""
    queries = np.random.default_rng(9).normal(0.0, 0.05, size=200)
    d = np.stack([queries + 0.01, queries + 0.05])
    low, high = two_level_bootstrap_ci(d)
    q_low, q_high = bootstrap_ci(d.mean(axis=0))
    assert high - low > 1.5 * (q_high - q_low)


def seed_run(tmp_path, seed: int, shift: float, dev: float, **changes):
    """A results file of the same recipe trained with `seed`, selected at `dev` on dev."""
    doc = results_doc(f"tuned seed {seed}", ONE_DATASET, shift=shift, seed=seed, trained_on=("scifact",))
    doc["model"]["weights_sha256"] = f"{seed:02x}" * 32
    training = doc["model"]["training"]
    training["config"]["seed"] = seed
    training["selected"]["dev"]["ndcg@10"] = dev
    training["config"].update(changes)
    return write(tmp_path / f"seed{seed}" / "results.json", doc)


@pytest.fixture
def recipe(tmp_path):
    """The base model and three seeds of one recipe; seed 2 is the best on dev, seed 3 on test."""
    base = write(tmp_path / "base" / "results.json", results_doc("base", ONE_DATASET))
    runs = [
        seed_run(tmp_path, 1, 0.02, 0.70),
        seed_run(tmp_path, 2, 0.01, 0.72),
        seed_run(tmp_path, 3, 0.05, 0.71),
    ]
    return base, runs


def test_only_the_run_chosen_on_dev_is_tested_and_every_seed_is_measured(recipe):
    base, runs = recipe
    comparisons, _ = load_comparisons([base, *runs])
    assert [c.candidate_label for c in comparisons] == ["tuned seed 2"]  # best on dev, not on test
    correction = comparisons[0].correction
    assert correction is not None and correction.tests == 4  # one comparison x 4 metrics: seeds add none
    seeds = comparisons[0].seeds
    assert seeds is not None and seeds.seeds == [1, 2, 3] and seeds.shipped == 2
    assert (
        "seed 2, the best on dev ndcg@10 among the seeds given (seed 1 0.7000, seed 2 0.7200, seed 3 0.7100)"
        in seeds.reason
    )
    loaded = [read_results(p) for p in (base, *runs)]
    qids = sorted(loaded[0].datasets[0].per_query)
    deltas = np.array(
        [
            [
                r.datasets[0].per_query[q]["ndcg@10"] - loaded[0].datasets[0].per_query[q]["ndcg@10"]
                for q in qids
            ]
            for r in loaded[1:]
        ]
    )
    gain = seeds.datasets[0].metric("ndcg@10")
    assert gain.gains == pytest.approx(deltas.mean(axis=1).tolist(), abs=1e-12)
    assert seeds.family == 4 and seeds.level == pytest.approx(1 - 0.05 / 4)
    assert (gain.ci_low, gain.ci_high) == pytest.approx(
        two_level_bootstrap_ci(deltas, 1 - 0.05 / 4), abs=1e-12
    )
    shipped = comparisons[0].datasets[0].metric("ndcg@10")
    assert shipped.delta == pytest.approx(gain.gains[1], abs=1e-12)  # the shipped run's own test


def test_a_run_without_a_recorded_seed_joins_no_recipe(tmp_path, recipe):
    """A training summary without `config.seed` (hand-written, another tool's) is not "seed 0"
    of a recipe: its run is compared on its own, as every run that is not an irtune seed."""
    base, runs = recipe
    unseeded = seed_run(tmp_path / "none", 9, 0.02, 0.74)
    doc = json.loads(unseeded.read_text())
    del doc["model"]["training"]["config"]["seed"]
    unseeded.write_text(json.dumps(doc))
    comparisons, _ = load_comparisons([base, runs[0], unseeded])
    assert [c.candidate_label for c in comparisons] == ["tuned seed 1", "tuned seed 9"]
    assert all(c.seeds is None for c in comparisons)


def test_runs_of_other_recipes_are_not_grouped(tmp_path, recipe):
    base, runs = recipe
    other = seed_run(tmp_path / "lr", 4, 0.03, 0.73, learning_rate=1e-4)
    comparisons, _ = load_comparisons([base, runs[0], other])
    assert [c.candidate_label for c in comparisons] == ["tuned seed 1", "tuned seed 4"]
    assert all(c.seeds is None for c in comparisons)


def test_report_and_compare_show_every_seed_and_judge_the_recipe_from_its_interval(recipe, tmp_path):
    base, runs = recipe
    html_path, md_path, comparisons = write_report([base, *runs], tmp_path / "report.html")
    seeds = comparisons[0].seeds
    assert seeds is not None
    gain = seeds.datasets[0].metric("ndcg@10")
    assert gain.ci_low > 0  # every seed gained on every query: the recipe's gain holds
    html, markdown = html_path.read_text(), md_path.read_text()
    row = f"{min(gain.gains):+.4f} … {max(gain.gains):+.4f}"
    for text in (html, markdown):
        assert "Gains over training seeds" in text and row in text
        assert f"{gain.gains[1]:+.4f}*" in text  # the shipped seed, starred
        assert "98.75% CI (Bonferroni over 4 recipe intervals)" in text
        assert (
            f"The recipe over seeds 1, 2, 3 vs base, on the same 50 scifact test queries: mean Δ NDCG@10 "
            f"{gain.mean:+.4f} (seeds from {min(gain.gains):+.4f} to {max(gain.gains):+.4f}), 98.75% CI "
            f"(Bonferroni over 4 recipe intervals) over seeds and queries [{gain.ci_low:+.4f}, "
            f"{gain.ci_high:+.4f}]: a gain that holds across training runs; the run tested above: seed 2, "
            "the best on dev ndcg@10 among the seeds given (seed 1 0.7000, seed 2 0.7200, seed 3 0.7100); "
            "test did not choose."
        ) in text
    out = tmp_path / "compare.json"
    result = CliRunner().invoke(app, ["compare", str(base), *map(str, runs), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "Recipe of tuned seed 2 over 3 seeds" in result.output
    [saved] = json.loads(out.read_text())
    assert (
        saved["seeds"]["shipped"] == 2 and saved["seeds"]["datasets"][0]["metrics"][0]["gains"] == gain.gains
    )


def test_a_recipe_whose_seeds_disagree_is_not_credited(tmp_path):
    base = write(tmp_path / "base" / "results.json", results_doc("base", ONE_DATASET))
    runs = [seed_run(tmp_path, 1, 0.04, 0.72), seed_run(tmp_path, 2, -0.04, 0.70)]
    comparisons, _ = load_comparisons([base, *runs])
    sentences = verdict(comparisons)
    assert sentences[0].startswith("tuned seed 1:")  # the shipped run, judged from its own test
    assert sentences[1].endswith(
        "not established: the interval includes 0 once training runs vary; the run tested above: seed 1, "
        "the best on dev ndcg@10 among the seeds given (seed 1 0.7200, seed 2 0.7000); test did not choose."
    )


def test_train_over_seeds_keeps_every_run_and_ships_the_best_on_dev(tiny_model, scifact_slice, tmp_path):
    out = tmp_path / "tuned"
    args = [
        "train",
        "-m",
        str(tiny_model),
        "--train",
        str(scifact_slice),
        "--out",
        str(out),
        "--seeds",
        "2,1",
    ]
    args += ["--epochs", "1", "--batch-size", "8", "--learning-rate", "5e-4", "--warmup-steps", "1"]
    args += ["--interpolation-alphas", "0,1", "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    runs = {s: json.loads((out / "seeds" / f"seed-{s}" / TRAINING_METADATA).read_text()) for s in (1, 2)}
    assert {s: r["config"]["seed"] for s, r in runs.items()} == {1: 1, 2: 2}
    dev = {s: r["selected"]["dev"]["ndcg@10"] for s, r in runs.items()}
    best = max((1, 2), key=lambda s: (round(dev[s], 12), -s))
    chosen = json.loads((out / "seeds.json").read_text())
    assert chosen["shipped"]["seed"] == best and chosen["shipped"]["model"] == str(
        out / "seeds" / f"seed-{best}"
    )
    assert [(r["seed"], r["dev"]) for r in chosen["runs"]] == [(2, dev[2]), (1, dev[1])]
    shipped = json.loads((out / TRAINING_METADATA).read_text())
    assert shipped["weights_sha256"] == runs[best]["weights_sha256"]
    assert (out / "model.safetensors").read_bytes() == (
        out / "seeds" / f"seed-{best}" / "model.safetensors"
    ).read_bytes()


def test_a_recipe_with_no_dev_score_says_the_lowest_seed_is_tested(tmp_path):
    base = write(tmp_path / "base" / "results.json", results_doc("base", ONE_DATASET))
    runs = [seed_run(tmp_path, 3, 0.04, 0.72), seed_run(tmp_path, 1, 0.03, 0.70)]
    doc = json.loads(runs[0].read_text())
    del doc["model"]["training"]["selected"]["dev"]  # trained without dev queries
    write(runs[0], doc)
    comparisons, _ = load_comparisons([base, *runs])
    recipe = verdict(comparisons)[1]
    assert "chosen on dev" not in recipe
    assert recipe.endswith(
        "; the run tested above: seed 1, the lowest of the seeds given: not every run has a dev score "
        "to choose by."
    )


def test_a_subset_of_seeds_names_the_best_on_dev_among_those_given(recipe):
    """Seeds 1 and 3 of a recipe trained over 1, 2, 3 (where seed 2 shipped): seed 3 is the best
    of those given, not the run that shipped."""
    base, runs = recipe
    comparisons, _ = load_comparisons([base, runs[0], runs[2]])
    assert comparisons[0].candidate_label == "tuned seed 3"
    sentence = verdict(comparisons)[1]
    assert "ships" not in sentence
    assert sentence.endswith(
        "; the run tested above: seed 3, the best on dev ndcg@10 among the seeds given "
        "(seed 1 0.7000, seed 3 0.7100); test did not choose."
    )


def test_a_contaminated_recipe_is_marked_in_its_table_and_sentence(tmp_path):
    base = write(tmp_path / "base" / "results.json", results_doc("base", ONE_DATASET))
    runs = []
    for seed, shift, dev in ((1, 0.04, 0.72), (2, 0.03, 0.70)):
        doc = json.loads(seed_run(tmp_path, seed, shift, dev).read_text())
        doc["datasets"][0]["contaminated"] = True  # the model trained on evaluated queries
        runs.append(write(tmp_path / f"seed{seed}" / "results.json", doc))
    html_path, md_path, comparisons = write_report([base, *runs], tmp_path / "report.html")
    seeds = comparisons[0].seeds
    assert seeds is not None and [d.contaminated for d in seeds.datasets] == [True]
    recipe = verdict(comparisons)[1]
    assert recipe.startswith(
        "The recipe over seeds 1, 2 vs base, on the same 50 scifact test queries (⚠ CONTAMINATED: "
        "trained on evaluated queries): mean Δ NDCG@10"
    )
    for text in (html_path.read_text(), md_path.read_text()):
        assert "scifact:test (50 q) ⚠ contaminated" in text


def test_a_seed_given_twice_is_warned_not_dropped_silently(recipe, tmp_path, caplog):
    """`OUT` (the shipped copy) evaluated together with `OUT/seeds/seed-2`: one recipe, seed 2 twice."""
    base, runs = recipe
    copy = write(tmp_path / "out" / "results.json", json.loads(runs[1].read_text()))
    with caplog.at_level("WARNING", logger="irtune"):
        comparisons, _ = load_comparisons([base, *runs, copy])
    assert all(c.seeds is None for c in comparisons)
    assert (
        "runs of one recipe share seed 2 (tuned seed 2 (seed2), tuned seed 2 (out)): not summarised over "
        "seeds; give each seed's run once (OUT is a copy of OUT/seeds/seed-N)"
    ) in caplog.text
