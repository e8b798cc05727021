"""Fine-tuning quality with the bundled MiniLM on 2 CPU cores, measured on held-out queries.

- SciFact: train on `train` minus a dev slice, select on the slice, report all 300 `test` queries.
- NFCorpus: train on `train` with the GIST loss (one capped positive per query per epoch),
  select on `dev`, report `test`; the selection must not cost Recall@100.

Each study is an `irtune run` (resumable; its stages land in benchmarks/results/finetune_*),
and the before/after tables, paired p-values and training time are written to
benchmarks/results/finetune_quality.json.

    python benchmarks/finetune_quality.py [--only scifact|nfcorpus]
"""

from __future__ import annotations

import argparse
import json

from irtune.results.compare import load_comparisons
from irtune.study.config import Study
from irtune.study.runner import run_study

from _common import RESULTS, data_dir, write_results

COMMON = {
    "model": {"base": "minilm"},
    "training": {
        "batch_size": 32,
        "hard_negatives": True,
        "num_negatives": 1,
        "negatives_range_max": 50,
        "relative_margin": 0.05,
        "precision": "bf16",
        "save_steps": 20,
    },
}
STUDIES = {
    "scifact": {  # the settings of examples/quickstart.toml
        "evaluation": {"datasets": ["scifact"], "precision": "bf16", "bm25": False},
        "training": {
            "epochs": 2,
            "learning_rate": 3e-5,
            "warmup_steps": 10,
            "interpolation_alphas": [0.0, 0.5, 1.0],
        },
    },
    "nfcorpus": {
        # Queries share many relevant documents (~40 per query, each relevant to ~30 queries),
        # so plain in-batch negatives are often false negatives: GIST masks them with the
        # frozen base model as guide. One capped positive per query per epoch, dev selection.
        # Evaluated in fp32 so the baseline is the reference figure (0.3159).
        "evaluation": {"datasets": ["nfcorpus"], "precision": "fp32", "bm25": False},
        "training": {
            "epochs": 3,
            "loss": "gist",
            "learning_rate": 2e-5,
            "warmup_steps": 10,
            "max_positives_per_query": 1,
            "max_pairs_per_dataset": 1200,
            "hard_negatives": False,
            "interpolation_alphas": [0.0, 0.5, 1.0],
        },
    },
}


def study(name: str) -> Study:
    spec = STUDIES[name]
    return Study.model_validate(
        {
            "name": f"finetune-{name}",
            "out_dir": RESULTS / f"finetune_{name}",
            "model": COMMON["model"],
            "evaluation": spec["evaluation"],
            "training": {**COMMON["training"], **spec["training"]},
            "variants": [{"name": name, "train": [name]}],
        }
    )


def summarize(name: str) -> dict:
    stages = RESULTS / f"finetune_{name}" / "stages"
    baseline = next(stages.glob("baseline-*")) / "results.json"
    tuned = next(stages.glob(f"eval-{name}-*")) / "results.json"
    comparison = load_comparisons([baseline, tuned])[0][0]
    training = json.loads(
        next(stages.glob(f"train-{name}-*")).joinpath("model", "irtune_training.json").read_text()
    )
    return {
        "comparison": comparison.to_json(),
        "training_wall_s": training["wall_time_s"],
        "selected": {k: training["selected"][k] for k in ("epoch", "alpha", "criterion")},
        "dev_curve": [{"epoch": p["epoch"], "dev_ndcg@10": p["dev"]["ndcg@10"]} for p in training["curve"]],
        "interpolation": training["selected"].get("interpolation"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=sorted(STUDIES))
    args = parser.parse_args()
    names = [args.only] if args.only else list(STUDIES)
    figures = {}
    for name in names:
        run_study(study(name), data_dir=data_dir())  # resumes finished stages
        figures[name] = summarize(name)
        for row in figures[name]["comparison"]["datasets"][0]["metrics"]:
            print(
                f"{name} {row['metric']:10s} {row['baseline']:.4f} -> {row['candidate']:.4f} "
                f"({row['delta']:+.4f}, p={row['p_value']:.4f})"
            )
    write_results("finetune_quality" + (f"_{args.only}" if args.only else ""), {"studies": figures})


if __name__ == "__main__":
    main()
