"""Data commands: `irtune data fetch|info|import` and `irtune split`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from irtune import api
from irtune.cli.console import out
from irtune.cli.options import DataDir
from irtune.cli.values import key_values, split_items
from irtune.errors import IrtuneError


def data_fetch(
    name: str,
    data_dir: DataDir = None,
    mirror: Annotated[str | None, typer.Option(help="Base URL or folder holding <name>.zip.")] = None,
    md5: Annotated[str | None, typer.Option(help="Expected md5 (overrides the known one).")] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected sha256.")] = None,
    force: Annotated[bool, typer.Option(help="Download again even if present.")] = False,
) -> None:
    """Download an official BEIR zip, verify its checksum, extract it safely."""
    target = api.fetch_dataset(name, data_dir=data_dir, mirror=mirror, md5=md5, sha256=sha256, force=force)
    out.print(f"{name}: {target}")


def data_info(
    name: str,
    data_dir: DataDir = None,
    strict: Annotated[bool, typer.Option(help="Unknown ids in qrels are errors.")] = False,
) -> None:
    """Counts per split, relevance grades and text lengths of a dataset."""
    info = api.dataset_info(name, data_dir=data_dir, strict=strict)
    out.print(f"[bold]{info['name']}[/] ({info['path']})")
    out.print(
        f"corpus: {info['corpus']['count']:,} docs, "
        f"mean {info['corpus']['mean_words']:.1f} words (max {info['corpus']['max_words']:,}); "
        f"queries: {info['queries']['count']:,}, mean {info['queries']['mean_words']:.1f} words"
        + (f" (+ {info['queries']['generated']:,} generated)" if info["queries"]["generated"] else "")
    )
    if not info["splits"]:
        out.print(
            "no qrels: nothing is judged yet (`irtune data import --qrels/--pairs`, or `irtune generate`)"
        )
        return
    out.print(_splits_table(info["splits"]))


def _splits_table(splits: dict[str, Any]) -> Table:
    table = Table("split", "queries", "judged pairs", "relevant pairs", "rel/query", "grades")
    for split, s in splits.items():
        grades = ", ".join(f"{g}: {n:,}" for g, n in s["grades"].items())
        table.add_row(
            f"{split} (generated: train/select only)" if s["synthetic"] else split,
            f"{s['queries']:,}",
            f"{s['pairs']:,}",
            f"{s['relevant_pairs']:,}",
            f"{s['relevant_per_query']:.1f}",
            grades,
        )
    return table


def data_import(
    name: Annotated[str, typer.Argument(help="Name of the new dataset (a folder under --data-dir).")],
    corpus: Annotated[
        Path | None, typer.Option(help="Documents: CSV, TSV, JSONL, JSON, parquet or a saved dataset.")
    ] = None,
    queries: Annotated[
        Path | None, typer.Option(help="Queries (id and text), any of the same formats.")
    ] = None,
    qrels: Annotated[
        list[str] | None,
        typer.Option(help="SPLIT=FILE judgements (repeat): BEIR TSV, TREC qrels or a table of ids + grade."),
    ] = None,
    pairs: Annotated[
        list[str] | None,
        typer.Option(
            help="[SPLIT=]FILE of (query, positive[, negative][, score]) texts without ids (default "
            "split: test, which the honest plan cuts into train/dev/eval parts)."
        ),
    ] = None,
    col: Annotated[
        list[str] | None,
        typer.Option(
            help="ROLE=COLUMN (repeat). Roles: id, text, title (corpus); query_id, query (queries); "
            "query_id, doc_id, score (qrels); query, positive, negative, score (pairs)."
        ),
    ] = None,
    ir_datasets: Annotated[
        list[str] | None,
        typer.Option(
            "--ir-datasets",
            help="[SPLIT=]ID of an ir_datasets dataset (repeat; default split: the id's last part), "
            "e.g. beir/scifact/test. Needs irtune[ir-datasets].",
        ),
    ] = None,
    id_col: Annotated[str | None, typer.Option(help="Corpus id column (same as --col id=NAME).")] = None,
    text_col: Annotated[str | None, typer.Option(help="Corpus text column (--col text=NAME).")] = None,
    title_col: Annotated[str | None, typer.Option(help="Corpus title column (--col title=NAME).")] = None,
    data_dir: DataDir = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of --data-dir/NAME.")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace the files an earlier import wrote (nothing else in the folder).")
    ] = False,
    drop_unknown_judgements: Annotated[
        bool,
        typer.Option(help="Drop judgements of documents not in the corpus (kept by default: count in R)."),
    ] = False,
) -> None:
    """Import your own files as a validated BEIR folder (with an import manifest)."""
    from irtune.data.beir import IMPORT_MANIFEST, load_qrels
    from irtune.data.import_manifest import qrels_summary

    columns = _columns(col or [], {"id": id_col, "text": text_col, "title": title_col})
    qrels_files = {split: Path(path) for split, path in key_values(qrels or [], "--qrels").items()}
    pairs_files = {split: Path(path) for split, path in split_items(pairs or [], "--pairs", "test").items()}
    dataset = api.import_data(
        name,
        corpus=corpus,
        queries=queries,
        qrels=qrels_files,
        pairs=pairs_files,
        columns=columns,
        ir_datasets=split_items(ir_datasets or [], "--ir-datasets", None),
        data_dir=data_dir,
        out=out_dir,
        force=force,
        drop_unknown_judgements=drop_unknown_judgements,
    )
    # the judgements as written: the import warned of those naming absent documents already
    summary = qrels_summary({s: load_qrels(dataset.qrels_path(s)) for s in dataset.splits()})
    splits = "; ".join(
        f"{s}: {v['queries']:,} queries, {v['relevant']:,} relevant" for s, v in summary.items()
    )
    out.print(
        f"{name}: {len(dataset.doc_ids):,} documents, {len(dataset.queries):,} queries"
        + (f"; {splits}" if splits else "")
    )
    out.print(f"wrote {dataset.root} (sources and what was dropped: {IMPORT_MANIFEST})")


def _columns(col: list[str], corpus_columns: dict[str, str | None]) -> dict[str, str]:
    """--col ROLE=COLUMN items plus the --id-col/--text-col/--title-col shorthands."""
    columns = key_values(col, "--col")
    for role, value in corpus_columns.items():
        if value is not None:
            if role in columns:
                raise IrtuneError(f"--{role}-col and --col {role}=... both name the {role} column")
            columns[role] = value
    return columns


def split_command(
    dataset: Annotated[list[str], typer.Option("-d", "--dataset", help="Name or BEIR folder (repeat).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for <dataset>.split.json files.")],
    data_dir: DataDir = None,
    seed: Annotated[int, typer.Option(help="Assignment seed.")] = 13,
    dev_fraction: Annotated[
        float, typer.Option(help="Share of training queries held out for selection.")
    ] = 0.2,
    eval_fraction: Annotated[
        float, typer.Option(help="Share of a test-only split kept for evaluation.")
    ] = 0.5,
    force: Annotated[
        bool, typer.Option("--force", help="Replace existing files that are not irtune's split of this plan.")
    ] = False,
) -> None:
    """Write deterministic, query-level train/dev/eval splits (JSON of query ids)."""
    from irtune.data.splits import LEFT_OUT_FOR_CLUSTERS

    written = api.split(
        dataset,
        out_dir=out_dir,
        data_dir=data_dir,
        seed=seed,
        dev_fraction=dev_fraction,
        eval_fraction=eval_fraction,
        force=force,
    )
    for done in written:
        plan = done.plan
        counts = plan.stats["queries"]
        sizes = ", ".join(
            f"{part}={plan.part(part).split}:{counts[part]}" for part in ("train", "dev", "eval")
        )
        shared = plan.stats["sharing_a_relevant_document_with_train"]
        out.print(f"{done.dataset}: {plan.method} ({sizes}) -> {done.path}")
        out.print(
            f"  {shared['eval']} of {counts['eval']} eval and {shared['dev']} of {counts['dev']} dev "
            "queries share a relevant document with a training query"
            + ("" if plan.train.query_ids is None else " (only duplicate queries are kept together)")
        )
        if left_out := {part: n for part, n in plan.stats[LEFT_OUT_FOR_CLUSTERS].items() if n}:
            moved = " and ".join(f"{n} {part}" for part, n in left_out.items())
            out.print(f"  left out {moved} queries sharing a duplicate cluster with an eval query")
