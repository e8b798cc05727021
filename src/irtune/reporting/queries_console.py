"""`irtune inspect` in the terminal: the per-query analysis as rich tables. Query texts and
titles are user data: they are rich `Text`, never parsed as markup."""

from __future__ import annotations

from collections.abc import Iterator

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from irtune.reporting.queries import DatasetQueries, QueryAnalysis, QueryRow, QueryStory, rank_change


def _query(row: QueryRow) -> Text:
    return Text(f"{row.text}  [{row.qid}]" if row.text is not None else row.qid)


def _movers(found: DatasetQueries, heading: str, rows: list[QueryRow]) -> Table:
    table = Table(
        title=Text(f"{found.dataset}:{found.split}: the queries that {heading}"), title_justify="left"
    )
    for name in ("Δ NDCG@10", "before → after", "query", "relevant documents: rank before → after"):
        table.add_column(name, justify="left" if name[0] in "qr" else "right")
    for row in rows:
        story = found.stories.get(row.qid)
        ranks = (
            "; ".join(f"{r.doc.title}: {rank_change(r, story.depth)}" for r in story.ranks) if story else ""
        )
        table.add_row(
            f"{row.delta:+.4f}", f"{row.baseline:.4f} → {row.candidate:.4f}", _query(row), Text(ranks)
        )
    return table


def _slices(analysis: QueryAnalysis) -> Table:
    table = Table(title="Slices", caption=Text(analysis.correction()), title_justify="left")
    for name in (
        "family",
        "slice",
        "queries",
        "baseline",
        "candidate",
        "Δ NDCG@10",
        "95% CI of Δ",
        "p (Holm)",
    ):
        table.add_column(name, justify="left" if name in ("family", "slice") else "right")
    for t in analysis.slices:
        table.add_row(
            t.family,
            Text(t.name),
            str(t.queries),
            f"{t.baseline:.4f}",
            f"{t.candidate:.4f}",
            f"{t.delta:+.4f}",
            f"[{t.ci_low:+.4f}, {t.ci_high:+.4f}]",
            f"{t.p_holm:.4f}" + (" *" if t.p_holm < 0.05 else ""),
        )
    return table


def _head(row: QueryRow) -> Text:
    head = Text(f"{row.dataset}: ")
    head.append(_query(row))
    head.append(f"\nNDCG@10 {row.baseline:.4f} → {row.candidate:.4f} ({row.delta:+.4f})")
    return head


def _story(analysis: QueryAnalysis, story: QueryStory) -> Group:
    ranks = Table(title="relevant documents", title_justify="left")
    for name in ("document", "grade", "rank before → after"):
        ranks.add_column(name)
    for r in story.ranks:
        ranks.add_row(Text(r.doc.title), str(r.doc.grade), rank_change(r, story.depth))
    if story.more_relevant:
        ranks.caption = f"and {story.more_relevant} more relevant documents"
    top = Table(title="top documents (✓ n: relevant, grade n)", title_justify="left")
    for name in ("rank", f"before: {analysis.baseline_label}", f"after: {analysis.candidate_label}"):
        top.add_column(Text(name))
    for i in range(max(len(story.top_before), len(story.top_after))):
        cells = [
            Text(f"{'✓ ' + str(h.grade) if h.grade else '·'} {h.title}") if h else Text("")
            for h in (hits[i] if i < len(hits) else None for hits in (story.top_before, story.top_after))
        ]
        top.add_row(str(i + 1), *cells)
    return Group(_head(story.row), ranks, top)


def inspect_view(analysis: QueryAnalysis, query: str | None = None) -> Iterator[RenderableType]:
    """What `irtune inspect` prints: each dataset's movers (or `query`'s story) and the slices."""
    yield Text(f"{analysis.candidate_label} vs {analysis.baseline_label}", style="bold")
    for found in analysis.datasets:
        if query is None:
            yield Text(f"{found.dataset}:{found.split}: {found.moved()}")
            yield _movers(found, "gained most", found.gained)
            yield _movers(found, "lost most", found.lost)
        elif story := found.stories.get(query):
            yield _story(analysis, story)
        elif row := next((r for r in found.rows if r.qid == query), None):
            yield _head(row)
        yield Text(" · ".join(found.sources), style="dim")
    if query is None:
        yield _slices(analysis)
