"""Write the report files: a self-contained report.html and report.md next to it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from irtune import checks
from irtune.comparison import Comparison, load_comparisons
from irtune.errors import IrtuneError
from irtune.fileio import write_text_atomic
from irtune.reporting.html import html_report
from irtune.reporting.markdown import markdown_report


def write_report(
    results: Sequence[Path], out: Path, baseline: Path | None = None
) -> tuple[Path, Path, list[Comparison]]:
    """report.html (self-contained) and report.md next to it."""
    markdown = out.with_suffix(".md")
    if markdown == out:
        raise IrtuneError(f"--out {out}: the HTML report needs another name than its Markdown twin (.html)")
    checks.output_file("--out", out)
    checks.output_file("--out", markdown)
    comparisons, loaded = load_comparisons(results, baseline)
    write_text_atomic(out, html_report(comparisons, loaded))
    write_text_atomic(markdown, markdown_report(comparisons))
    return out, markdown, comparisons
