"""Does bf16 training cost the main job's gain? The README's quickstart recipe trained in fp32
and in bf16 autocast over several seeds, in one `irtune run` (one baseline): per precision each
seed's test NDCG@10 gain, their mean and range, the recipe's CI over seeds and queries, the
shipped run's Holm-corrected p, and the training wall time per run.

    python benchmarks/training_precision.py [--seeds 1,2,3] [--bf16-seeds 1,2,3,4,5] [--work DIR]

Runs that differ only in the training seed are one recipe (irtune.results.seeds): compare tests the
run chosen on dev and gives the recipe's gain a CI over seeds and queries (two-level bootstrap).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _common import HERE, data_dir, describe_recipe, recipe_figures, write_results

PRECISIONS = {"fp32": "none", "bf16": "bf16"}


def study(out: Path, seeds: dict[str, list[int]]) -> str:
    quickstart = (HERE.parent / "examples" / "quickstart.toml").read_text()
    head, _, _ = quickstart.partition("[[variants]]")
    head = head.replace('out_dir = "runs/quickstart"', f'out_dir = "{out}"')
    head = head.replace('retrievers = ["dense", "bm25"]', 'retrievers = ["dense"]')
    variants = "".join(
        f'\n[[variants]]\nname = "{name}-seed{seed}"\ntrain = ["scifact"]\n'
        f'training = {{ seed = {seed}, mixed_precision = "{PRECISIONS[name]}" }}\n'
        for name, chosen in seeds.items()
        for seed in chosen
    )
    return head + variants


def seeds_arg(text: str) -> list[int]:
    return [int(s) for s in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="1,2,3", help="seeds trained in fp32 and in bf16")
    parser.add_argument("--bf16-seeds", default=None, help="seeds trained in bf16 (default: --seeds)")
    parser.add_argument("--work", default="/tmp/irtune-precision")
    parser.add_argument("--irtune", default=str(HERE.parent / ".venv" / "bin" / "irtune"))
    args = parser.parse_args()
    seeds = {"fp32": seeds_arg(args.seeds), "bf16": seeds_arg(args.bf16_seeds or args.seeds)}
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "study.toml"
    path.write_text(study(work / "run", seeds))
    env = {**os.environ, "IRTUNE_DATA_DIR": str(data_dir()), "IRTUNE_CACHE_DIR": str(work / "cache")}
    subprocess.run([args.irtune, "run", str(path)], env=env, check=True)  # resumes when re-run

    from irtune.results.compare import load_comparisons

    stages = work / "run" / "stages"
    baseline = next(stages.glob("baseline-*/results.json"))
    tuned = sorted(stages.glob("eval-*/results.json"))
    comparisons, _ = load_comparisons([baseline, *tuned])  # one recipe per precision
    recipes = {}
    for comparison in comparisons:
        recipe = comparison.seeds
        assert recipe is not None, "each precision's runs form one recipe over seeds"
        names = [label.rsplit("(", 1)[-1].rstrip(")") for label in recipe.labels]
        precision = names[0].split("-")[0]
        trainings = [
            json.loads(next(stages.glob(f"train-{name}-*/model/irtune_training.json")).read_text("utf-8"))
            for name in names
        ]
        recipes[precision] = {
            **recipe_figures(comparison),
            "training_wall_s": [t["wall_time_s"] for t in trainings],
            "mixed_precision": sorted({t["config"]["mixed_precision"] for t in trainings}),
            "activation_checkpointing": sorted({bool(t.get("activation_checkpointing")) for t in trainings}),
        }
        print(f"{precision}: {describe_recipe(recipes[precision])}")
    command = f"python benchmarks/training_precision.py --seeds {args.seeds}"
    write_results(
        "training_precision",
        {
            "command": command + (f" --bf16-seeds {args.bf16_seeds}" if args.bf16_seeds else ""),
            "baseline_ndcg@10": round(comparisons[0].datasets[0].metric("ndcg@10").baseline, 4),
            "holm_family": comparisons[0].correction.model_dump() if comparisons[0].correction else None,
            "recipes": recipes,
        },
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
