"""Paired significance over queries: randomization test, bootstrap CI, Holm correction; and over
training seeds and queries together: the two-level bootstrap CI of a recipe's gain."""

from __future__ import annotations

import numpy as np

N_RESAMPLES = 10_000
SEED = 20260101


def paired_randomization_test(
    differences: np.ndarray, n_permutations: int = N_RESAMPLES, seed: int = SEED
) -> float:
    """Two-sided sign-flip permutation test of mean(differences) = 0.

    p = (1 + #{|mean of randomly sign-flipped differences| >= |observed|}) / (1 + n).
    """
    d = np.asarray(differences, dtype=np.float64)
    if len(d) == 0 or not np.any(d):
        return 1.0
    observed = abs(d.mean())
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, n_permutations, 1000):
        size = min(1000, n_permutations - start)
        signs = rng.integers(0, 2, size=(size, len(d)), dtype=np.int8) * 2 - 1
        means = np.abs(signs @ d) / len(d)
        extreme += int(np.count_nonzero(means >= observed - 1e-12))
    return (extreme + 1) / (n_permutations + 1)


def bootstrap_ci(
    differences: np.ndarray, level: float = 0.95, n_resamples: int = N_RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean difference."""
    d = np.asarray(differences, dtype=np.float64)
    if len(d) == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, 1000):
        size = min(1000, n_resamples - start)
        idx = rng.integers(0, len(d), size=(size, len(d)))
        means[start : start + size] = d[idx].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def two_level_bootstrap_means(
    differences: np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = SEED
) -> np.ndarray:
    """The bootstrap distribution of a recipe's mean gain: `differences[s, q]` is seed s's
    model minus the baseline on query q. Each resample draws the seeds with replacement, then
    the queries with replacement, and averages the drawn seeds' differences on the drawn
    queries. Every seed was evaluated on the same queries, so one query draw serves all the
    drawn seeds: drawing queries anew per seed would average a hard query's loss away over the
    seeds and narrow the interval as if there were seeds x queries test queries.

    The queries are drawn from a generator seeded like `bootstrap_ci`'s and the seeds from
    another: with identical seeds the distribution is the query bootstrap's, exactly."""
    d = np.asarray(differences, dtype=np.float64)
    n_seeds, n_queries = d.shape
    query_rng = np.random.default_rng(seed)
    seed_rng = np.random.default_rng([seed, 1])
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, 1000):
        size = min(1000, n_resamples - start)
        queries = query_rng.integers(0, n_queries, size=(size, n_queries))
        seeds = seed_rng.integers(0, n_seeds, size=(size, n_seeds))
        weights = (seeds[:, :, None] == np.arange(n_seeds)).mean(axis=1)  # share of each seed drawn
        per_query = weights @ d  # (size, queries): the drawn seeds' mean difference on each query
        means[start : start + size] = np.take_along_axis(per_query, queries, axis=1).mean(axis=1)
    return means


def two_level_bootstrap_ci(
    differences: np.ndarray, level: float = 0.95, n_resamples: int = N_RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """Percentile CI of a recipe's mean gain over seeds and queries (two_level_bootstrap_means)."""
    means = two_level_bootstrap_means(differences, n_resamples, seed)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted
