"""The README's main job against the machine's floor, side by side in one run.

- E: a bare sentence-transformers bf16 encode of the SciFact corpus (the bundled MiniLM,
  batch 32, BEIR's `title + " " + text`), in a process of its own;
- T: bare sentence-transformers training of the job's steps (the number its training record
  holds) at its precision and memory class (bf16 autocast where the CPU has native bf16, and
  activation checkpointing as irtune's memory policy decided), 32 x (query, positive,
  negative) rows of SciFact's train split, max length 256 (`train_step.py`'s loop);
- W: `irtune run examples/quickstart.toml` with an empty cache and output folder.

Each with wall time, user and system CPU, minor page faults and peak RSS. The floor of the
job is 3 E + T: the corpus encoded once per distinct weights that are scored on it (the base
model, the tuned model at interpolation 0.5 and at 1.0); every other encode is a cache hit.

    python benchmarks/main_job.py [--irtune .venv/bin/irtune] [--work /tmp/main-job]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import HERE, data_dir, write_results

ENCODE = """
import json, resource, sys, time
import torch
from sentence_transformers import SentenceTransformer
from irtune.data.beir import BeirDataset
from irtune.models.loading import bundled_model_path
dataset = BeirDataset(sys.argv[1])
texts = [doc.full_text() for doc in dataset.corpus.values()]
model = SentenceTransformer(str(bundled_model_path()), device="cpu")
started = time.perf_counter()
with torch.autocast("cpu", dtype=torch.bfloat16):
    model.encode(texts, batch_size=32, convert_to_numpy=True)
print(json.dumps({"encode_s": time.perf_counter() - started, "documents": len(texts)}))
"""


def children_usage() -> resource.struct_rusage:
    return resource.getrusage(resource.RUSAGE_CHILDREN)


def measured(command: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[dict, str]:
    """Run `command` to its end; its wall time and its own resource usage (this process's
    children's totals before and after: the commands run one at a time)."""
    before = children_usage()
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = children_usage()
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {
        "wall_s": round(wall, 1),
        "user_s": round(user, 1),
        "system_s": round(system, 1),
        "system_share": round(system / (user + system), 3),
        "minor_faults": after.ru_minflt - before.ru_minflt,
        # ru_maxrss of children is the largest child's so far: the commands run in growing order
        "peak_rss_gib": round(after.ru_maxrss / 2**20, 2),
    }, done.stdout


def with_mimalloc(env: dict[str, str]) -> dict[str, str]:
    """E and T in the allocator irtune's CLI runs under, so that the floor is the same machine."""
    from irtune.core.allocator import MIMALLOC_OPTIONS, mimalloc_library

    library = mimalloc_library()
    return {**env, **MIMALLOC_OPTIONS, "LD_PRELOAD": str(library)} if library else env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--irtune", default=str(HERE.parent / ".venv" / "bin" / "irtune"))
    parser.add_argument("--repo", default=str(HERE.parent), help="the checkout whose examples/ to run")
    parser.add_argument("--work", default="/tmp/irtune-main-job")
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "IRTUNE_ALLOCATOR")}
    env |= {"IRTUNE_DATA_DIR": str(data_dir()), "IRTUNE_CACHE_DIR": str(work / "cache")}
    scifact = data_dir() / "scifact"

    print("E: bare sentence-transformers bf16 encode of the SciFact corpus ...", flush=True)
    encode, out = measured([sys.executable, "-c", ENCODE, str(scifact)], with_mimalloc(env))
    encode["encode_s"] = round(json.loads(out.strip().splitlines()[-1])["encode_s"], 1)
    print(f"  E = {encode['wall_s']} s wall ({encode['encode_s']} s encoding)", flush=True)

    print("W: irtune run examples/quickstart.toml, empty cache ...", flush=True)
    study = work / "quickstart.toml"
    text = (Path(args.repo) / "examples" / "quickstart.toml").read_text()
    study.write_text(text.replace('out_dir = "runs/quickstart"', f'out_dir = "{work / "run"}"'))
    job, _ = measured([args.irtune, "run", str(study)], env, cwd=Path(args.repo))
    record = next((work / "run" / "stages").glob("train-scifact-*/model/irtune_training.json"))
    training = json.loads(record.read_text())
    steps = max(point["step"] for point in training["loss"])
    precision = training["config"]["mixed_precision"]
    checkpointing = training.get("activation_checkpointing", True)
    results = {
        name: json.loads(path.read_text())
        for name in ("baseline", "eval-scifact")
        for path in (work / "run" / "stages").glob(f"{name}-*/results.json")
    }
    print(f"  W = {job['wall_s']} s wall; {steps} training steps, {precision}, checkpointing {checkpointing}")

    print(f"T: bare sentence-transformers training, {steps} steps ...", flush=True)
    setting = f"mimalloc:{'bf16' if precision == 'bf16' else 'fp32'}:{'ckpt' if checkpointing else 'none'}"
    step_env = {**with_mimalloc(env), "IRTUNE_ALLOCATOR": "system"}
    bare, out = measured(
        [sys.executable, str(HERE / "train_step.py"), "--child", setting, "--steps", str(steps + 1)], step_env
    )
    bare["step_s"] = json.loads(out.strip().splitlines()[-1])["step_s"]
    bare["train_s"] = round(sum(bare["step_s"][1:]), 1)  # the first step is a warm-up
    print(f"  T = {bare['train_s']} s ({setting})", flush=True)

    floor = 3 * encode["encode_s"] + bare["train_s"]
    ratios = {
        "W/E": round(job["wall_s"] / encode["encode_s"], 2),
        "W/(3E+T)": round(job["wall_s"] / floor, 2),
    }
    ndcg = {name: r["datasets"][0]["metrics"]["ndcg@10"] for name, r in results.items()}
    print(f"W/E = {ratios['W/E']}  W/(3E+T) = {ratios['W/(3E+T)']}  NDCG@10 {ndcg}")
    write_results(
        "main_job",
        {
            "command": "python benchmarks/main_job.py",
            "E": encode,
            "T": {**bare, "setting": setting, "steps": steps},
            "W": {**job, "training_precision": precision, "activation_checkpointing": checkpointing},
            "ratios": ratios,
            "ndcg@10": ndcg,
            "report_verdict_file": str(work / "run" / "report.md"),
        },
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
