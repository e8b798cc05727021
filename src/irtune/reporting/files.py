"""Write the report files: a self-contained report.html and report.md next to it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from irtune.comparison import Comparison, load_comparisons
from irtune.fileio import write_text_atomic
from irtune.reporting.html import html_report
from irtune.reporting.markdown import markdown_report


def write_report(
    results: Sequence[Path], out: Path, baseline: Path | None = None
) -> tuple[Path, Path, list[Comparison]]:
    """report.html (self-contained) and report.md next to it."""
    comparisons, loaded = load_comparisons(results, baseline)
    write_text_atomic(out, html_report(comparisons, loaded))
    markdown = out.with_suffix(".md")
    write_text_atomic(markdown, markdown_report(comparisons))
    return out, markdown, comparisons
