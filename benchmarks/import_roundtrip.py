"""SciFact exported to CSV and to parquet, imported back with `irtune data import`, and
evaluated with MiniLM (fp32, the reference setting): the four metrics must equal those of
the BEIR folder to 1e-4. The CSV import's corpus file differs from the gzipped original, so
its embeddings are computed afresh; the parquet import writes a corpus file byte-identical to
the CSV one (same sha256, the cache key), which is itself the check, and reuses them.

    python benchmarks/import_roundtrip.py [--work DIR] [--cache-dir DIR]

By hand, the CSV leg is:

    irtune data import scifact-csv --corpus corpus.csv --queries queries.csv --qrels test=qrels.csv
    irtune eval -m minilm -d scifact-csv
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import irtune
from irtune.data.beir import BeirDataset

from _common import data_dir, timed, write_results

METRICS = ("ndcg@10", "ndcg@100", "map@100", "recall@100")


def export(dataset: BeirDataset, folder: Path, fmt: str) -> dict[str, Path]:
    """corpus, queries and test qrels as tables, written by pyarrow."""
    tables = {
        "corpus": pa.Table.from_pylist(
            [{"_id": d, "title": doc.title, "text": doc.text} for d, doc in dataset.corpus.items()]
        ),
        "queries": pa.Table.from_pylist([{"_id": q, "text": t} for q, t in dataset.queries.items()]),
        "qrels": pa.Table.from_pylist(
            [
                {"query-id": q, "corpus-id": d, "score": g}
                for q, judged in dataset.qrels("test").items()
                for d, g in judged.items()
            ]
        ),
    }
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, table in tables.items():
        paths[name] = folder / f"{name}.{fmt}"
        if fmt == "csv":
            pacsv.write_csv(table, paths[name])
        else:
            pq.write_table(table, paths[name])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=None, help="folder for the exports (default: temporary)")
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="irtune-import-"))
    original = irtune.load_dataset("scifact", data_dir=data_dir())
    model = irtune.load_model("minilm")
    runs = {}
    seconds = {}
    runs["beir"], seconds["beir"] = timed(
        lambda: irtune.evaluate(model, [str(original.root)], cache_dir=args.cache_dir)
    )
    for fmt in ("csv", "parquet"):
        files = export(original, work / f"export-{fmt}", fmt)
        imported, seconds[f"import_{fmt}"] = timed(
            lambda fmt=fmt, files=files: irtune.import_data(
                f"scifact-{fmt}",
                corpus=files["corpus"],
                queries=files["queries"],
                qrels={"test": files["qrels"]},
                out=work / f"scifact-{fmt}",
                force=True,
            )
        )
        runs[fmt], seconds[fmt] = timed(
            lambda imported=imported: irtune.evaluate(model, [str(imported.root)], cache_dir=args.cache_dir)
        )
    figures = {name: {m: r.datasets[0].metrics[m] for m in METRICS} for name, r in runs.items()}
    differences = {
        fmt: max(abs(figures[fmt][m] - figures["beir"][m]) for m in METRICS) for fmt in ("csv", "parquet")
    }
    for name, values in figures.items():
        print(f"{name:8s} " + "  ".join(f"{m} {v:.4f}" for m, v in values.items()))
    for fmt, difference in differences.items():
        verdict = "same" if difference <= 1e-4 else "DIFFERENT"
        print(f"{fmt}: largest difference from the BEIR folder {difference:.2e} ({verdict} to 1e-4)")
    write_results(
        "import_roundtrip",
        {
            "command": "python benchmarks/import_roundtrip.py",
            "model": "all-MiniLM-L6-v2 (bundled), fp32",
            "metrics": figures,
            "largest_difference": differences,
            "seconds": {k: round(v, 1) for k, v in seconds.items()},
        },
    )
    if max(differences.values()) > 1e-4:
        raise SystemExit("an imported copy does not reproduce the BEIR folder's metrics")


if __name__ == "__main__":
    main()
