"""Write the report files: a self-contained report.html and report.md next to it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from irtune.core import checks
from irtune.core.files import write_text_atomic
from irtune.errors import invalid
from irtune.reporting.html import html_report
from irtune.reporting.markdown import markdown_report
from irtune.results.compare import Comparison, load_comparisons

# the last line of every report file irtune writes: what `write_report` may replace without force
MARKER = "<!-- written by irtune report -->"


def write_report(
    results: Sequence[Path],
    out: Path,
    baseline: Path | None = None,
    data_dir: Path | None = None,
    force: bool = False,
) -> tuple[Path, Path, list[Comparison]]:
    """report.html (self-contained) and report.md next to it; the evaluated datasets, for the
    per-query analysis, are looked up by name under `data_dir` (default: $IRTUNE_DATA_DIR).
    An existing file is replaced only if it is a report irtune wrote, or with `force`."""
    markdown = out.with_suffix(".md")
    if markdown == out:
        raise invalid(
            "out", "{path}: the HTML report needs another name than its Markdown twin (.html)", path=out
        )
    for path in (out, markdown):
        checks.replaceable_file("out", path, _written_by_report, "a report irtune wrote", force=force)
    comparisons, loaded = load_comparisons(results, baseline)
    write_text_atomic(out, _marked(html_report(comparisons, loaded, data_dir)))
    write_text_atomic(markdown, _marked(markdown_report(comparisons)))
    return out, markdown, comparisons


def _marked(text: str) -> str:
    return text.rstrip("\n") + "\n" + MARKER + "\n"


def _written_by_report(path: Path) -> bool:
    """Whether the file ends with MARKER (read from its end: a report can be large)."""
    tail = len(MARKER) + 2
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - tail))
            return handle.read().rstrip().endswith(MARKER.encode())
    except OSError:
        return False
