"""Several training runs of one recipe, one per seed: which results belong together, and which
run ships.

A recipe is everything that made and measured a model except its training seed: the base
weights, the training sets (by their files' hashes), the protocol, every training setting and
the evaluation setup. Results whose models share a recipe and differ only in seed are runs of
that recipe, whatever they are called (content, not names). The run that ships is the one
chosen on dev, as each run chose its own epoch: the test queries never choose. Given some of
the seeds only, the run chosen is the best on dev among those given, which need not be the one
training shipped.

The irtune version and commit that evaluated a run (`environment`) are not part of the recipe:
they are provenance, and what the numbers mean is pinned by the key's settings, files and
queries (a version that changed the meaning of a metric under the same settings would be a bug
to fix, not another recipe); runs re-evaluated by a newer irtune stay runs of their recipe.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence

from irtune.results.model import TrainingSummary
from irtune.results.schema import ResultsFile

log = logging.getLogger(__name__)

# training.selection.SELECTION_KEY, the score each run was selected by on dev (not imported
# from there: that module loads torch, and compare must stay light)
DEV_KEY = "ndcg@10"
SEED_SETTINGS = ("seed", "seeds")
RUN_ONLY_SETTINGS = ("batch_size", "cache_dir", "devices")  # move no number


def seed_of(result: ResultsFile) -> int | None:
    """The seed a run's model was trained with (None: not an irtune-trained model)."""
    training = result.model.training if result.model else None
    return training.config.seed if training else None


def recipe_key(result: ResultsFile) -> str | None:
    """The recipe of a run, as text (None: not an irtune-trained model, or no seed recorded:
    such a run is compared on its own, never as some seed of a recipe)."""
    training = result.model.training if result.model else None
    if training is None or training.config.seed is None or result.model is None:
        return None
    recipe = {
        "base": training.base_model.weights_sha256,
        "train_sets": [t.model_dump(mode="json") for t in training.train_sets],
        "protocol": training.protocol,
        "config": training.config.model_dump(mode="json", exclude=set(SEED_SETTINGS)),
        "retriever": result.retriever.model_dump(mode="json"),
        "settings": result.settings.model_dump(mode="json", exclude=set(RUN_ONLY_SETTINGS)),
        "prompts": result.model.prompts,
        "max_seq_length": result.model.max_seq_length,
        "evaluated": sorted(
            (e.dataset, e.split, e.queries.ids_sha256, json.dumps(e.data_files_sha256, sort_keys=True))
            for e in result.datasets
        ),
    }
    return json.dumps(recipe, sort_keys=True, default=str)


def seed_groups(results: Sequence[ResultsFile]) -> list[list[ResultsFile]]:
    """The runs of each recipe measured with two or more distinct seeds, each group by seed. A
    recipe with a seed given twice is not summarised (which run would stand for the seed?): it
    is warned, each run then compared on its own."""
    by_recipe: dict[str, list[ResultsFile]] = {}
    for result in results:
        if (key := recipe_key(result)) is not None:
            by_recipe.setdefault(key, []).append(result)
    groups = [sorted(group, key=lambda r: seed_of(r) or 0) for group in by_recipe.values() if len(group) > 1]
    return [group for group in groups if not _seed_repeated(group)]


def _seed_repeated(group: Sequence[ResultsFile]) -> bool:
    """Whether a seed appears twice in a recipe's runs (each such seed warned)."""
    seeds = Counter(seed_of(r) for r in group)
    for seed in (s for s, runs in seeds.items() if runs > 1):
        labels = ", ".join(r.label for r in group if seed_of(r) == seed)
        log.warning(
            "runs of one recipe share seed %s (%s): not summarised over seeds; give each seed's run "
            "once (OUT is a copy of OUT/seeds/seed-N)",
            seed,
            labels,
        )
    return len(seeds) != len(group)


def summary_dev_score(training: TrainingSummary | None) -> float | None:
    """The dev score a run's shipped weights were selected with (None: no dev queries)."""
    score = (training.selected.dev or {}).get(DEV_KEY) if training else None
    return float(score) if isinstance(score, int | float) else None


def shipped_by_dev_score(seeds: Sequence[int], scores: Sequence[float | None]) -> tuple[int, str]:
    """(index of the run that ships, why): the best dev score, the lowest seed on a tie; when a
    run has no dev score, the lowest seed, and the reason says it was not chosen on scores."""
    lowest = min(range(len(seeds)), key=lambda i: seeds[i])
    known = [score for score in scores if score is not None]
    if len(known) != len(scores):
        return lowest, (
            f"seed {seeds[lowest]}, the lowest of the seeds given: not every run has a dev score to choose by"
        )
    best = max(range(len(known)), key=lambda i: (round(known[i], 12), -seeds[i]))
    listed = ", ".join(f"seed {seed} {score:.4f}" for seed, score in zip(seeds, known, strict=True))
    return best, (
        f"seed {seeds[best]}, the best on dev {DEV_KEY} among the seeds given ({listed}); test did not choose"
    )
