"""Paired significance over queries: randomization test, bootstrap CI, Holm correction."""

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
