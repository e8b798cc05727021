"""Commands over results files: `irtune compare`, `report`, `inspect` and `export`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from irtune import api
from irtune.cli.console import out
from irtune.cli.options import Baseline, DataDir, MlflowUri

if TYPE_CHECKING:
    from irtune.results.compare import Comparison


def print_comparisons(comparisons: Sequence[Comparison]) -> None:
    """Each comparison's table, and its seeds' table when the runs were repeated over seeds."""
    from irtune.reporting.seeds import seeds_table
    from irtune.reporting.tables import comparison_table

    for comparison in comparisons:
        out.print(comparison_table(comparison))
        if comparison.seeds is not None:
            out.print(seeds_table(comparison, comparison.seeds))


def compare_command(
    results: Annotated[list[Path], typer.Argument(help="results.json files (or their folders).")],
    baseline: Baseline = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the comparison as JSON.")
    ] = None,
    mlflow: MlflowUri = None,
) -> None:
    """Baseline vs candidates per dataset: change, 95% CI, paired test (Holm), W/T/L."""
    from irtune.core.checks import output_file
    from irtune.core.files import write_json_atomic
    from irtune.results.compare import load_comparisons
    from irtune.results.tracking import Tracking, log_comparisons

    output_file("json_out", json_out)
    tracking = Tracking(mlflow=mlflow)
    tracking.check()
    comparisons, _ = load_comparisons(results, baseline)
    print_comparisons(comparisons)
    if json_out:
        write_json_atomic(json_out, [c.to_json() for c in comparisons])
    if run_id := log_comparisons(tracking, comparisons, json_out):
        out.print(f"logged to MLflow run {run_id}", markup=False, highlight=False)


def report_command(
    results: Annotated[list[Path], typer.Argument(help="results.json files (or their folders).")],
    out_path: Annotated[
        Path, typer.Option("--out", help="HTML file to write (Markdown goes next to it).")
    ] = Path("report.html"),
    baseline: Baseline = None,
    data_dir: DataDir = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace existing files that are not reports irtune wrote.")
    ] = False,
) -> None:
    """Self-contained HTML report (tables, charts, per-query analysis, provenance) plus Markdown tables."""
    html_path = api.report(results, out=out_path, baseline=baseline, data_dir=data_dir, force=force)
    out.print(f"wrote {html_path} and {html_path.with_suffix('.md')}")


def inspect_command(
    baseline: Annotated[Path, typer.Argument(help="Baseline results.json (or its folder).")],
    candidate: Annotated[Path, typer.Argument(help="Candidate results.json (or its folder).")],
    query: Annotated[str | None, typer.Option(help="Show this query's rankings (a query id).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Which queries moved: those that gained and lost most with their rankings, and slices."""
    from irtune.reporting.queries_console import inspect_view

    for part in inspect_view(api.inspect(baseline, candidate, query=query, data_dir=data_dir), query):
        out.print(part)


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
    for path in api.export(results, out_dir=out_dir, format=format_, model_name=model_name, force=force):
        out.print(f"wrote {path}", markup=False, highlight=False)
