"""The report's per-query section: the queries that moved most told in words, the slices with
their tests, and every query in a table sorted and filtered by an inline script (no network).
Query texts and titles are user data: every one is escaped."""

from __future__ import annotations

import html

from irtune.reporting.queries import (
    QueryAnalysis,
    QueryRow,
    QueryStory,
    SliceTest,
    rank_change,
)

STYLE = """
section.per-query{border-top:2px solid #ddd;margin-top:1.5rem}
ol.movers li{margin:.4rem 0 .8rem} ol.movers q{font-style:italic}
table.top-docs td,table.top-docs th{text-align:left;max-width:30rem}
td.relevant{color:#17692c;font-weight:bold}
.query-scroll{max-height:28rem;overflow:auto;border:1px solid #ddd}
table.queries{margin:0} table.queries th{cursor:pointer;position:sticky;top:0}
table.queries td:nth-child(3){text-align:left;max-width:40rem}
p.sources{font-size:.8rem;color:#555}
"""

# Sorts a table.queries by the clicked column (numbers by data-value), toggling the order, and
# filters its rows by the text typed in the input naming it (query id and text).
SCRIPT = """
document.querySelectorAll('table.queries th').forEach(th => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0], col = th.cellIndex;
  const order = th.getAttribute('aria-sort') === 'ascending' ? 'descending' : 'ascending';
  const sign = order === 'ascending' ? 1 : -1, numeric = th.dataset.type === 'number';
  const key = row => numeric ? Number(row.cells[col].dataset.value) : row.cells[col].textContent;
  const rows = Array.from(body.rows).sort((a, b) => sign * (numeric ? key(a) - key(b)
    : key(a).localeCompare(key(b))));
  th.closest('tr').querySelectorAll('th').forEach(h => h.removeAttribute('aria-sort'));
  th.setAttribute('aria-sort', order);
  body.append(...rows);
}));
document.querySelectorAll('input.query-filter').forEach(input => input.addEventListener('input', () => {
  const needle = input.value.trim().toLowerCase();
  const rows = document.getElementById(input.dataset.table).tBodies[0].rows;
  let shown = 0;
  for (const row of rows) { row.hidden = !row.dataset.text.includes(needle); shown += !row.hidden; }
  document.getElementById(input.dataset.table + '-count').textContent = shown;
}));
"""

COLUMNS = (
    ("dataset", "text"),
    ("query id", "text"),
    ("query", "text"),
    ("words", "number"),
    ("relevant", "number"),
    ("baseline", "number"),
    ("candidate", "number"),
    ("Δ NDCG@10", "number"),
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _row_label(row: QueryRow) -> str:
    text = f"<q>{_e(row.text)}</q> " if row.text is not None else ""
    return f"{text}<code>{_e(row.qid)}</code>"


def _mark(grade: int) -> str:
    return f"✓ {grade}" if grade > 0 else "·"


def _top_documents(story: QueryStory, analysis: QueryAnalysis) -> str:
    rows = []
    for rank in range(max(len(story.top_before), len(story.top_after))):
        cells = []
        for hits in (story.top_before, story.top_after):
            hit = hits[rank] if rank < len(hits) else None
            if hit is None:
                cells.append("<td></td><td></td>")
            else:
                klass = ' class="relevant"' if hit.grade > 0 else ""
                cells.append(f"<td{klass}>{_mark(hit.grade)}</td><td{klass}>{_e(hit.title)}</td>")
        rows.append(f"<tr><td>{rank + 1}</td>{''.join(cells)}</tr>")
    return (
        '<table class="top-docs"><tr><th>rank</th>'
        f'<th colspan="2">before: {_e(analysis.baseline_label)}</th>'
        f'<th colspan="2">after: {_e(analysis.candidate_label)}</th></tr>' + "".join(rows) + "</table>"
    )


def _story(row: QueryRow, story: QueryStory | None, analysis: QueryAnalysis) -> str:
    head = (
        f"<strong>{row.delta:+.4f}</strong> NDCG@10 ({row.baseline:.4f} → {row.candidate:.4f}): "
        f"{_row_label(row)}"
    )
    if story is None:
        return f"<li>{head}</li>"
    ranks = "; ".join(
        f"“{_e(r.doc.title)}” (grade {r.doc.grade}) rank {rank_change(r, story.depth)}" for r in story.ranks
    )
    more = f"; and {story.more_relevant} more relevant documents" if story.more_relevant else ""
    return f"<li>{head}<br>Relevant documents: {ranks}{more}.{_top_documents(story, analysis)}</li>"


def _movers(analysis: QueryAnalysis, index: int) -> list[str]:
    parts = []
    for d in analysis.datasets:
        parts.append(
            f"<p>{_e(d.dataset)}:{_e(d.split)}: {_e(d.moved())}. "
            f'<a href="#slices-{index}">Slices</a> · <a href="#queries-{index}">every query</a> below.</p>'
        )
        for heading, rows in (("gained most", d.gained), ("lost most", d.lost)):
            items = "".join(_story(r, d.stories.get(r.qid), analysis) for r in rows)
            parts.append(f"<h4>{_e(d.dataset)}:{_e(d.split)}: the queries that {heading}</h4>")
            parts.append(f'<ol class="movers">{items}</ol>' if items else "<p>None.</p>")
        parts.append(
            f'<p class="sources">{" · ".join(_e(s) for s in d.sources)}. '
            "✓ n: relevant (grade n); ·: not judged relevant.</p>"
        )
    return parts


def _slice_row(test: SliceTest) -> str:
    significant = " *" if test.p_holm < 0.05 else ""
    return (
        f"<tr><td>{_e(test.family)}</td><td>{_e(test.name)}</td><td>{test.queries}</td>"
        f"<td>{test.baseline:.4f}</td><td>{test.candidate:.4f}</td><td>{test.delta:+.4f}</td>"
        f"<td>[{test.ci_low:+.4f}, {test.ci_high:+.4f}]</td><td>{test.p_value:.4f}</td>"
        f"<td>{test.p_holm:.4f}{significant}</td></tr>"
    )


def _slices(analysis: QueryAnalysis, index: int) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "family",
            "slice",
            "queries",
            "baseline",
            "candidate",
            "Δ NDCG@10",
            "95% CI of Δ",
            "p",
            "p (Holm)",
        )
    )
    caption = f"{_e(analysis.correction())} * significant at 0.05 after that correction."
    rows = "".join(_slice_row(t) for t in analysis.slices)
    return (
        f'<table class="slices" id="slices-{index}"><caption>{caption}</caption><tr>{head}</tr>{rows}</table>'
    )


def _query_row(row: QueryRow) -> str:
    numbers = (row.words, row.relevant, row.baseline, row.candidate, row.delta)
    shown = (
        _e(row.words if row.words is not None else ""),
        _e(row.relevant if row.relevant is not None else ""),
        f"{row.baseline:.4f}",
        f"{row.candidate:.4f}",
        f"{row.delta:+.4f}",
    )
    cells = "".join(
        f'<td data-value="{_e(repr(v) if v is not None else "")}">{s}</td>'
        for v, s in zip(numbers, shown, strict=True)
    )
    searched = f"{row.qid} {row.text or ''}".lower()
    return (
        f'<tr data-text="{_e(searched)}"><td>{_e(row.dataset)}</td><td>{_e(row.qid)}</td>'
        f"<td>{_e(row.text or '')}</td>{cells}</tr>"
    )


def _every_query(analysis: QueryAnalysis, index: int) -> str:
    table = f"queries-{index}"
    head = "".join(f'<th data-type="{kind}">{_e(name)}</th>' for name, kind in COLUMNS)
    rows = "".join(_query_row(r) for r in analysis.rows)
    count = len(analysis.rows)
    return (
        f"<h4>Every query (<span id='{table}-count'>{count}</span> of {count} shown)</h4>"
        "<p>Click a column to sort it (again to reverse); type to filter by query id or text.</p>"
        f'<input type="search" class="query-filter" data-table="{table}" placeholder="filter queries">'
        f'<div class="query-scroll"><table class="queries" id="{table}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def per_query_section(analysis: QueryAnalysis, title: str, index: int) -> str:
    """One comparison's per-query section (its rows sortable once SCRIPT runs on the page)."""
    return "\n".join(
        [
            f'<section class="per-query" id="per-query-{index}">',
            f"<h3>Which queries moved: {_e(title)}</h3>",
            *_movers(analysis, index),
            "<h4>Slices</h4>",
            _slices(analysis, index),
            _every_query(analysis, index),
            "</section>",
        ]
    )
