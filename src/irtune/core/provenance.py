"""Where a number came from: code version, software, hardware, date, peak memory."""

from __future__ import annotations

import datetime as dt
import platform
import resource
import socket
import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from irtune import __version__
from irtune.core.allocator import active_allocator


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


@cache
def git_commit() -> str | None:
    """Commit of the irtune source tree, when it runs from a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


@cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# the instruction sets that decide which precision runs fast on a CPU
SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


@cache
def cpu_flags() -> tuple[str, ...]:
    """Which of SPEED_FLAGS this CPU has (Linux; none elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return tuple(flag for flag in SPEED_FLAGS if flag in present)
    except OSError:
        pass
    return ()


def native_bf16() -> bool:
    """The CPU computes in bf16 natively (AVX512-BF16 or AMX), so bf16 autocast is fast there;
    elsewhere bf16 is emulated, often slower than fp32."""
    return any(flag in cpu_flags() for flag in ("avx512_bf16", "amx_bf16"))


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def environment() -> dict[str, Any]:
    import torch  # here, not at the top: reading results (compare, report) must not load torch

    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else []
    )
    return {
        "irtune_version": __version__,
        "git_commit": git_commit(),
        "date": now_iso(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sentence_transformers": _package_version("sentence-transformers"),
        "transformers": _package_version("transformers"),
        "cpu": cpu_model(),
        "cpu_flags": list(cpu_flags()),
        "allocator": active_allocator(),
        "cpu_threads": torch.get_num_threads(),
        "gpus": gpus,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
