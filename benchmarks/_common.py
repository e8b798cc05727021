"""Helpers shared by the benchmarks: data location, timing, JSON output."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from irtune.core.provenance import environment

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def data_dir() -> Path:
    return Path(os.environ.get("IRTUNE_DATA_DIR", HERE.parent.parent / "shared" / "data" / "beir"))


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "machine": platform.node(), "environment": environment(), **payload}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def recipe_figures(comparison: Any) -> dict[str, Any]:
    """A recipe over training seeds as the benchmarks publish it, from an
    `irtune.results.compare.Comparison` whose candidate is the shipped run of that recipe:
    NDCG@10 per seed, mean, range, the CI over seeds and queries, and the shipped run's own test."""
    recipe = comparison.seeds
    assert recipe is not None, "the runs over seeds form one recipe"
    gain = recipe.datasets[0].metric("ndcg@10")
    shipped = comparison.datasets[0].metric("ndcg@10")
    return {
        "seeds": recipe.seeds,
        "gains": [round(g, 4) for g in gain.gains],
        "mean_gain": round(gain.mean, 4),
        "range": [round(min(gain.gains), 4), round(max(gain.gains), 4)],
        "ci_seeds_and_queries": [round(gain.ci_low, 4), round(gain.ci_high, 4)],
        "ci": recipe.describe_level(),
        "shipped_seed": recipe.shipped,
        "shipped_reason": recipe.reason,
        "shipped_gain": round(shipped.delta, 4),
        "shipped_ci_queries": [round(shipped.ci_low, 4), round(shipped.ci_high, 4)],
        "shipped_p_holm": round(shipped.p_holm, 4),
    }


def describe_recipe(figures: dict[str, Any]) -> str:
    low, high = figures["ci_seeds_and_queries"]
    return (
        f"seeds {figures['seeds']}: gains {figures['gains']}, mean {figures['mean_gain']:+.4f}, "
        f"{figures['ci']} over seeds and queries [{low:+.4f}, {high:+.4f}]; shipped seed "
        f"{figures['shipped_seed']} {figures['shipped_gain']:+.4f} (p_holm {figures['shipped_p_holm']:.4f})"
    )
