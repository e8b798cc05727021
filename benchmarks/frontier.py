"""The efficiency frontier of MiniLM on SciFact and NFCorpus test: quality against bytes per
document, every cheaper setting made from the same float embedding cache (no re-encoding).

Settings: dims 384/256/128/64 (truncated, renormalised) x documents stored as float32, int8
or ubinary (packed bits; also with the top 4 x k rescored by the float query). Each setting
is one results file; all are compared with the full-precision run (paired randomization
test, Holm over every setting x dataset x metric test as one family).

    python benchmarks/frontier.py [--cache-dir DIR]

The same from the command line (one rescoring depth for the binary settings):

    irtune eval -m minilm -d scifact -d nfcorpus --dims 256,128,64 \\
        --quantize none,int8,ubinary --out runs/sizes
"""

from __future__ import annotations

import argparse
from pathlib import Path

import irtune
from irtune.evaluation.job import EvaluationJob
from irtune.evaluation.sweep import FULL, Setting, sweep
from irtune.retrieval.settings import RetrievalSettings

from _common import RESULTS, data_dir, timed, write_results

DATASETS = ["scifact", "nfcorpus"]
DIMS = (384, 256, 128, 64)
STORAGE = (("none", 1), ("int8", 1), ("ubinary", 1), ("ubinary", 4))  # (quantize, rescore)
OUT = RESULTS / "frontier"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args()
    model = irtune.load_model("minilm")
    points = [Setting(dims, quantize, rescore) for dims in DIMS for quantize, rescore in STORAGE]
    frontier, seconds = timed(
        lambda: sweep(
            EvaluationJob(
                model, DATASETS, RetrievalSettings(cache_dir=args.cache_dir), out_dir=OUT, data_dir=data_dir()
            ),
            points,
        )
    )
    rows = []
    for name, run in frontier.runs.items():
        row = {
            "setting": name,
            "bytes_per_document": run.retriever.params["bytes_per_document"],
            "datasets": {},
        }
        for entry in frontier.rows():
            if entry["setting"] != name:
                continue
            figures = {
                "ndcg@10": round(float(entry["ndcg@10"]), 4),
                "search_ms_per_query": round(float(entry["search_ms_per_query"]), 3),
            }
            if "delta" in entry:
                figures |= {"delta_ndcg@10": round(float(entry["delta"]), 4), "p_holm": entry["p_holm"]}
            row["datasets"][str(entry["dataset"])] = figures
        rows.append(row)
    header = f"{'setting':<24}{'bytes/doc':>10}" + "".join(
        f"{d + ' ndcg@10':>18}{'Δ':>9}{'p(Holm)':>9}{'ms/q':>8}" for d in DATASETS
    )
    print(header)
    for row in rows:
        line = f"{row['setting']:<24}{row['bytes_per_document']:>10g}"
        for dataset in DATASETS:
            f = row["datasets"][dataset]
            delta = f"{f['delta_ndcg@10']:+.4f}" if "delta_ndcg@10" in f else "base"
            p = f"{f['p_holm']:.4f}" if "p_holm" in f else ""
            line += f"{f['ndcg@10']:>18.4f}{delta:>9}{p:>9}{f['search_ms_per_query']:>8.2f}"
        print(line)
    correction = next(c.correction for c in frontier.comparisons.values() if c.correction)
    write_results(
        "frontier",
        {
            "model": "minilm (all-MiniLM-L6-v2), fp32 embeddings from the cache",
            "datasets": DATASETS,
            "split": "test",
            "baseline": FULL,
            "correction": correction.describe(),
            "rows": rows,
            "seconds": round(seconds, 1),
        },
    )


if __name__ == "__main__":
    main()
