"""One training step of the main job's shape, bare sentence-transformers, under each allocator,
precision and activation-checkpointing setting: what a step costs at the machine's floor.

Rows: 32 x (query, positive, hard negative) from SciFact's train split (the negative: a
random other document; the cost is the same), max length 256, MultipleNegativesRankingLoss,
AdamW, the bundled all-MiniLM-L6-v2. Each setting runs in its own process (an allocator is
chosen when a process starts): `--steps` steps, the first one a warm-up; the median of the
rest, with user and system CPU, minor page faults and peak RSS of the whole process.

    python benchmarks/train_step.py [--steps 5] [--settings glibc-1mib:fp32:ckpt,mimalloc:bf16:none]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import data_dir, write_results

ALLOCATORS = ("glibc", "glibc-1mib", "mimalloc", "tcmalloc")
DEFAULT_SETTINGS = (
    "glibc-1mib:fp32:ckpt",  # irtune before issue 24
    "glibc:bf16:ckpt",
    "glibc:bf16:none",
    "mimalloc:bf16:ckpt",
    "mimalloc:bf16:none",
    "tcmalloc:bf16:ckpt",
    "tcmalloc:bf16:none",
    "mimalloc:fp32:none",
)
TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"


def preload(allocator: str) -> dict[str, str]:
    """The environment that makes a child process use `allocator`."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env["IRTUNE_ALLOCATOR"] = "system"  # the bare step: no allocator chosen by irtune
    if allocator == "mimalloc":  # as irtune's CLI runs it
        from irtune.core.allocator import MIMALLOC_OPTIONS, mimalloc_library

        env["LD_PRELOAD"] = str(mimalloc_library())
        env |= MIMALLOC_OPTIONS
    elif allocator == "tcmalloc":
        env["LD_PRELOAD"] = TCMALLOC
    return env


def rows(count: int, seed: int = 0) -> list[tuple[str, str, str]]:
    from irtune.data.beir import BeirDataset

    dataset = BeirDataset(data_dir() / "scifact")
    qrels = dataset.qrels("train")
    documents = dataset.corpus
    doc_ids = list(documents)
    rng = random.Random(seed)
    out = []
    for qid in sorted(qrels):
        positive = next(d for d, g in qrels[qid].items() if g > 0)
        negative = doc_ids[rng.randrange(len(doc_ids))]
        out.append((dataset.queries[qid], documents[positive].full_text(), documents[negative].full_text()))
    return out[:count]


def run_setting(setting: str, steps: int, batch: int) -> dict:
    """In this process: the steps of one setting."""
    import ctypes

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from irtune.models.loading import bundled_model_path

    allocator, precision, checkpointing = setting.split(":")
    if allocator == "glibc-1mib":
        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD, as irtune set it
    torch.manual_seed(0)
    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    model.max_seq_length = 256
    backbone = model[0].auto_model
    if checkpointing == "ckpt":
        backbone.gradient_checkpointing_enable({"use_reentrant": False})
    model.train()
    loss = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-5)
    data = rows(batch * steps)
    times = []
    for step in range(steps):
        chunk = data[step * batch : (step + 1) * batch]
        features = [model.preprocess([row[i] for row in chunk]) for i in range(3)]
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            value = loss(features, None)
        value.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "setting": setting,
        "step_s": [round(t, 2) for t in times],
        "median_step_s": round(statistics.median(times[1:]), 2),
        "user_s": round(usage.ru_utime, 1),
        "system_s": round(usage.ru_stime, 1),
        "system_share": round(usage.ru_stime / (usage.ru_utime + usage.ru_stime), 3),
        "minor_faults": usage.ru_minflt,
        "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2),
    }


def measure(settings: list[str], steps: int, batch: int) -> list[dict]:
    found = []
    for setting in settings:
        allocator = setting.split(":")[0]
        done = subprocess.run(
            [sys.executable, __file__, "--child", setting, "--steps", str(steps), "--batch", str(batch)],
            env=preload(allocator),
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{setting:24s} {result['median_step_s']:6.2f} s/step  peak {result['peak_rss_gib']:.2f} GiB  "
            f"system {result['system_share']:.0%}  faults {result['minor_faults']:,}",
            flush=True,
        )
        found.append(result)
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--settings", default=",".join(DEFAULT_SETTINGS))
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_setting(args.child, args.steps, args.batch)))
        return
    settings = args.settings.split(",")
    for setting in settings:
        if setting.split(":")[0] not in ALLOCATORS:
            raise SystemExit(f"unknown allocator in {setting!r} (choices: {', '.join(ALLOCATORS)})")
    results = measure(settings, args.steps, args.batch)
    write_results("train_step", {"steps": args.steps, "batch": args.batch, "results": results})


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
