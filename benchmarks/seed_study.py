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

from _common import HERE, data_dir, describe_recipe, recipe_figures, write_results


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
    figures = recipe_figures(comparison)
    trainings = {
        seed: json.loads(
            next(stages.glob(f"train-{args.dataset}@seed-{seed}-*/model/irtune_training.json")).read_text(
                "utf-8"
            )
        )
        for seed in figures["seeds"]
    }
    baseline_ndcg = comparison.datasets[0].metric("ndcg@10").baseline
    figures = {
        "dataset": args.dataset,
        "recipe": recipe(args.dataset),
        "baseline_ndcg@10": round(baseline_ndcg, 4),
        **figures,
        "training_wall_s": {seed: t["wall_time_s"] for seed, t in trainings.items()},
        "study_wall_s": None if args.summarize else round(wall, 1),
    }
    print(f"{args.dataset}: baseline {baseline_ndcg:.4f}; {describe_recipe(figures)}")
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
