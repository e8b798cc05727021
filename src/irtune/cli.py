"""irtune's command line: a thin Typer layer over the library."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from irtune.errors import IrtuneError

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


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


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
    )
    table = Table("split", "queries", "judged pairs", "relevant pairs", "rel/query", "grades")
    for split, s in info["splits"].items():
        grades = ", ".join(f"{g}: {n:,}" for g, n in s["grades"].items())
        table.add_row(
            split,
            f"{s['queries']:,}",
            f"{s['pairs']:,}",
            f"{s['relevant_pairs']:,}",
            f"{s['relevant_per_query']:.1f}",
            grades,
        )
    out.print(table)


def _dataset(name: str, data_dir: Path | None, strict: bool = False):
    from irtune.data.registry import resolve_dataset

    return resolve_dataset(name, data_dir, strict)


@app.command("eval")
def eval_command(
    dataset: Annotated[list[str], typer.Option("-d", "--dataset", help="Name or BEIR folder (repeat).")],
    model: Annotated[str | None, typer.Option("-m", "--model", help="minilm, a hub id or a folder.")] = None,
    split: Annotated[str, typer.Option(help="Qrels split to evaluate.")] = "test",
    retriever: Annotated[str, typer.Option(help="dense or bm25.")] = "dense",
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
) -> None:
    """Evaluate a model (or BM25) on datasets and print NDCG@10/100, MAP@100, Recall@100."""
    from irtune.evaluate import EvalSettings
    from irtune.models import ModelOptions
    from irtune.workflows import run_evaluation

    settings = EvalSettings(
        split=split,
        retriever=retriever,
        batch_size=batch_size,
        precision=precision,
        top_k=top_k,
        ignore_identical_ids=not keep_identical_ids,
        cache_dir=cache_dir,
        index=index,
        index_params=_key_values(index_param or []),
        store_dtype=store_dtype,
        devices=tuple(d.strip() for d in devices.split(",")) if devices else (),
    )
    options = ModelOptions(device, max_seq_length, query_prompt, doc_prompt)
    result = run_evaluation(
        model, dataset, settings, options, out_dir, heldout or [], data_dir, strict, label
    )
    from irtune.report.tables import results_table

    out.print(results_table(result))
    if out_dir is not None:
        out.print(f"wrote {out_dir / 'results.json'}")


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
) -> None:
    """Write deterministic, query-level train/dev/eval splits (JSON of query ids)."""
    from irtune.data.splits import make_plan, save_plan

    for name in dataset:
        ds = _dataset(name, data_dir)
        plan = make_plan(ds, seed, dev_fraction, eval_fraction)
        path = out_dir / f"{ds.name}.split.json"
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


@app.command("train")
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
        Path | None, typer.Option("--config", help="TOML file of training options.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default 5).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default 32).")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="Learning rate (default 1e-5).")] = None,
    warmup_steps: Annotated[
        int | None, typer.Option(help="Warmup steps (default 500, capped at 10% of steps).")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps in total.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    loss: Annotated[str | None, typer.Option(help="mnrl, cached_mnrl, gist or cached_gist.")] = None,
    hard_negatives: Annotated[
        bool | None, typer.Option(help="Mine hard negatives with the base model.")
    ] = None,
    max_positives_per_query: Annotated[
        int | None, typer.Option(help="Per-epoch cap of positives per query.")
    ] = None,
    protocol: Annotated[
        str | None, typer.Option(help="honest (default) or seed (the published study's splits; marked).")
    ] = None,
    allow_leakage: Annotated[
        bool, typer.Option(help="Train even on evaluated queries (results marked contaminated).")
    ] = False,
    split_file: Annotated[
        list[Path] | None, typer.Option(help="irtune split file(s) to use instead of the default plan.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    data_dir: DataDir = None,
    cache_dir: CacheDir = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda ...")] = None,
    query_prompt: Annotated[str | None, typer.Option(help="Override the query prompt.")] = None,
    doc_prompt: Annotated[str | None, typer.Option(help="Override the document prompt.")] = None,
) -> None:
    """Fine-tune with MNRL on honest splits, select on dev, interpolate, save the model."""
    from irtune.models import ModelOptions
    from irtune.train.config import TrainConfig
    from irtune.train.plan import expand_presets
    from irtune.train.trainer import train_model

    options = _toml(config_file) if config_file else {}
    overrides = {
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "warmup_steps": warmup_steps,
        "max_steps": max_steps,
        "seed": seed,
        "loss": loss,
        "hard_negatives": hard_negatives,
        "max_positives_per_query": max_positives_per_query,
        "protocol": protocol,
        "allow_leakage": allow_leakage or None,
    }
    options.update({k: v for k, v in overrides.items() if v is not None})
    config = _validated(TrainConfig, options, str(config_file or "options"))
    specs = expand_presets([*(train or []), *([preset] if preset else [])])
    options = ModelOptions(device, None, query_prompt, doc_prompt)
    path = train_model(model, specs, out_dir, config, data_dir, cache_dir, split_file or [], resume, options)
    out.print(f"model written to {path}")


@app.command("compare")
def compare_command(
    results: Annotated[list[Path], typer.Argument(help="results.json files (or their folders).")],
    baseline: Annotated[
        Path | None, typer.Option(help="Baseline results (default: the first given).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the comparison as JSON.")
    ] = None,
) -> None:
    """Baseline vs candidates per dataset: change, 95% CI, paired test (Holm), W/T/L."""
    from irtune.fileio import write_json_atomic
    from irtune.report.tables import comparison_table
    from irtune.workflows import load_comparisons

    comparisons, _ = load_comparisons(results, baseline)
    for comparison in comparisons:
        out.print(comparison_table(comparison))
    if json_out:
        write_json_atomic(json_out, [c.to_json() for c in comparisons])


@app.command("report")
def report_command(
    results: Annotated[list[Path], typer.Argument(help="results.json files (or their folders).")],
    out_path: Annotated[
        Path, typer.Option("--out", help="HTML file to write (Markdown goes next to it).")
    ] = Path("report.html"),
    baseline: Annotated[
        Path | None, typer.Option(help="Baseline results (default: the first given).")
    ] = None,
) -> None:
    """Self-contained HTML report (tables, charts, provenance) plus Markdown tables."""
    from irtune.workflows import write_report

    html_path, md_path, _ = write_report(results, out_path, baseline)
    out.print(f"wrote {html_path} and {md_path}")


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
    from irtune.pipeline import load_study, run_study
    from irtune.report.tables import comparison_table

    study = load_study(config_file)
    report, comparisons = run_study(study, data_dir=data_dir, cache_dir=cache_dir, force=force or [])
    for comparison in comparisons:
        out.print(comparison_table(comparison))
    out.print(f"report: {report} (Markdown: {report.with_suffix('.md')})")


def _key_values(items: list[str]) -> dict[str, float | int]:
    params: dict[str, float | int] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            params[key.strip()] = float(value) if "." in value else int(value)
        except ValueError:
            raise IrtuneError(f"--index-param {item!r}: expected KEY=NUMBER") from None
        if not sep:
            raise IrtuneError(f"--index-param {item!r}: expected KEY=NUMBER")
    return params


def _toml(path: Path) -> dict:
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IrtuneError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise IrtuneError(f"{path}: invalid TOML ({exc})") from None


def _validated(model_cls, data: dict, source: str):
    from irtune.config_errors import validated

    return validated(model_cls, data, source)


def _click_errors() -> tuple[type[Exception], ...]:
    """Usage-error classes: typer raises those of its bundled click (`typer._click`, pinned
    in pyproject), commands built on plain click raise click's own."""
    import click

    bundled = getattr(typer, "_click", click)
    return tuple({click.ClickException, bundled.ClickException})


def main() -> None:
    handler = RichHandler(console=Console(stderr=True), show_path=False, level=logging.WARNING)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler])
    _quiet_libraries()
    stderr = Console(stderr=True)
    interrupted = (
        "interrupted: finished work (cached embeddings, completed stages and epochs) is kept; "
        "re-run the same command to resume"
    )
    try:
        code = app(standalone_mode=False)  # typer turns Ctrl-C into the exit code 130
    except IrtuneError as exc:
        stderr.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        stderr.print(interrupted, highlight=False, soft_wrap=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:  # end of input at a prompt
        sys.exit(1)
    except _click_errors() as exc:
        exc.show()  # the usage line and one "Error:" line
        sys.exit(exc.exit_code)
    if code == 130:
        stderr.print(interrupted, highlight=False, soft_wrap=True)
    if isinstance(code, int) and code:
        sys.exit(code)
