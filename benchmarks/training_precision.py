"""Does bf16 training cost the main job's gain? The README's quickstart recipe trained in fp32
and in bf16 autocast over several seeds, in one `irtune run` (one baseline, one Holm family):
each run's test NDCG@10 gain with its CI and Holm-corrected p, then per precision the mean and
range of the gain over seeds, and the training wall time per run.

    python benchmarks/training_precision.py [--seeds 1,2,3] [--work /tmp/irtune-precision]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _common import HERE, data_dir, write_results

PRECISIONS = {"fp32": "none", "bf16": "bf16"}


def study(out: Path, seeds: list[int]) -> str:
    quickstart = (HERE.parent / "examples" / "quickstart.toml").read_text()
    head, _, _ = quickstart.partition("[[variants]]")
    head = head.replace('out_dir = "runs/quickstart"', f'out_dir = "{out}"')
    head = head.replace('retrievers = ["dense", "bm25"]', 'retrievers = ["dense"]')
    variants = "".join(
        f'\n[[variants]]\nname = "{name}-seed{seed}"\ntrain = ["scifact"]\n'
        f'training = {{ seed = {seed}, mixed_precision = "{mode}" }}\n'
        for name, mode in PRECISIONS.items()
        for seed in seeds
    )
    return head + variants


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--work", default="/tmp/irtune-precision")
    parser.add_argument("--irtune", default=str(HERE.parent / ".venv" / "bin" / "irtune"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "study.toml"
    path.write_text(study(work / "run", seeds))
    env = {**os.environ, "IRTUNE_DATA_DIR": str(data_dir()), "IRTUNE_CACHE_DIR": str(work / "cache")}
    subprocess.run([args.irtune, "run", str(path)], env=env, check=True)  # resumes when re-run

    from irtune.comparison import load_comparisons

    stages = work / "run" / "stages"
    baseline = next(stages.glob("baseline-*/results.json"))
    tuned = sorted(stages.glob("eval-*/results.json"))
    comparisons, _ = load_comparisons([baseline, *tuned])
    runs = []
    for comparison in comparisons:
        row = comparison.datasets[0].metric("ndcg@10")
        name = comparison.candidate_label.rsplit("(", 1)[-1].rstrip(")")
        training = json.loads(
            next(stages.glob(f"train-{name}-*/model/irtune_training.json")).read_text(encoding="utf-8")
        )
        runs.append(
            {
                "run": name,
                "precision": name.split("-")[0],
                "seed": int(name.rsplit("seed", 1)[1]),
                "ndcg@10": round(row.candidate, 4),
                "gain": round(row.delta, 4),
                "ci": [round(row.ci_low, 4), round(row.ci_high, 4)],
                "p_holm": round(row.p_holm, 4),
                "training_wall_s": training["wall_time_s"],
                "mixed_precision": training["config"]["mixed_precision"],
                "activation_checkpointing": training.get("activation_checkpointing"),
            }
        )
        print(
            f"{name:12s} NDCG@10 {row.baseline:.4f} -> {row.candidate:.4f} ({row.delta:+.4f}, "
            f"p_holm {row.p_holm:.4f}), training {training['wall_time_s']:.0f} s"
        )
    summary = {}
    for precision in PRECISIONS:
        gains = [r["gain"] for r in runs if r["precision"] == precision]
        walls = [r["training_wall_s"] for r in runs if r["precision"] == precision]
        summary[precision] = {
            "mean_gain": round(statistics.fmean(gains), 4),
            "min_gain": min(gains),
            "max_gain": max(gains),
            "mean_training_wall_s": round(statistics.fmean(walls), 1),
        }
        mean = summary[precision]["mean_gain"]
        print(f"{precision}: gain mean {mean:+.4f}, range [{min(gains):+.4f}, {max(gains):+.4f}]")
    write_results(
        "training_precision",
        {
            "command": f"python benchmarks/training_precision.py --seeds {args.seeds}",
            "baseline_ndcg@10": round(comparisons[0].datasets[0].metric("ndcg@10").baseline, 4),
            "holm_family": comparisons[0].correction.model_dump() if comparisons[0].correction else None,
            "runs": runs,
            "summary": summary,
        },
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
