"""irtune's command line: a thin Typer layer over the library."""

from __future__ import annotations

import errno
import inspect
import logging
import os
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import click
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table
from typer.main import get_command

from irtune.cli.options import config_overrides, config_parameters
from irtune.core.allocator import reexec_with_mimalloc
from irtune.errors import IrtuneError, ParameterError
from irtune.retrieval.registry import retriever_names
from irtune.training.config import TrainConfig

if TYPE_CHECKING:
    from irtune.data.beir import BeirDataset

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Evaluate and honestly fine-tune embedding models for retrieval.",
)
data_app = typer.Typer(no_args_is_help=True, help="BEIR datasets: fetch and inspect.")
app.add_typer(data_app, name="data")
# Piped output (logs, CI) gets a wide fixed layout instead of rich's 80-column fallback.
out = Console(width=None if sys.stdout.isatty() else 160)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="IRTUNE_DATA_DIR", help="Folder holding BEIR datasets by name."),
]
CacheDir = Annotated[
    Path | None,
    typer.Option("--cache-dir", envvar="IRTUNE_CACHE_DIR", help="Embedding/mining cache folder."),
]
MlflowUri = Annotated[
    str | None,
    typer.Option(
        "--mlflow",
        help="MLflow tracking URI or folder: log this command's metrics there (experiment irtune).",
    ),
]


def _quiet_libraries() -> None:
    """Through the environment, read when transformers is imported (if it ever is: compare
    and report never import it, and must not pay seconds to quiet it)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@data_app.command("fetch")
def data_fetch(
    name: str,
    data_dir: DataDir = None,
    mirror: Annotated[str | None, typer.Option(help="Base URL or folder holding <name>.zip.")] = None,
    md5: Annotated[str | None, typer.Option(help="Expected md5 (overrides the known one).")] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected sha256.")] = None,
    force: Annotated[bool, typer.Option(help="Download again even if present.")] = False,
) -> None:
    """Download an official BEIR zip, verify its checksum, extract it safely."""
    from irtune.data.download import fetch_dataset
    from irtune.data.registry import default_data_dir

    target = fetch_dataset(name, data_dir or default_data_dir(), mirror, md5, sha256, force)
    out.print(f"{name}: {target}")


@data_app.command("info")
def data_info(
    name: str,
    data_dir: DataDir = None,
    strict: Annotated[bool, typer.Option(help="Unknown ids in qrels are errors.")] = False,
) -> None:
    """Counts per split, relevance grades and text lengths of a dataset."""
    from irtune.data.info import dataset_info

    info = dataset_info(_dataset(name, data_dir, strict))
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
    table = Table("split", "queries", "judged pairs", "relevant pairs", "rel/query", "grades")
    for split, s in info["splits"].items():
        grades = ", ".join(f"{g}: {n:,}" for g, n in s["grades"].items())
        table.add_row(
            f"{split} (generated: train/select only)" if s["synthetic"] else split,
            f"{s['queries']:,}",
            f"{s['pairs']:,}",
            f"{s['relevant_pairs']:,}",
            f"{s['relevant_per_query']:.1f}",
            grades,
        )
    out.print(table)


@data_app.command("import")
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
    from irtune.api import import_data
    from irtune.data.beir import load_qrels
    from irtune.data.importer import IMPORT_MANIFEST, qrels_summary

    columns = _key_values(col or [], "--col")
    for role, value in (("id", id_col), ("text", text_col), ("title", title_col)):
        if value is not None:
            if role in columns:
                raise IrtuneError(f"--{role}-col and --col {role}=... both name the {role} column")
            columns[role] = value
    qrels_files = {split: Path(path) for split, path in _key_values(qrels or [], "--qrels").items()}
    pairs_files = {split: Path(path) for split, path in _split_items(pairs or [], "--pairs", "test").items()}
    ir_ids = _split_items(ir_datasets or [], "--ir-datasets", None)
    dataset = import_data(
        name,
        corpus=corpus,
        queries=queries,
        qrels=qrels_files,
        pairs=pairs_files,
        columns=columns,
        ir_datasets=ir_ids,
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


def _dataset(name: str, data_dir: Path | None, strict: bool = False) -> BeirDataset:
    from irtune.api import load_dataset

    return load_dataset(name, data_dir=data_dir, strict=strict)


@app.command("eval")
def eval_command(
    dataset: Annotated[list[str], typer.Option("-d", "--dataset", help="Name or BEIR folder (repeat).")],
    model: Annotated[str | None, typer.Option("-m", "--model", help="minilm, a hub id or a folder.")] = None,
    split: Annotated[str, typer.Option(help="Qrels split to evaluate.")] = "test",
    retriever: Annotated[str, typer.Option(help=f"One of {', '.join(retriever_names())}.")] = "dense",
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write results.json and run files here.")
    ] = None,
    heldout: Annotated[
        list[Path] | None,
        typer.Option(
            "--split-file", help="Evaluate only the `eval` queries of this irtune split file (repeat)."
        ),
    ] = None,
    data_dir: DataDir = None,
    cache_dir: CacheDir = None,
    query_prompt: Annotated[str | None, typer.Option(help="Override the query prompt.")] = None,
    doc_prompt: Annotated[str | None, typer.Option(help="Override the document prompt.")] = None,
    max_seq_length: Annotated[int | None, typer.Option(help="Override the model's max length.")] = None,
    batch_size: Annotated[int, typer.Option(help="Encoding batch size.")] = 32,
    precision: Annotated[str, typer.Option(help="fp32, bf16 or fp16 (autocast).")] = "fp32",
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: best).")] = None,
    top_k: Annotated[int, typer.Option(help="Documents kept per query.")] = 1000,
    keep_identical_ids: Annotated[
        bool, typer.Option(help="Keep a retrieved doc whose id equals the query id.")
    ] = False,
    strict: Annotated[bool, typer.Option(help="Unknown ids in qrels are errors.")] = False,
    label: Annotated[str | None, typer.Option(help="Name of this run in reports.")] = None,
    index: Annotated[str, typer.Option(help="exact (default), flat, ivf or hnsw (FAISS).")] = "exact",
    index_param: Annotated[
        list[str] | None,
        typer.Option(help="FAISS parameter KEY=VALUE (repeat): nlist, nprobe, m, ef_search, ..."),
    ] = None,
    store_dtype: Annotated[str, typer.Option(help="Embedding cache dtype: float32 or float16.")] = "float32",
    devices: Annotated[
        str | None,
        typer.Option(help="Encode the corpus with a multi-process pool, e.g. cuda:0,cuda:1 or cpu,cpu."),
    ] = None,
    dims: Annotated[
        str | None,
        typer.Option(
            help="Keep the first N embedding dimensions, renormalised (from the cache); several "
            "(384,256,128) evaluate each and compare it with full precision."
        ),
    ] = None,
    quantize: Annotated[
        str,
        typer.Option(
            help="Document vectors as none, int8 or ubinary (from the cache); several (none,int8) "
            "evaluate each."
        ),
    ] = "none",
    rescore: Annotated[
        int, typer.Option(help="ubinary: rescore the top N x k candidates with the float query.")
    ] = 1,
    backend: Annotated[
        str,
        typer.Option(
            help="What encodes on the CPU: torch, onnx, onnx-int8 (dynamic), openvino or openvino-int8 "
            "(static, calibrated on the corpus); exports are cached beside the embedding cache."
        ),
    ] = "torch",
    mlflow: MlflowUri = None,
    force: Annotated[
        bool, typer.Option(help="Replace the results of another evaluation (other setup) in --out.")
    ] = False,
) -> None:
    """Evaluate a model (or BM25) on datasets and print NDCG@10/100, MAP@100, Recall@100."""
    from irtune.api import evaluate, frontier
    from irtune.results.tracking import Tracking, log_results

    tracking = Tracking(mlflow=mlflow)
    tracking.check()  # before the model loads

    sizes = _whole_numbers(dims, "--dims") if dims else []
    kinds = [k.strip() for k in quantize.split(",")]
    common: dict[str, Any] = {
        "device": device,
        "max_seq_length": max_seq_length,
        "query_prompt": query_prompt,
        "doc_prompt": doc_prompt,
        "out_dir": out_dir,
        "split_files": heldout or [],
        "data_dir": data_dir,
        "label": label,
        "strict": strict,
        "split": split,
        "retriever": retriever,
        "batch_size": batch_size,
        "precision": precision,
        "top_k": top_k,
        "ignore_identical_ids": not keep_identical_ids,
        "cache_dir": cache_dir,
        "index": index,
        "index_params": _key_numbers(index_param or []),
        "store_dtype": store_dtype,
        "devices": tuple(d.strip() for d in devices.split(",")) if devices else (),
        "backend": backend,
        "force": force,
    }
    if len(sizes) > 1 or len(kinds) > 1:
        if model is None:
            raise IrtuneError(
                "several --dims/--quantize settings need a model: -m minilm, a hub id or a folder"
            )
        swept = frontier(model, dataset, dims=sizes, quantize=kinds, rescore=rescore, **common)
        from irtune.reporting.tables import frontier_table

        out.print(frontier_table(swept))
        for run in swept.runs.values():
            log_results(tracking, run)
        if out_dir is not None:
            count = len(swept.runs)
            out.print(f"wrote {out_dir / 'frontier.json'} and SETTING/results.json for {count} settings")
        return
    result = evaluate(
        model, dataset, dims=sizes[0] if sizes else None, quantize=kinds[0], rescore=rescore, **common
    )
    from irtune.reporting.tables import results_table

    out.print(results_table(result))
    if out_dir is not None:
        out.print(f"wrote {out_dir / 'results.json'}")
    if run_id := log_results(tracking, result, out_dir / "results.json" if out_dir else None):
        out.print(f"logged to MLflow run {run_id}", markup=False, highlight=False)


@app.command("generate")
def generate_command(
    dataset: Annotated[str, typer.Option("-d", "--dataset", help="Dataset name or BEIR folder.")],
    generator: Annotated[
        str,
        typer.Option(
            help="openai:URL (an OpenAI-compatible endpoint, with --model) or hf:ID_OR_PATH (a model in "
            "this process; .gguf files too; hf:gemma3-270m is bundled with irtune[gemma])."
        ),
    ],
    model: Annotated[str | None, typer.Option("--model", help="The endpoint's model name (openai:).")] = None,
    sample: Annotated[int | None, typer.Option(help="Generate for a seeded sample of N documents.")] = None,
    seed: Annotated[int, typer.Option(help="Sample and few-shot seed.")] = 13,
    domain: Annotated[
        str, typer.Option(help="Prompt template without examples: general or scientific.")
    ] = "general",
    few_shot: Annotated[int, typer.Option(help="Real training pairs shown as examples, if any.")] = 3,
    prompt_file: Annotated[
        Path | None, typer.Option(help="Prompt text with {document} (and optionally {examples}).")
    ] = None,
    round_trip_k: Annotated[
        int, typer.Option(help="Keep a query only if its document is in the base model's top k (0: off).")
    ] = 10,
    base_model: Annotated[str, typer.Option(help="Model for the round-trip filter.")] = "minilm",
    min_words: Annotated[int, typer.Option(help="Shortest query kept.")] = 3,
    max_words: Annotated[int, typer.Option(help="Longest query kept.")] = 40,
    batch_size: Annotated[int, typer.Option(help="Prompts per batch (hf:).")] = 8,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens generated per query.")] = 32,
    device: Annotated[str | None, typer.Option(help="Device of an hf: generator.")] = None,
    api: Annotated[
        str, typer.Option(help="chat or completions (openai:; completions for base models).")
    ] = "chat",
    concurrency: Annotated[int, typer.Option(help="Parallel requests (openai:).")] = 4,
    timeout: Annotated[
        float, typer.Option(help="Deadline per request in seconds: connecting and every read (openai:).")
    ] = 60.0,
    retries: Annotated[int, typer.Option(help="Retries per request with backoff (openai:).")] = 5,
    api_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the API key (never logged).")
    ] = "OPENAI_API_KEY",
    precision: Annotated[str, typer.Option(help="Precision of the round-trip encoding.")] = "fp32",
    restart: Annotated[
        bool, typer.Option(help="Generate every document again instead of resuming from the journal.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            help="Replace a generated split made with other settings (deleting the journals of other "
            "settings: their paid replies)."
        ),
    ] = False,
    data_dir: DataDir = None,
    cache_dir: CacheDir = None,
) -> None:
    """Generate synthetic queries for a corpus (its `synthetic` split: for training and
    selection, never for reported numbers). Resumes where an interrupted run stopped."""
    from irtune.api import generate_queries
    from irtune.data.beir import SYNTHETIC_MANIFEST
    from irtune.generation.filters import FilterSettings

    ds = _dataset(dataset, data_dir)
    manifest = generate_queries(
        ds,
        generator,
        generator_model=model,
        base_model=base_model,
        cache_dir=cache_dir,
        precision=precision,
        openai_settings={
            "api": api,
            "concurrency": concurrency,
            "timeout_s": timeout,
            "max_retries": retries,
            "api_key_env": api_key_env,
            "max_tokens": max_new_tokens,
        },
        hf_settings={"batch_size": batch_size, "max_new_tokens": max_new_tokens, "device": device},
        sample=sample,
        seed=seed,
        few_shot=few_shot,
        domain=domain,
        prompt_file=prompt_file,
        round_trip_k=round_trip_k,
        filters=FilterSettings(min_words, max_words),
        restart=restart,
        force=force,
    )
    reasons = ", ".join(f"{reason}: {n:,}" for reason, n in manifest.dropped.items()) or "none"
    out.print(
        f"{ds.name}: kept {manifest.kept:,} of {manifest.documents:,} generated queries "
        f"({manifest.keep_rate:.0%}); dropped: {reasons}"
    )
    out.print(
        f"wrote the synthetic split: train with --train {ds.name}:synthetic ({ds.root / SYNTHETIC_MANIFEST})"
    )


@app.command("split")
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
    from irtune.core import checks
    from irtune.data.splits import LEFT_OUT_FOR_CLUSTERS, check_plan_file, make_plan, save_plan

    checks.output_folder("out_dir", out_dir)
    planned = []
    for name in dataset:  # every file is checked before any is written
        ds = _dataset(name, data_dir)
        plan = make_plan(ds, seed, dev_fraction, eval_fraction)
        path = out_dir / f"{ds.name}.split.json"
        check_plan_file(plan, path, force=force)
        planned.append((ds, plan, path))
    for ds, plan, path in planned:
        save_plan(plan, path)
        counts = plan.stats["queries"]
        sizes = ", ".join(
            f"{part}={plan.part(part).split}:{counts[part]}" for part in ("train", "dev", "eval")
        )
        shared = plan.stats["sharing_a_relevant_document_with_train"]
        out.print(f"{ds.name}: {plan.method} ({sizes}) -> {path}")
        out.print(
            f"  {shared['eval']} of {counts['eval']} eval and {shared['dev']} of {counts['dev']} dev "
            "queries share a relevant document with a training query"
            + ("" if plan.train.query_ids is None else " (only duplicate queries are kept together)")
        )
        if left_out := {part: n for part, n in plan.stats[LEFT_OUT_FOR_CLUSTERS].items() if n}:
            moved = " and ".join(f"{n} {part}" for part, n in left_out.items())
            out.print(f"  left out {moved} queries sharing a duplicate cluster with an eval query")


def train_command(
    model: Annotated[str, typer.Option("-m", "--model", help="Base model: minilm, a hub id or a folder.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the fine-tuned model.")],
    train: Annotated[
        list[str] | None,
        typer.Option(
            "--train", help="DATASET[:SPLIT] to train on (repeat); default split: the honest plan's."
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(help="general (4 datasets), scientific (scifact+nfcorpus+scidocs) or a dataset name."),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="TOML file of training options (flags below override it)."),
    ] = None,
    split_file: Annotated[
        list[Path] | None, typer.Option(help="irtune split file(s) to use instead of the default plan.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    data_dir: DataDir = None,
    cache_dir: CacheDir = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda ...")] = None,
    query_prompt: Annotated[str | None, typer.Option(help="Override the query prompt.")] = None,
    doc_prompt: Annotated[str | None, typer.Option(help="Override the document prompt.")] = None,
    report_to: Annotated[
        str | None,
        typer.Option(help="Training trackers, comma-separated: tensorboard (MODEL/runs), mlflow, wandb."),
    ] = None,
    mlflow: MlflowUri = None,
    **options: Any,
) -> None:
    """Fine-tune on honest splits, select on dev, interpolate, save the model. Every
    training option is a flag (--epochs 3, --loss gist, --hard-negatives, ...)."""
    from irtune.api import train as train_model
    from irtune.core.configs import read_toml, validated

    values = read_toml(config_file) if config_file else {}
    values.update(config_overrides(TrainConfig, options))
    config = validated(TrainConfig, values, str(config_file or "options"))
    path = train_model(
        model,
        [*(train or []), *([preset] if preset else [])],
        out_dir=out_dir,
        config=config,
        split_files=split_file or [],
        data_dir=data_dir,
        cache_dir=cache_dir,
        resume=resume,
        device=device,
        query_prompt=query_prompt,
        doc_prompt=doc_prompt,
        tracking={
            "report_to": [t.strip() for t in report_to.split(",") if t.strip()] if report_to else [],
            "mlflow": mlflow,
        },
    )
    out.print(f"model written to {path}")


def _with_config_flags(command: Any, config: type[BaseModel]) -> Any:
    """The command with one flag per config field added to its signature (Typer reads it)."""
    signature = inspect.signature(command, eval_str=True)
    fixed = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    command.__signature__ = signature.replace(parameters=[*fixed, *config_parameters(config)])
    return command


app.command("train")(_with_config_flags(train_command, TrainConfig))


@app.command("compare")
def compare_command(
    results: Annotated[list[Path], typer.Argument(help="results.json files (or their folders).")],
    baseline: Annotated[
        Path | None,
        typer.Option(
            help="Baseline results (default: the sweep's baseline for the settings of one frontier sweep, "
            "else the first given)."
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the comparison as JSON.")
    ] = None,
    mlflow: MlflowUri = None,
) -> None:
    """Baseline vs candidates per dataset: change, 95% CI, paired test (Holm), W/T/L."""
    from irtune.core import checks
    from irtune.core.files import write_json_atomic
    from irtune.reporting.seeds import seeds_table
    from irtune.reporting.tables import comparison_table
    from irtune.results.compare import load_comparisons
    from irtune.results.tracking import Tracking, log_comparisons

    checks.output_file("json_out", json_out)
    tracking = Tracking(mlflow=mlflow)
    tracking.check()
    comparisons, _ = load_comparisons(results, baseline)
    for comparison in comparisons:
        out.print(comparison_table(comparison))
        if comparison.seeds is not None:
            out.print(seeds_table(comparison, comparison.seeds))
    if json_out:
        write_json_atomic(json_out, [c.to_json() for c in comparisons])
    if run_id := log_comparisons(tracking, comparisons, json_out):
        out.print(f"logged to MLflow run {run_id}", markup=False, highlight=False)


@app.command("report")
def report_command(
    results: Annotated[list[Path], typer.Argument(help="results.json files (or their folders).")],
    out_path: Annotated[
        Path, typer.Option("--out", help="HTML file to write (Markdown goes next to it).")
    ] = Path("report.html"),
    baseline: Annotated[
        Path | None,
        typer.Option(
            help="Baseline results (default: the sweep's baseline for the settings of one frontier sweep, "
            "else the first given)."
        ),
    ] = None,
    data_dir: DataDir = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace existing files that are not reports irtune wrote.")
    ] = False,
) -> None:
    """Self-contained HTML report (tables, charts, per-query analysis, provenance) plus Markdown tables."""
    from irtune.reporting.files import write_report

    html_path, md_path, _ = write_report(results, out_path, baseline, data_dir, force)
    out.print(f"wrote {html_path} and {md_path}")


@app.command("inspect")
def inspect_command(
    baseline: Annotated[Path, typer.Argument(help="Baseline results.json (or its folder).")],
    candidate: Annotated[Path, typer.Argument(help="Candidate results.json (or its folder).")],
    query: Annotated[str | None, typer.Option(help="Show this query's rankings (a query id).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Which queries moved: those that gained and lost most with their rankings, and slices."""
    from irtune.api import inspect as inspect_queries
    from irtune.reporting.queries_console import inspect_view

    for part in inspect_view(inspect_queries(baseline, candidate, query=query, data_dir=data_dir), query):
        out.print(part)


@app.command("export")
def export_command(
    results: Annotated[Path, typer.Argument(help="A results.json file (or its folder).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write MODEL/REVISION/TASK.json under.")],
    format_: Annotated[str, typer.Option("--format", help="mteb: MTEB task-result JSON.")] = "mteb",
    model_name: Annotated[
        str | None, typer.Option(help="Model name for the folder (default: the results' model).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace task results irtune did not export.")
    ] = False,
) -> None:
    """Write a results file in another tool's format (MTEB), to sit beside its numbers."""
    from irtune.core import checks
    from irtune.results.mteb import export_mteb

    if format_ != "mteb":
        raise IrtuneError(f"--format {format_}: only mteb is supported")
    checks.output_folder("out_dir", out_dir)
    for path in export_mteb(results, out_dir, model_name, force=force):
        out.print(f"wrote {path}", markup=False, highlight=False)


@app.command("push")
def push_command(
    model_dir: Annotated[Path, typer.Argument(help="A model folder written by irtune train / run.")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="Hub repo to upload to (OWNER/NAME).")],
    results: Annotated[
        list[Path] | None,
        typer.Option("--results", help="Its test results.json: added to the card's model-index (repeat)."),
    ] = None,
    private: Annotated[bool, typer.Option(help="Create the repo private.")] = False,
) -> None:
    """Upload a fine-tuned model to the Hugging Face Hub (token from HF_TOKEN, never printed)."""
    from irtune.training.push import push_model

    url = push_model(model_dir, repo_id, results=results or [], private=private)
    out.print(f"pushed {model_dir} to {repo_id}: {url}", markup=False, highlight=False)


@app.command("run")
def run_command(
    config_file: Annotated[Path, typer.Argument(help="Study configuration (TOML).")],
    force: Annotated[
        list[str] | None,
        typer.Option(help="Redo this stage (repeatable), e.g. baseline or train:scientific."),
    ] = None,
    data_dir: DataDir = None,
    cache_dir: CacheDir = None,
) -> None:
    """The whole study: baselines, fine-tuning, evaluation, comparison, report; resumable."""
    from irtune.reporting.seeds import seeds_table
    from irtune.reporting.tables import comparison_table
    from irtune.study.runner import load_study, run_study

    study = load_study(config_file, data_dir)
    report, comparisons = run_study(study, data_dir=data_dir, cache_dir=cache_dir, force=force or [])
    for comparison in comparisons:
        out.print(comparison_table(comparison))
        if comparison.seeds is not None:
            out.print(seeds_table(comparison, comparison.seeds))
    out.print(f"report: {report} (Markdown: {report.with_suffix('.md')})")


def _split_items(items: list[str], option: str, default: str | None) -> dict[str, str]:
    """[SPLIT=]VALUE items -> {split: value}; without a split: `default`, else the value's
    last '/' part (an ir_datasets id such as beir/scifact/test)."""
    found: dict[str, str] = {}
    for item in items:
        split, sep, value = item.partition("=")
        if not sep:
            value = item
            split = default or item.rstrip("/").rsplit("/", 1)[-1]
        split, value = split.strip(), value.strip()
        if not split or not value:
            raise IrtuneError(f"{option} {item!r}: expected [SPLIT=]VALUE")
        if split in found:
            raise IrtuneError(f"{option}: split {split!r} is given twice")
        found[split] = value
    return found


def _whole_numbers(text: str, option: str) -> list[int]:
    """'384,256,128' -> [384, 256, 128]."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise IrtuneError(f"{option} must be whole numbers separated by commas, not {text!r}") from None


def _key_numbers(items: list[str]) -> dict[str, int]:
    params: dict[str, int] = {}
    for key, value in _key_values(items, "--index-param").items():
        try:
            params[key] = int(value)
        except ValueError:
            raise IrtuneError(f"--index-param {key}={value}: must be a whole number") from None
    return params


def _key_values(items: list[str], option: str) -> dict[str, str]:
    """KEY=VALUE items -> {key: value}; a missing `=`, an empty key or a repeated key is an error."""
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise IrtuneError(f"{option} {item!r}: expected KEY=VALUE")
        if key in found:
            raise IrtuneError(f"{option}: {key!r} is given twice")
        found[key] = value.strip()
    return found


def _click_errors() -> tuple[type[click.ClickException], ...]:
    """Usage-error classes: typer raises those of its bundled click (`typer._click`, pinned
    in pyproject), commands built on plain click raise click's own. Both have `show()` and
    `exit_code`; the bundled one is typed here as click's."""
    bundled = getattr(typer, "_click", click)
    return tuple({click.ClickException, bundled.ClickException})


# failures of the machine, not of irtune: disk full, quota, file size limit, read-only or
# forbidden paths. One line naming the path, exit 1; other OS errors are bugs and show a traceback.
ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}
)


# API parameters that commands spell otherwise: the names of the command parameters that set them
COMMAND_PARAMETERS = {
    "datasets": ("dataset", "train"),
    "name_or_path": ("dataset",),
    "split_files": ("heldout", "split_file"),
    "index_params": ("index_param",),
    "out": ("out_dir", "out_path"),
    "columns": ("col",),
    "generator_model": ("model",),
}


def flag_names(args: list[str]) -> Callable[[str], str]:
    """parameter -> the flag of the command in `args` that sets it (`batch_size` -> `--batch-size`,
    `out_dir` -> `--out`), so that library errors, which name parameters, name what the user
    typed; a parameter no flag sets keeps its name (a study's keys in `irtune run`)."""
    command: Any = get_command(app)
    for word in args:
        if word not in getattr(command, "commands", {}):
            break
        command = command.commands[word]
    flags = {
        param.name: max((o for o in param.opts if o.startswith("--")), key=len)
        for param in getattr(command, "params", [])
        if param.param_type_name == "option" and any(o.startswith("--") for o in param.opts)
    }

    def flag(parameter: str) -> str:
        found = (flags[n] for n in (parameter, *COMMAND_PARAMETERS.get(parameter, ())) if n in flags)
        return next(found, parameter)

    return flag


def _print_error(console: Console, message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


# commands that train or encode: they run under mimalloc (irtune.core.allocator)
HEAVY_COMMANDS = frozenset({"run", "train", "eval", "generate"})


_terminated = False  # SIGTERM arrived (else a stop is Ctrl-C)


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM (kill, a scheduler's time limit) unwinds like Ctrl-C: the folders a command
    created and left empty are removed, and it says so in one line."""
    global _terminated
    _terminated = True
    raise KeyboardInterrupt


def _resume_hint(args: list[str]) -> str:
    """`train` continues an unfinished --out only when told to (its state does not record the
    options it ran with): the hint is the exact command that resumes it."""
    if args[:1] == ["train"] and "--resume" not in args:
        return f"resume with: irtune {shlex.join([*args, '--resume'])}"
    return "re-run the same command to resume"


def _stopped(stderr: Console) -> NoReturn:
    word, code = ("terminated", 143) if _terminated else ("interrupted", 130)
    stderr.print(
        f"{word}: finished work (cached embeddings, completed stages and epochs) is kept; "
        + escape(_resume_hint(sys.argv[1:])),
        highlight=False,
        soft_wrap=True,
    )
    sys.exit(code)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in HEAVY_COMMANDS:
        reexec_with_mimalloc()
    # irtune's own progress messages (stages, epochs, selection) at INFO; other libraries' warnings
    handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=False, level=logging.INFO)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler])
    logging.getLogger("irtune").setLevel(logging.INFO)
    _quiet_libraries()
    stderr = Console(stderr=True)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = app(standalone_mode=False)  # typer turns Ctrl-C into the exit code 130
    except ParameterError as exc:
        _print_error(stderr, exc.naming(flag_names(sys.argv[1:])))
        sys.exit(2)
    except IrtuneError as exc:
        _print_error(stderr, str(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        _stopped(stderr)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:  # end of input at a prompt
        sys.exit(1)
    except _click_errors() as exc:
        exc.show()  # the usage line and one "Error:" line
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.errno not in ENVIRONMENT_ERRNOS:
            raise
        where = escape(f"{exc.filename}: ") if exc.filename else ""
        stderr.print(
            f"[bold red]error:[/] {where}{exc.strerror}; nothing half-written was kept: free space "
            "(or fix the permissions) and re-run to resume",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
    if code == 130:
        _stopped(stderr)
    if isinstance(code, int) and code:
        sys.exit(code)
