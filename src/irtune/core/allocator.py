"""The memory allocator of irtune's heavy commands: mimalloc, preloaded by re-executing the
command once at start.

Training and encoding allocate and free tensors of tens to hundreds of MB every step.
glibc serves blocks above its mmap threshold (at most 32 MiB) with fresh mappings, so every
step faults its activations in page by page and returns them: a third of a CPU training
run's time was spent in the kernel (`benchmarks/train_step.py`). mimalloc (PyPI
`cmeel-mimalloc`, a dependency) keeps freed memory for reuse. An allocator can only be
chosen before a process allocates, hence the re-exec with `LD_PRELOAD`; the Python API runs
in its caller's process and keeps its allocator (`IRTUNE_ALLOCATOR=system` keeps glibc for
the CLI too).
"""

from __future__ import annotations

import logging
import os
import sys
from importlib import metadata
from pathlib import Path

log = logging.getLogger(__name__)

ALLOCATOR_ENV = "IRTUNE_ALLOCATOR"  # "mimalloc" (default) or "system"
# Freed memory is kept for reuse, never handed back: a training step frees and allocates the same
# hundreds of MB again, and handing them back cost a step 10% (7% of its CPU time in the kernel
# instead of 12%: `benchmarks/train_step.py`). The peak RSS is what it would be anyway.
MIMALLOC_OPTIONS = {"MIMALLOC_PURGE_DELAY": "-1"}


def mimalloc_library() -> Path | None:
    """libmimalloc.so from the `cmeel-mimalloc` package, if it is installed."""
    try:
        located = metadata.distribution("cmeel-mimalloc").locate_file("cmeel.prefix/lib/libmimalloc.so")
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(located))
    return path if path.is_file() else None


def active_allocator() -> str:
    """What serves this process's malloc: "mimalloc" when preloaded, else "system"."""
    preloaded = os.environ.get("LD_PRELOAD", "")
    return "mimalloc" if "libmimalloc" in preloaded else "system"


def reexec_with_mimalloc() -> None:
    """Re-execute this command with mimalloc preloaded (once: the new process finds it in
    LD_PRELOAD); nothing happens off Linux, without the library, or when the user chose the
    system allocator."""
    if not sys.platform.startswith("linux") or os.environ.get(ALLOCATOR_ENV, "mimalloc") == "system":
        return
    if active_allocator() == "mimalloc":
        return
    library = mimalloc_library()
    if library is None:
        log.debug("cmeel-mimalloc is not installed: the system allocator serves this run")
        return
    preloaded = os.environ.get("LD_PRELOAD", "")
    os.environ["LD_PRELOAD"] = f"{library}:{preloaded}" if preloaded else str(library)
    os.environ.update({k: v for k, v in MIMALLOC_OPTIONS.items() if k not in os.environ})
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
