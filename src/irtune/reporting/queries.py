"""Which queries a comparison moved: every query's change, the rankings of those that gained and
lost most, and slices of the queries (by length, by number of relevant documents, by dataset),
each with its paired test.

Results keep the rankings only as the TREC run files `irtune eval` writes beside results.json:
a run file is used only when it reproduces every per-query value the results recorded (else it
is stale or edited, and a ranking shown from it would contradict the numbers). Query texts,
judgements and titles come from the dataset, found by name under the data folder and used only
when its files have the hashes the results recorded. Whatever cannot be shown is said, with why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from irtune.data.beir import BeirDataset, Qrels, iter_corpus
from irtune.data.registry import resolve_dataset
from irtune.errors import DataError, IrtuneError
from irtune.results.compare import TIE, Comparison, DatasetComparison
from irtune.results.metrics import evaluate_run, rank_documents
from irtune.results.schema import DatasetResult, ResultsFile
from irtune.results.significance import bootstrap_ci, holm, paired_randomization_test

METRIC = "ndcg@10"
MOVERS = 5  # queries told in words, among those that gained and among those that lost most
TOP = 5  # retrieved documents shown before and after
RELEVANT_SHOWN = 5  # relevant documents whose ranks are shown
TITLE_CHARS = 90  # a document without a title is shown by the start of its text
LENGTH_BOUNDS = (5, 10, 20)  # query length in words: 1–5, 6–10, 11–20, 21+
RELEVANT_BOUNDS = (1, 3, 10)  # relevant documents per query: 1, 2–3, 4–10, 11+
FAMILIES = ("query length", "relevant documents", "dataset")


@dataclass(frozen=True)
class QueryRow:
    """One evaluated query: its text and judgements when the dataset was found (else None)."""

    dataset: str
    qid: str
    text: str | None
    relevant: int | None
    baseline: float
    candidate: float

    @property
    def delta(self) -> float:
        return self.candidate - self.baseline

    @property
    def words(self) -> int | None:
        return len(self.text.split()) if self.text is not None else None


@dataclass(frozen=True)
class Hit:
    """A document as the stories show it: its title and grade (0: not judged relevant)."""

    doc_id: str
    title: str
    grade: int


@dataclass(frozen=True)
class RelevantRank:
    doc: Hit
    before: int | None  # 1-based rank in the baseline's run; None: not retrieved within its depth
    after: int | None


@dataclass(frozen=True)
class QueryStory:
    """How one query's ranking changed, in documents a person can read."""

    row: QueryRow
    ranks: list[RelevantRank]  # the best-ranked relevant documents (RELEVANT_SHOWN)
    more_relevant: int  # relevant documents not listed in `ranks`
    top_before: list[Hit]
    top_after: list[Hit]
    depth: int  # how deep the runs go: a relevant document further down is "not retrieved"


@dataclass
class DatasetQueries:
    dataset: str
    split: str
    rows: list[QueryRow]
    stories: dict[str, QueryStory] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)  # what the texts and rankings come from, or why not

    def moved(self) -> str:
        """'300 queries: 97 gained, 150 unchanged, 53 lost NDCG@10'."""
        up = sum(r.delta > TIE for r in self.rows)
        down = sum(r.delta < -TIE for r in self.rows)
        still = len(self.rows) - up - down
        return f"{len(self.rows)} queries: {up} gained, {still} unchanged, {down} lost NDCG@10"

    @property
    def gained(self) -> list[QueryRow]:
        """The queries that gained most, largest gain first (ties: by id)."""
        up = sorted((r for r in self.rows if r.delta > TIE), key=lambda r: (-r.delta, r.qid))
        return up[:MOVERS]

    @property
    def lost(self) -> list[QueryRow]:
        down = sorted((r for r in self.rows if r.delta < -TIE), key=lambda r: (r.delta, r.qid))
        return down[:MOVERS]


@dataclass(frozen=True)
class SliceTest:
    family: str
    name: str
    queries: int
    baseline: float
    candidate: float
    ci_low: float
    ci_high: float
    p_value: float
    p_holm: float

    @property
    def delta(self) -> float:
        return self.candidate - self.baseline


@dataclass
class QueryAnalysis:
    baseline_label: str
    candidate_label: str
    datasets: list[DatasetQueries]
    slices: list[SliceTest]

    @property
    def rows(self) -> list[QueryRow]:
        return [row for d in self.datasets for row in d.rows]

    def correction(self) -> str:
        """How the slice tests were corrected, for the text under their table."""
        return (
            f"Each slice: paired randomization test of Δ NDCG@10 over its queries (10,000 sign flips), "
            f"Holm-corrected over the {len(self.slices)} slice tests of this comparison "
            f"({', '.join(FAMILIES)}) as one family, apart from the report's headline family."
        )


def analyse(
    comparison: Comparison,
    baseline: ResultsFile,
    candidate: ResultsFile,
    data_dir: Path | None = None,
    query: str | None = None,
) -> QueryAnalysis:
    """The per-query analysis of one comparison of `baseline` and `candidate` (the files it
    compared). The rankings told are those of the queries that gained and lost most, or only
    those of `query` when given (an error if no compared dataset evaluated it)."""
    base_entries = {(e.dataset, e.split): e for e in baseline.datasets}
    cand_entries = {(e.dataset, e.split): e for e in candidate.datasets}
    datasets = [
        _dataset_queries(
            row,
            (baseline, base_entries[(row.dataset, row.split)]),
            (candidate, cand_entries[(row.dataset, row.split)]),
            data_dir,
            query,
        )
        for row in comparison.datasets
    ]
    if query is not None and not any(query in {r.qid for r in d.rows} for d in datasets):
        count = sum(len(d.rows) for d in datasets)
        raise IrtuneError(f"query {query!r} is not among the {count} queries both runs evaluated")
    return QueryAnalysis(
        comparison.baseline_label, comparison.candidate_label, datasets, slice_tests(datasets)
    )


def analyse_report(
    comparisons: Sequence[Comparison], results: Sequence[ResultsFile], data_dir: Path | None = None
) -> list[QueryAnalysis]:
    """Each comparison's analysis; `results` are the compared files, told apart by label."""
    by_label = {r.label: r for r in results}
    return [
        analyse(c, by_label[c.baseline_label], by_label[c.candidate_label], data_dir) for c in comparisons
    ]


def _dataset_queries(
    compared: DatasetComparison,
    base: tuple[ResultsFile, DatasetResult],
    cand: tuple[ResultsFile, DatasetResult],
    data_dir: Path | None,
    query: str | None,
) -> DatasetQueries:
    entry = cand[1]
    qids = sorted(entry.per_query)
    dataset, sources = _verified_dataset(entry, data_dir)
    qrels = dataset.qrels(entry.split) if dataset else None
    texts = dataset.queries if dataset else {}
    rows = [
        QueryRow(
            dataset=entry.dataset,
            qid=q,
            text=texts.get(q),
            relevant=sum(g > 0 for g in qrels[q].values()) if qrels else None,
            baseline=base[1].per_query[q][METRIC],
            candidate=entry.per_query[q][METRIC],
        )
        for q in qids
    ]
    found = DatasetQueries(compared.dataset, compared.split, rows, sources=sources)
    if dataset is None or qrels is None:
        return found
    runs = [_verified_run(result, e, qrels, sources) for result, e in (base, cand)]
    before, after = runs
    if before is None or after is None:
        return found
    told = [r for r in rows if r.qid == query] if query is not None else [*found.gained, *found.lost]
    titles = _titles(dataset, {d for r in told for d in _shown_docs(r.qid, before, after, qrels)})
    depth = cand[0].settings.top_k or max(map(len, [*before.values(), *after.values()]), default=0)
    found.stories = {r.qid: _story(r, before, after, qrels[r.qid], titles, depth) for r in told}
    return found


def _verified_dataset(entry: DatasetResult, data_dir: Path | None) -> tuple[BeirDataset | None, list[str]]:
    """The evaluated dataset, if found under its name with the files the results recorded."""
    try:
        dataset = resolve_dataset(entry.dataset, data_dir)
        files = dataset.file_hashes(entry.split)
    except IrtuneError as exc:
        return None, [f"query texts and rankings not shown: {exc}"]
    if files != entry.data_files_sha256:
        differing = sorted(
            k for k in {*files, *entry.data_files_sha256} if files.get(k) != entry.data_files_sha256.get(k)
        )
        return None, [
            f"query texts and rankings not shown: {dataset.root} holds other files than were evaluated "
            f"({', '.join(differing)} differ from the recorded sha256)"
        ]
    return dataset, [
        f"query texts, judgements and titles from {dataset.root} (files match the recorded sha256)"
    ]


def _verified_run(
    result: ResultsFile, entry: DatasetResult, qrels: Qrels, sources: list[str]
) -> dict[str, list[str]] | None:
    """The run's ranking per query (document ids, best first), if its run file reproduces every
    per-query value the results recorded; else None, with why in `sources`."""
    if entry.run_file is None:
        sources.append(f"rankings not shown: {result.label} records no run file for {entry.dataset}")
        return None
    if result.path is None:
        sources.append(f"rankings not shown: {result.label} was not read from a folder holding its run file")
        return None
    folder = Path(result.path).parent
    path = folder / entry.run_file
    if not path.resolve().is_relative_to(folder.resolve()):
        sources.append(
            f"rankings not shown: {result.label}'s run file {entry.run_file} is outside its folder"
        )
        return None
    try:
        run = read_run(path)
    except DataError as exc:
        sources.append(f"rankings not shown: {exc}")
        return None
    if problem := _unreproduced(run, entry, qrels, result.settings.ignore_identical_ids is not False):
        sources.append(f"rankings not shown: {path} {problem} (stale or edited)")
        return None
    sources.append(f"{result.label}'s rankings from {path} (it reproduces every recorded per-query value)")
    return {q: rank_documents(run.get(q, {})) for q in entry.per_query}


def _unreproduced(
    run: dict[str, dict[str, float]], entry: DatasetResult, qrels: Qrels, ignore_identical_ids: bool
) -> str | None:
    """Which recorded per-query value the run does not reproduce, if any."""
    metrics = sorted({m for scores in entry.per_query.values() for m in scores})
    judged = {q: qrels[q] for q in entry.per_query if q in qrels}
    scored = evaluate_run(judged, run, metrics, ignore_identical_ids)
    for qid in sorted(entry.per_query):
        for name, recorded in sorted(entry.per_query[qid].items(), key=lambda m: (m[0] != METRIC, m[0])):
            value = scored.get(qid, {}).get(name)
            if value is None or not math.isclose(value, recorded, rel_tol=1e-9, abs_tol=1e-12):
                return f"gives {name} {value} for query {qid!r}, not the recorded {recorded}"
    return None


def read_run(path: Path) -> dict[str, dict[str, float]]:
    """A TREC run file (`qid Q0 doc rank score tag`) as scores per query and document. The tag is
    the rest of the line: `irtune eval` writes it as one token (`evaluation.write_run_file`), but
    files written before tagged a run with its label, spaces and all."""
    run: dict[str, dict[str, float]] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                fields = line.split(maxsplit=5)
                if len(fields) < 6:
                    raise DataError(
                        path, f"expected 6 fields (qid Q0 doc rank score tag), got {len(fields)}", number
                    )
                try:
                    score = float(fields[4])
                except ValueError:
                    raise DataError(path, f"score {fields[4]!r} is not a number", number) from None
                if not math.isfinite(score):
                    raise DataError(path, f"score {fields[4]} is not finite", number)
                run.setdefault(fields[0], {})[fields[2]] = score
    except FileNotFoundError:
        raise DataError(path, "run file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read run file ({exc})") from None
    return run


def _relevant(judged: dict[str, int]) -> list[str]:
    return [d for d, g in judged.items() if g > 0]


def _shown_docs(
    qid: str, before: dict[str, list[str]], after: dict[str, list[str]], qrels: Qrels
) -> set[str]:
    return {*before[qid][:TOP], *after[qid][:TOP], *_relevant(qrels[qid])}


def _titles(dataset: BeirDataset, wanted: set[str]) -> dict[str, str]:
    """The titles of `wanted` documents (the start of the text where a document has none),
    streamed from the corpus: only the shown documents are held."""
    titles = {}
    for doc_id, doc in iter_corpus(dataset.corpus_path):
        if doc_id in wanted:
            text = doc.title.strip() or doc.text.strip()
            titles[doc_id] = text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"
    return titles


def _story(
    row: QueryRow,
    before: dict[str, list[str]],
    after: dict[str, list[str]],
    judged: dict[str, int],
    titles: dict[str, str],
    depth: int,
) -> QueryStory:
    def hit(doc: str) -> Hit:
        return Hit(doc, titles.get(doc, "(not in the corpus)"), judged.get(doc, 0))

    def rank(ranking: list[str], doc: str) -> int | None:
        return ranking.index(doc) + 1 if doc in ranking else None

    ranks = [
        RelevantRank(hit(d), rank(before[row.qid], d), rank(after[row.qid], d)) for d in _relevant(judged)
    ]
    ranks.sort(key=lambda r: (min(r.before or math.inf, r.after or math.inf), -r.doc.grade, r.doc.doc_id))
    return QueryStory(
        row=row,
        ranks=ranks[:RELEVANT_SHOWN],
        more_relevant=max(0, len(ranks) - RELEVANT_SHOWN),
        top_before=[hit(d) for d in before[row.qid][:TOP]],
        top_after=[hit(d) for d in after[row.qid][:TOP]],
        depth=depth,
    )


def rank_change(rank: RelevantRank, depth: int) -> str:
    """'3 → 1', or 'not in the top 100 → 4' for a document a run did not retrieve."""
    before, after = (
        str(r) if r is not None else f"not in the top {depth}" for r in (rank.before, rank.after)
    )
    return f"{before} → {after}"


def bucket(value: int, bounds: Sequence[int], unit: str) -> str:
    """The bucket of `value` between successive upper `bounds`: '6–10 words' for 7 in (5, 10, 20)."""
    return next((name for name, high in _buckets(bounds, unit) if high is None or value <= high))


def _buckets(bounds: Sequence[int], unit: str) -> list[tuple[str, int | None]]:
    """(name, upper bound) of each bucket, in increasing order; the last one is open."""
    buckets: list[tuple[str, int | None]] = []
    low = 1
    for high in bounds:
        buckets.append((f"{low} {unit}" if low == high else f"{low}–{high} {unit}", high))
        low = high + 1
    return [*buckets, (f"{low}+ {unit}", None)]


def slices(rows: Sequence[QueryRow]) -> list[tuple[str, str, list[QueryRow]]]:
    """(family, slice, its queries) for every non-empty slice, buckets in increasing order and
    datasets as compared; a query whose text or judgements are unknown (its dataset was not
    found) is in no length or relevance slice."""
    found = []
    for family, unit, bounds, value in (
        ("query length", "words", LENGTH_BOUNDS, lambda r: r.words),
        ("relevant documents", "relevant", RELEVANT_BOUNDS, lambda r: r.relevant),
    ):
        known = [(r, v) for r in rows if (v := value(r)) is not None]
        for name, _ in _buckets(bounds, unit):
            if members := [r for r, v in known if bucket(v, bounds, unit) == name]:
                found.append((family, name, members))
    for dataset in dict.fromkeys(r.dataset for r in rows):
        found.append(("dataset", dataset, [r for r in rows if r.dataset == dataset]))
    return found


def slice_tests(datasets: Sequence[DatasetQueries]) -> list[SliceTest]:
    """Every slice's paired test of Δ NDCG@10 (its queries in the comparison's order: dataset,
    then query id), Holm-corrected over all slices of the comparison as one family."""
    uncorrected = []
    for family, name, members in slices([r for d in datasets for r in d.rows]):
        b = np.array([r.baseline for r in members])
        c = np.array([r.candidate for r in members])
        low, high = bootstrap_ci(c - b)
        p = paired_randomization_test(c - b)
        uncorrected.append(SliceTest(family, name, len(members), b.mean(), c.mean(), low, high, p, p_holm=p))
    adjusted = holm([t.p_value for t in uncorrected])
    return [replace(t, p_holm=a) for t, a in zip(uncorrected, adjusted, strict=True)]
