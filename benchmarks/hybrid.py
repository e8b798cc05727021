"""Hybrid retrieval on SciFact and NFCorpus test: dense, BM25, RRF and dev-tuned fusion.

MiniLM (fp32, the reference setting) and bm25s, each evaluated on all test queries, then
compared with the dense run as baseline (paired randomization test, Holm over every
dataset x metric test of a comparison). The tuned fusion's weight is chosen on dev
queries only: SciFact's dev slice of train (the default split plan), NFCorpus's dev split.

    python benchmarks/hybrid.py [--cache-dir DIR] [--reuse]   # --reuse: compare the written runs again

The same, from the command line:

    irtune eval -m minilm -d scifact -d nfcorpus --retriever hybrid --out runs/hybrid
    irtune compare runs/dense runs/bm25 runs/hybrid-rrf runs/hybrid
"""

from __future__ import annotations

import argparse
from pathlib import Path

import irtune
from irtune.reporting.tables import comparison_table
from irtune.results.schema import read_results

from _common import RESULTS, data_dir, timed, write_results

DATASETS = ["scifact", "nfcorpus"]
RETRIEVERS = ("dense", "bm25", "hybrid-rrf", "hybrid")
OUT = RESULTS / "hybrid"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="read the runs written before")
    args = parser.parse_args()
    runs = {}
    seconds = {}
    for name in RETRIEVERS:
        model = None if name == "bm25" else "minilm"
        if args.reuse:
            runs[name] = read_results(OUT / name)
            continue
        runs[name], seconds[name] = timed(
            lambda name=name, model=model: irtune.evaluate(
                model,
                DATASETS,
                retriever=name,
                out_dir=OUT / name,
                data_dir=data_dir(),
                cache_dir=args.cache_dir,
            )
        )
    comparisons = irtune.compare(runs["dense"], *(runs[n] for n in RETRIEVERS[1:]))
    from rich.console import Console

    console = Console(width=180)
    for comparison in comparisons:
        console.print(comparison_table(comparison))
    figures = {
        name: {
            d.dataset: {
                "metrics": {m: d.metrics[m] for m in ("ndcg@10", "ndcg@100", "map@100", "recall@100")},
                "queries": d.queries.count,
                "dense_weight": d.retrieval.get("dense_weight"),
                "dev": d.retrieval.get("dev"),
            }
            for d in runs[name].datasets
        }
        for name in RETRIEVERS
    }
    write_results(
        "hybrid",
        {
            "model": "minilm (all-MiniLM-L6-v2), fp32",
            "datasets": DATASETS,
            "split": "test",
            "figures": figures,
            "seconds": {k: round(v, 1) for k, v in seconds.items()} or "see the runs' timings_s",
            "timings_s": {n: {d.dataset: d.timings_s for d in runs[n].datasets} for n in RETRIEVERS},
            "comparisons_vs_dense": [c.to_json() for c in comparisons],
        },
    )


if __name__ == "__main__":
    main()
