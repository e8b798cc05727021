"""Heavy commands run under mimalloc (re-executed once with it preloaded); results say which
allocator served them, and `IRTUNE_ALLOCATOR=system` keeps the system's."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from irtune.core.allocator import mimalloc_library

from conftest import irtune

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LD_PRELOAD is Linux's")


@pytest.mark.parametrize(("choice", "expected"), [(None, "mimalloc"), ("system", "system")])
def test_eval_runs_under_the_chosen_allocator(choice, expected, scifact_slice, tmp_path):
    assert mimalloc_library() is not None  # a dependency on Linux
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "IRTUNE_ALLOCATOR")}
    if choice:
        env["IRTUNE_ALLOCATOR"] = choice
    out = tmp_path / "bm25"
    done = irtune("eval", "--retriever", "bm25", "-d", str(scifact_slice), "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["environment"]["allocator"] == expected
    flags_line = next(
        line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
    )
    present = flags_line.split(":", 1)[1].split()
    assert results["environment"]["cpu_flags"] == [
        flag
        for flag in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
        if flag in present
    ]
