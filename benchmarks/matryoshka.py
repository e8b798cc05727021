"""Matryoshka vs plain fine-tuning of MiniLM on SciFact, evaluated at 384, 128 and 64 dims.

Both models are trained with the quickstart's settings (examples/quickstart.toml: 1 epoch,
hard negatives, dev selection and interpolation), differing only in the loss: `mnrl` or
`mnrl+matryoshka` (dims 384/256/128/64). Each model, and the base, is evaluated on SciFact
test (the held-out part of the models' split plan: all 300 queries) with the first 384, 128
and 64 dimensions. At each size the Matryoshka model is compared with the plain one (paired
randomization test, Holm over that size's 4 metrics, and over all 12 tests of the three sizes).

    python benchmarks/matryoshka.py [--cache-dir DIR] [--work DIR]   # ~30 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import irtune
from irtune.models.lineage import TRAINING_METADATA
from irtune.results.schema import ResultsFile
from irtune.results.significance import holm

from _common import HERE, RESULTS, data_dir, timed, write_results

DIMS = (384, 128, 64)
LOSSES = {"plain": "mnrl", "matryoshka": "mnrl+matryoshka"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=RESULTS / "matryoshka_work")
    args = parser.parse_args()
    quickstart = tomllib.loads((HERE.parent / "examples" / "quickstart.toml").read_text())
    training = quickstart["training"]
    precision = quickstart["evaluation"]["precision"]
    models: dict[str, Path] = {}
    seconds: dict[str, float] = {}
    for name, loss in LOSSES.items():
        out = args.work / name
        if (out / TRAINING_METADATA).is_file():  # trained by an earlier run of this script
            models[name] = out
            continue
        models[name], seconds[f"train {name}"] = timed(
            lambda out=out, loss=loss: irtune.train(
                "minilm",
                "scifact",
                out_dir=out,
                config={**training, "loss": loss},
                data_dir=data_dir(),
                cache_dir=args.cache_dir,
                resume=out.exists(),
            )
        )
    plan = models["plain"] / "irtune_splits" / "scifact.split.json"
    runs: dict[tuple[str, int], ResultsFile] = {}
    for dims in DIMS:
        for name, spec in (("base", "minilm"), *((n, str(p)) for n, p in models.items())):
            runs[name, dims] = irtune.evaluate(
                spec,
                "scifact",
                split_files=[plan],
                data_dir=data_dir(),
                cache_dir=args.cache_dir,
                precision=precision,
                dims=None if dims == DIMS[0] else dims,
                label=f"{name} d{dims}",
                out_dir=args.work / "runs" / f"{name}-d{dims}",
            )
    rows = {}
    compared = {dims: irtune.compare(runs["plain", dims], runs["matryoshka", dims])[0] for dims in DIMS}
    # also Holm over every test of the three sizes together (3 sizes x 4 metrics)
    tests = [(d, m) for d, c in compared.items() for m in c.datasets[0].metrics]
    joint = dict(zip(((d, m.metric) for d, m in tests), holm([m.p_value for _, m in tests]), strict=True))
    for dims in DIMS:
        comparison = compared[dims]
        metric = comparison.datasets[0].metric("ndcg@10")
        rows[dims] = {
            **{name: round(runs[name, dims].datasets[0].metrics["ndcg@10"], 4) for name in ("base", *LOSSES)},
            "matryoshka_minus_plain": round(metric.delta, 4),
            "ci95": [round(metric.ci_low, 4), round(metric.ci_high, 4)],
            "p_value": metric.p_value,
            "p_holm": metric.p_holm,
            "correction": comparison.correction.describe() if comparison.correction else None,
            "p_holm_all_sizes": joint[dims, "ndcg@10"],
            "correction_all_sizes": f"Holm over all {len(tests)} tests (3 sizes x 4 metrics)",
            "queries": comparison.datasets[0].queries,
        }
    print(
        f"{'dims':>5}{'base':>9}{'plain':>9}{'matryoshka':>12}{'Δ (m - p)':>12}  95% CI              p(Holm)"
    )
    for dims, row in rows.items():
        print(
            f"{dims:>5}{row['base']:>9.4f}{row['plain']:>9.4f}{row['matryoshka']:>12.4f}"
            f"{row['matryoshka_minus_plain']:>+12.4f}  [{row['ci95'][0]:+.4f}, {row['ci95'][1]:+.4f}]"
            f"  {row['p_holm']:.4f}         {row['p_holm_all_sizes']:.4f}"
        )
    write_results(
        "matryoshka",
        {
            "model": "minilm (all-MiniLM-L6-v2)",
            "dataset": "scifact",
            "split": "test (the eval part of the models' split plan)",
            "training": {**training, "losses": LOSSES},
            "evaluation_precision": precision,
            "ndcg@10": {str(d): r for d, r in rows.items()},
            "seconds": {k: round(v, 1) for k, v in seconds.items()},
        },
    )


if __name__ == "__main__":
    main()
