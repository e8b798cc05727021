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
