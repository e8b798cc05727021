"""Fine-tuning without labels: SciFact's documents as a user's CSV, synthetic queries from a
generator, MiniLM trained on those only, evaluated on the 300 real SciFact test queries.

1. SciFact's corpus is written to CSV and imported as `scifact-docs` (no queries at all);
2. `irtune generate` writes a query for a seeded sample of documents (default: the bundled
   Gemma 3 270M, in process) and filters them (length, copies, duplicates, round trip
   through MiniLM's top 10 over the whole corpus);
3. MiniLM is trained on `scifact-docs:synthetic`: with no real query anywhere, the epoch
   and interpolation weight are chosen on a held-out slice of the synthetic queries;
4. base and tuned model are evaluated on SciFact test (bf16, as the quickstart) and
   compared; with `--supervised QUICKSTART_OUT` the quickstart's supervised model (trained
   on SciFact's human train queries) joins the same table, against the same baseline run.

    python benchmarks/synthetic_queries.py --sample 1000 --supervised runs/quickstart
    python benchmarks/synthetic_queries.py --generator openai:http://localhost:8000/v1 --model NAME

The same by hand:

    irtune data import scifact-docs --corpus scifact_corpus.csv
    irtune generate -d scifact-docs --generator hf:gemma3-270m --sample 1000 --domain scientific
    irtune train -m minilm --train scifact-docs:synthetic --out runs/synthetic-model
    irtune eval -m runs/synthetic-model -d scifact --precision bf16 --out runs/synthetic
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
from rich.console import Console

import irtune
from irtune.reporting.tables import comparison_table
from irtune.results.schema import read_results

from _common import RESULTS, data_dir, timed, write_results

TRAINING = {  # the quickstart's recipe, so the supervised and synthetic rows differ only in data
    "epochs": 1,
    "batch_size": 32,
    "learning_rate": 3e-5,
    "warmup_steps": 10,
    "hard_negatives": True,
    "num_negatives": 1,
    "negatives_range_max": 50,
    "relative_margin": 0.05,
    "dev_fraction": 0.2,
    "interpolation_alphas": [0.0, 0.5, 1.0],
    "precision": "bf16",
    "save_steps": 10,
}


def stage(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(f"stages/{pattern}-*/results.json"))
    if not found:
        raise SystemExit(f"no {pattern} stage in {folder}: run the quickstart first")
    return found[-1].parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generator", default="hf:gemma3-270m")
    parser.add_argument("--model", default=None, help="endpoint model name for openai: generators")
    parser.add_argument("--sample", type=int, default=1000, help="documents to generate for; 0: all")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--work", type=Path, default=RESULTS / "synthetic_work")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--supervised", type=Path, default=None, help="the quickstart's out_dir")
    parser.add_argument("--name", default="synthetic_queries")
    args = parser.parse_args()
    work: Path = args.work
    scifact = irtune.load_dataset("scifact", data_dir=data_dir())

    csv_path = work / "scifact_corpus.csv"
    if not csv_path.is_file():
        rows = [{"id": d, "title": doc.title, "text": doc.text} for d, doc in scifact.corpus.items()]
        work.mkdir(parents=True, exist_ok=True)
        pacsv.write_csv(pa.Table.from_pylist(rows), csv_path)
    docs_root = work / "data" / "scifact-docs"
    docs = (
        irtune.load_dataset(str(docs_root))
        if docs_root.is_dir()
        else irtune.import_data("scifact-docs", corpus=csv_path, out=docs_root)
    )

    manifest, generate_s = timed(
        lambda: irtune.generate_queries(
            docs,
            args.generator,
            generator_model=args.model,
            cache_dir=args.cache_dir,
            precision="bf16",
            sample=args.sample or None,
            seed=args.seed,
            domain="scientific",
            round_trip_k=10,
        )
    )
    print(
        f"kept {manifest.kept} of {manifest.documents} ({manifest.keep_rate:.1%}); dropped {manifest.dropped}"
    )

    model_dir = work / f"model-{args.name}"
    tuned_model, train_s = timed(
        lambda: irtune.train(
            "minilm",
            [f"{docs_root}:synthetic"],
            out_dir=model_dir,
            cache_dir=args.cache_dir,
            config={**TRAINING, "epochs": args.epochs},
            resume=(model_dir / "_irtune_work").exists(),
        )
    )
    settings = {"precision": "bf16", "batch_size": 32, "cache_dir": args.cache_dir}
    kind, _, target = args.generator.partition(":")
    generator_name = f"{kind}:{args.model or target}"
    if args.supervised is not None:
        baseline = read_results(stage(args.supervised, "baseline"))
        supervised = read_results(stage(args.supervised, "eval-scifact"))
    else:
        baseline = irtune.evaluate("minilm", ["scifact"], data_dir=data_dir(), **settings)
        supervised = None
    synthetic, eval_s = timed(
        lambda: irtune.evaluate(
            str(tuned_model),
            ["scifact"],
            data_dir=data_dir(),
            label=f"MiniLM + synthetic queries ({generator_name})",
            out_dir=work / f"eval-{args.name}",
            **settings,
        )
    )
    candidates = [synthetic, *([supervised] if supervised is not None else [])]
    comparisons = irtune.compare(baseline, *candidates)
    console = Console(width=180)
    for comparison in comparisons:
        console.print(comparison_table(comparison))
    record = json.loads((Path(tuned_model) / "irtune_training.json").read_text())
    rows = {}
    for comparison in comparisons:
        row = comparison.datasets[0].metric("ndcg@10")
        rows[comparison.candidate_label] = {
            "ndcg@10": row.candidate,
            "baseline": row.baseline,
            "delta": row.delta,
            "ci95": [row.ci_low, row.ci_high],
            "p": row.p_value,
            "p_holm": row.p_holm,
        }
    write_results(
        args.name,
        {
            "command": "python benchmarks/synthetic_queries.py "
            f"--sample {args.sample} --generator {args.generator}"
            + (f" --supervised {args.supervised}" if args.supervised else ""),
            "generation": manifest.model_dump(),
            "training": {
                "config": {**TRAINING, "epochs": args.epochs},
                "selected": record["selected"],
                "train_sets": record["train_sets"],
                "contaminated": record["contaminated"],
            },
            "evaluation": "SciFact test, 300 real queries, bf16, MiniLM baseline",
            "ndcg@10": rows,
            "contaminated": synthetic.contaminated,
            "seconds": {
                "generate": round(generate_s, 1),
                "train": round(train_s, 1),
                "eval": round(eval_s, 1),
            },
        },
    )


if __name__ == "__main__":
    main()
