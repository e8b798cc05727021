"""How much of a fine-tuning gain is the recipe, and how much one lucky training run? A
dataset's recipe trained once per seed (`seeds = [..]` in `[training]`, one `irtune run`, one
baseline): each seed's test NDCG@10 gain, their mean and range, the recipe's CI over seeds and
queries (two-level bootstrap, irtune.results.significance), and the shipped run (chosen on dev).

    python benchmarks/seed_study.py --dataset nfcorpus [--seeds 1,2,3,4,5] [--work DIR]

The recipes are the ones this repository documents: SciFact's is examples/quickstart.toml;
NFCorpus's is benchmarks/finetune_quality.py's (GIST, one capped positive per query, dev
selection, fp32 evaluation): the quickstart's MNRL over NFCorpus's 110k training pairs would
take hours per seed on 2 cores, and its in-batch negatives are often false negatives there.
Re-running resumes the study's finished stages.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from finetune_quality import COMMON, STUDIES

from irtune.results.compare import load_comparisons
from irtune.study.config import Study
from irtune.study.runner import run_study

from _common import HERE, data_dir, write_results


def quickstart_recipe() -> dict:
    import tomllib

    study = tomllib.loads((HERE.parent / "examples" / "quickstart.toml").read_text("utf-8"))
    study["evaluation"]["retrievers"] = ["dense"]
    return {"model": study["model"], "evaluation": study["evaluation"], "training": study["training"]}


def recipe(dataset: str) -> dict:
    if dataset == "scifact":
        return quickstart_recipe()
    spec = STUDIES[dataset]
    evaluation = {k: v for k, v in spec["evaluation"].items() if k != "bm25"}
    return {
        "model": COMMON["model"],
        "evaluation": {**evaluation, "retrievers": ["dense"]},
        "training": {**COMMON["training"], **spec["training"]},
    }


def study(dataset: str, seeds: list[int], out: Path) -> Study:
    spec = recipe(dataset)
    spec["evaluation"]["datasets"] = [dataset]
    spec["training"]["seeds"] = seeds
    return Study.model_validate(
        {
            "name": f"seeds-{dataset}",
            "out_dir": out,
            **spec,
            "variants": [{"name": dataset, "train": [dataset]}],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", choices=["scifact", "nfcorpus"], required=True)
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--work", default=None, help="study folder (default /tmp/irtune-seeds-DATASET)")
    parser.add_argument(
        "--summarize",
        action="store_true",
        help="only read the seeds' finished stages (the study may still run)",
    )
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.work or f"/tmp/irtune-seeds-{args.dataset}")
    started = time.perf_counter()
    if not args.summarize:
        run_study(study(args.dataset, seeds, out), data_dir=data_dir())
    wall = time.perf_counter() - started

    stages = out / "stages"
    baseline = next(stages.glob("baseline-*/results.json"))
    tuned = [
        next(stages.glob(f"eval-{args.dataset}@seed-{seed}-*/done.json")).parent / "results.json"
        for seed in seeds
    ]
    comparisons, _ = load_comparisons([baseline, *tuned])
    (comparison,) = comparisons
    recipe_result = comparison.seeds
    assert recipe_result is not None, "the runs over seeds form one recipe"
    gain = recipe_result.datasets[0].metric("ndcg@10")
    shipped = comparison.datasets[0].metric("ndcg@10")
    trainings = {
        seed: json.loads(
            next(stages.glob(f"train-{args.dataset}@seed-{seed}-*/model/irtune_training.json")).read_text(
                "utf-8"
            )
        )
        for seed in recipe_result.seeds
    }
    figures = {
        "dataset": args.dataset,
        "recipe": recipe(args.dataset),
        "baseline_ndcg@10": round(shipped.baseline, 4),
        "seeds": recipe_result.seeds,
        "gains": [round(g, 4) for g in gain.gains],
        "mean_gain": round(gain.mean, 4),
        "range": [round(min(gain.gains), 4), round(max(gain.gains), 4)],
        "ci_seeds_and_queries": [round(gain.ci_low, 4), round(gain.ci_high, 4)],
        "ci": recipe_result.describe_level(),
        "shipped_seed": recipe_result.shipped,
        "shipped_reason": recipe_result.reason,
        "shipped_gain": round(shipped.delta, 4),
        "shipped_ci_queries": [round(shipped.ci_low, 4), round(shipped.ci_high, 4)],
        "shipped_p_holm": round(shipped.p_holm, 4),
        "training_wall_s": {seed: t["wall_time_s"] for seed, t in trainings.items()},
        "study_wall_s": None if args.summarize else round(wall, 1),
    }
    print(
        f"{args.dataset}: baseline {shipped.baseline:.4f}; seeds {recipe_result.seeds}: gains "
        f"{figures['gains']}, mean {gain.mean:+.4f}, {recipe_result.describe_level()} over seeds and "
        f"queries [{gain.ci_low:+.4f}, {gain.ci_high:+.4f}]; shipped seed {recipe_result.shipped} "
        f"{shipped.delta:+.4f} (p_holm {shipped.p_holm:.4f})"
    )
    write_results(
        f"seed_study_{args.dataset}",
        {
            "command": f"python benchmarks/seed_study.py --dataset {args.dataset} --seeds {args.seeds}"
            + (" --summarize" if args.summarize else ""),
            **figures,
        },
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
