"""The report's answer in words, before any table: what changed, by how much, how sure.

Every sentence is built from one paired test of the report's Holm family and names its
numbers (both scores, the relative change, the corrected p), so the words can never claim
more than the tables below them. "No significant change" is said as such, with its CI:
a difference the test cannot see is not evidence that there is none."""

from __future__ import annotations

from irtune.reporting.rows import metric_label
from irtune.results.compare import ALPHA, Comparison, DatasetComparison, MetricComparison, SeedRuns

HEADLINE = "ndcg@10"
SECOND = "recall@100"


def _p(m: MetricComparison) -> str:
    """The corrected p; for a change the correction alone made not significant, the
    uncorrected p too (its 95% CI, also uncorrected, may then exclude 0)."""
    corrected = "p_holm < 0.001" if m.p_holm < 0.001 else f"p_holm = {m.p_holm:.3f}"
    if not m.significant and m.p_value < ALPHA:
        uncorrected = "< 0.001" if m.p_value < 0.001 else f"= {m.p_value:.3f}"
        return f"{corrected}, uncorrected p {uncorrected}"
    return corrected


def _change(m: MetricComparison, where: str, *, tuned: bool) -> str:
    """'fine-tuning raised NDCG@10 on <where> from a to b (+4.9%, p_holm < 0.001)', or for a
    run that is not a fine-tuned model 'NDCG@10 higher on <where>: a → b (...)'."""
    name = metric_label(m.metric)
    if not m.significant:
        return (
            f"no significant change in {name} on {where} ({m.baseline:.4f} → {m.candidate:.4f}, "
            f"95% CI of Δ [{m.ci_low:+.4f}, {m.ci_high:+.4f}], {_p(m)})"
        )
    numbers = f"{m.baseline:.4f} → {m.candidate:.4f} ({100 * m.relative:+.1f}%, {_p(m)})"
    if tuned:
        return f"fine-tuning {'raised' if m.delta > 0 else 'lowered'} {name} on {where}: {numbers}"
    return f"{name} {'higher' if m.delta > 0 else 'lower'} on {where}: {numbers}"


def _short(m: MetricComparison, *, head_to_head: bool = False) -> str:
    """'Recall@100 up a → b (p)'; head to head, candidate first: 'MAP@100 higher (b vs a, p)'."""
    name = metric_label(m.metric)
    if not m.significant:
        return f"{name} not significantly changed ({m.baseline:.4f} → {m.candidate:.4f}, {_p(m)})"
    if head_to_head:
        return (
            f"{name} {'higher' if m.delta > 0 else 'lower'} ({m.candidate:.4f} vs {m.baseline:.4f}, {_p(m)})"
        )
    return f"{name} {'up' if m.delta > 0 else 'down'} {m.baseline:.4f} → {m.candidate:.4f} ({_p(m)})"


def _also(d: DatasetComparison, shown: set[str], *, head_to_head: bool = False) -> str:
    """The significant changes of the metrics a sentence did not name: a headline that did not
    move must not read as "nothing changed" when another metric did."""
    others = [
        _short(m, head_to_head=head_to_head) for m in d.metrics if m.metric not in shown and m.significant
    ]
    return f"; also {', '.join(others)}" if others else ""


CONTAMINATED_NOTE = " (⚠ CONTAMINATED: trained on evaluated queries)"


def _queries(c: Comparison, d: DatasetComparison) -> str:
    if d.contaminated:
        return f"{d.queries} {d.dataset} {d.split} queries{CONTAMINATED_NOTE}"
    if not c.candidate_trained_on:
        return f"{d.queries} {d.dataset} {d.split} queries"
    if c.kind == "head to head":  # both models trained on this dataset, neither on these queries
        return f"{d.queries} held-out {d.dataset} {d.split} queries"
    held = "held-out" if d.trained_on else "never-trained-on"
    return f"{d.queries} {held} {d.dataset} {d.split} queries"


def _not_weights_alone(c: Comparison) -> str:
    """'; the runs differ in retriever (dense → hybrid) as well as weights: ...' when two models
    are compared under other settings too, so that the change is not read as the model's."""
    if not (c.differences and c.other_weights):
        return ""
    credit = ": the change is not credited to fine-tuning" if c.against_base else ""
    return f"; the runs differ in {', '.join(c.differences)} as well as weights{credit}"


def sentence(c: Comparison, d: DatasetComparison) -> str:
    """One dataset of one comparison against the baseline."""
    head = d.metric(HEADLINE) if HEADLINE in c.metrics else d.metrics[0]
    tuned = c.credits_training  # "fine-tuning did X": against its own base, by weights alone
    subject = c.candidate_label if tuned else f"{c.candidate_label} vs {c.baseline_label}"
    text = f"{subject}: {_change(head, 'the ' + _queries(c, d), tuned=tuned)}{_not_weights_alone(c)}"
    shown = {head.metric}
    if SECOND in c.metrics and head.metric != SECOND:
        text += f"; {_short(d.metric(SECOND))}"
        shown.add(SECOND)
    return text + _also(d, shown) + "."


def head_to_head_sentence(c: Comparison, d: DatasetComparison) -> str:
    """The domain model against a per-dataset model on that model's own dataset."""
    m = d.metric(HEADLINE) if HEADLINE in c.metrics else d.metrics[0]
    name = metric_label(m.metric)
    if not m.significant:
        outcome = (
            f"is not significantly different from {c.baseline_label} (Δ {m.delta:+.4f}, 95% CI "
            f"[{m.ci_low:+.4f}, {m.ci_high:+.4f}], {_p(m)})"
        )
    else:
        verb = "beats" if m.delta > 0 else "falls short of"
        outcome = f"{verb} {c.baseline_label} (Δ {m.delta:+.4f}, {100 * m.relative:+.1f}%, {_p(m)})"
    return (
        f"On {d.dataset}, {c.candidate_label} {outcome}: {name} {m.candidate:.4f} vs "
        f"{m.baseline:.4f} on the same {_queries(c, d)}{_also(d, {m.metric}, head_to_head=True)}."
    )


def transfer_sentence(c: Comparison, d: DatasetComparison) -> str:
    """A tuned model on a dataset it was not trained on, against the base model."""
    m = d.metric(HEADLINE) if HEADLINE in c.metrics else d.metrics[0]
    name = metric_label(m.metric)
    if not m.significant:
        kind = f"no significant transfer or forgetting in {name}"
    else:
        kind = "transfer (a significant gain)" if m.delta > 0 else "forgetting (a significant loss)"
    return (
        f"{c.candidate_label} on {d.dataset}, which it never trained on: {name} "
        f"{m.baseline:.4f} → {m.candidate:.4f} (Δ {m.delta:+.4f}, 95% CI [{m.ci_low:+.4f}, "
        f"{m.ci_high:+.4f}], {_p(m)}): {kind}{_also(d, {m.metric})}."
    )


def recipe_sentence(c: Comparison, runs: SeedRuns, d: DatasetComparison) -> str | None:
    """What the recipe of a model trained over several seeds did on one dataset, judged from
    the two-level CI alone (the sentence before it judges the shipped run from its own test)."""
    found = next((s for s in runs.datasets if (s.dataset, s.split) == (d.dataset, d.split)), None)
    if found is None:
        return None
    m = found.metric(HEADLINE) if HEADLINE in c.metrics else found.metrics[0]
    if not m.excludes_zero:
        outcome = "not established: the interval includes 0 once training runs vary"
    else:
        outcome = f"a {'gain' if m.ci_low > 0 else 'loss'} that holds across training runs"
    seeds = ", ".join(map(str, runs.seeds))
    marked = CONTAMINATED_NOTE if found.contaminated else ""
    return (
        f"The recipe over seeds {seeds} vs {c.baseline_label}, on the same {d.queries} {d.dataset} "
        f"{d.split} queries{marked}: mean Δ {metric_label(m.metric)} {m.mean:+.4f} (seeds from "
        f"{min(m.gains):+.4f} to {max(m.gains):+.4f}), {runs.describe_level()} over seeds and queries "
        f"[{m.ci_low:+.4f}, {m.ci_high:+.4f}]: {outcome}; the run tested above: {runs.reason}."
    )


def verdict(comparisons: list[Comparison]) -> list[str]:
    """Fine-tuned models first, then other retrievers: one sentence per (candidate, dataset),
    followed for a model trained over several seeds by its recipe's sentence."""
    against = [c for c in comparisons if c.kind == "vs baseline"]
    ordered = sorted(against, key=lambda c: not c.credits_training)
    said = []
    for c in ordered:
        for d in c.datasets:
            said.append(sentence(c, d))
            if c.seeds is not None and (recipe := recipe_sentence(c, c.seeds, d)) is not None:
                said.append(recipe)
    return said


def domain_answer(comparisons: list[Comparison]) -> tuple[list[str], list[str]]:
    """(domain model vs per-dataset models, transfer/forgetting of per-dataset models): the
    two questions of a domain study; both empty when the report holds no such runs."""
    matches = [
        head_to_head_sentence(c, d) for c in comparisons if c.kind == "head to head" for d in c.datasets
    ]
    transfer = [
        transfer_sentence(c, d)
        for c in comparisons
        if c.kind == "vs baseline" and c.credits_training and len(c.candidate_trained_on) == 1
        for d in c.datasets
        if not d.trained_on
    ]
    return matches, transfer
