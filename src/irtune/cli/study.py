"""`irtune run`: a whole study from one TOML file, as resumable stages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from irtune import api
from irtune.cli.console import out
from irtune.cli.options import CacheDir, DataDir
from irtune.cli.results import print_comparisons


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
    outcome = api.run(config_file, data_dir=data_dir, cache_dir=cache_dir, force=force or [])
    print_comparisons(outcome.comparisons)
    out.print(f"report: {outcome.report} (Markdown: {outcome.report.with_suffix('.md')})")
