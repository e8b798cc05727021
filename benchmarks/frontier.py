"""The efficiency frontier of MiniLM on SciFact and NFCorpus test: quality against bytes per
document, every cheaper setting made from the same float embedding cache (no re-encoding).

Settings: dims 384/256/128/64 (truncated, renormalised) x documents stored as float32, int8
or ubinary (packed bits; also with the top 4 x k rescored by the float query). Each setting
is one results file; all are compared with the full-precision run (paired randomization
test, Holm over every setting x dataset x metric test as one family).

    python benchmarks/frontier.py [--cache-dir DIR]

One setting from the command line:

    irtune eval -m minilm -d scifact --dims 128 --quantize int8 --out runs/d128-int8
    irtune compare runs/full runs/d128-int8
"""

from __future__ import annotations

import argparse
from pathlib import Path

import irtune
from irtune.results import ResultsFile

from _common import RESULTS, data_dir, timed, write_results

DATASETS = ["scifact", "nfcorpus"]
DIMS = (384, 256, 128, 64)
STORAGE = (("none", 1), ("int8", 1), ("ubinary", 1), ("ubinary", 4))  # (quantize, rescore)
OUT = RESULTS / "frontier"


def setting_name(dims: int, quantize: str, rescore: int) -> str:
    kind = "float32" if quantize == "none" else quantize
    return f"d{dims}-{kind}" + (f"-rescore{rescore}" if rescore > 1 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args()
    model = irtune.load_model("minilm")
    runs: dict[str, ResultsFile] = {}
    seconds: dict[str, float] = {}
    for dims in DIMS:
        for quantize, rescore in STORAGE:
            name = setting_name(dims, quantize, rescore)
            full = dims == DIMS[0] and quantize == "none"
            runs[name], seconds[name] = timed(
                lambda dims=dims, quantize=quantize, rescore=rescore, full=full, name=name: irtune.evaluate(
                    model,
                    DATASETS,
                    out_dir=OUT / name,
                    data_dir=data_dir(),
                    cache_dir=args.cache_dir,
                    label=name,
                    dims=None if full else dims,
                    quantize=quantize,
                    rescore=rescore,
                )
            )
            print(f"{name}: {seconds[name]:.1f} s")
    baseline = setting_name(DIMS[0], "none", 1)
    comparisons = {
        c.candidate_label: c
        for c in irtune.compare(runs[baseline], *(r for n, r in runs.items() if n != baseline))
    }
    rows = []
    for name, run in runs.items():
        params = run.retriever.params
        row = {
            "setting": name,
            "bytes_per_document": params.get("bytes_per_document", 4.0 * DIMS[0]),
            "datasets": {},
        }
        for entry in run.datasets:
            queries = entry.queries.count
            figures = {
                "ndcg@10": round(entry.metrics["ndcg@10"], 4),
                "recall@100": round(entry.metrics["recall@100"], 4),
                "search_ms_per_query": round(1000 * entry.timings_s["search_s"] / queries, 3),
            }
            if name in comparisons:
                metric = next(d for d in comparisons[name].datasets if d.dataset == entry.dataset).metric(
                    "ndcg@10"
                )
                figures |= {"delta_ndcg@10": round(metric.delta, 4), "p_holm": metric.p_holm}
            row["datasets"][entry.dataset] = figures
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
    write_results(
        "frontier",
        {
            "model": "minilm (all-MiniLM-L6-v2), fp32 embeddings from the cache",
            "datasets": DATASETS,
            "split": "test",
            "baseline": baseline,
            "correction": [c.correction.describe() for c in comparisons.values() if c.correction][:1],
            "rows": rows,
            "seconds": {k: round(v, 1) for k, v in seconds.items()},
        },
    )


if __name__ == "__main__":
    main()
