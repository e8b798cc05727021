"""`irtune train` (every training option a flag, from TrainConfig) and `irtune push`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from irtune import api
from irtune.cli.console import out
from irtune.cli.options import CacheDir, DataDir, MlflowUri, config_overrides, with_config_flags
from irtune.training.config import TrainConfig


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
    from irtune.core.configs import read_toml, validated

    values = read_toml(config_file) if config_file else {}
    values.update(config_overrides(TrainConfig, options))
    config = validated(TrainConfig, values, str(config_file or "options"))
    path = api.train(
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


with_config_flags(train_command, TrainConfig)  # one flag per field: --epochs, --loss, ...


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
    url = api.push(model_dir, repo_id=repo_id, results=results or [], private=private)
    out.print(f"pushed {model_dir} to {repo_id}: {url}", markup=False, highlight=False)
