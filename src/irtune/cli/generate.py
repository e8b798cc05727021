"""`irtune generate`: synthetic queries for a corpus, filtered, as its `synthetic` split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from irtune.cli.console import out
from irtune.cli.options import CacheDir, DataDir


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
    from irtune.api import generate_queries, load_dataset  # a module name: `api` is a flag here
    from irtune.data.beir import SYNTHETIC_MANIFEST
    from irtune.generation.filters import FilterSettings

    ds = load_dataset(dataset, data_dir=data_dir)
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
