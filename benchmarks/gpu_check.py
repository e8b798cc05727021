"""GPU check: SciFact evaluation with irtune and BEIR's exact search (fp32 and fp16, one
process), then 200 steps of fp16 fine-tuning, on a CUDA machine.

A lent GPU machine has no network and takes at most 64 MiB of files, so the check runs from a
bundle made here first: MiniLM stored in fp16 (43 MiB), SciFact's gzipped files and the wheels
its image lacks.

    python benchmarks/gpu_check.py pack .gpu          # here (needs pip's network access)
    # there, from the repository root, with .gpu carried:
    pip install -q --no-index --no-deps --target /tmp/site .gpu/wheels/*.whl
    PYTHONPATH=/tmp/site:src python benchmarks/gpu_check.py run .gpu --json $OUT/gpu_check.json

Both evaluators load the same fp16-stored weights; "fp32" computes in fp32 on them (the fp16
rounding of the weights moves NDCG@10 by about 1e-4 on the CPU: `run .gpu --device cpu
--skip-training` measures it here). Model loading is inside every timing; each cold row is the median of
--repeats runs (irtune and BEIR alternate which goes first), after a warm-up that takes CUDA's
lazy kernel loading out of all of them. BEIR's fp16 is the model cast to fp16; irtune's is
fp16 autocast over fp32 weights.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# What the GPU image lacks (its sentence-transformers is 6.0.1; irtune needs 6.2), for Python 3.12.
WHEELS = (
    "sentence-transformers==6.2.0",
    "pydantic==2.14.4",
    "pydantic-core==2.50.5",
    "annotated-types",
    "typing-inspection",
    "platformdirs",
    "beir==2.2.0",
    "pytrec-eval-terrier==0.5.11",
    "datasets==5.2.0",
    "dill==0.4.1",
    "multiprocess==0.70.19",
    "bm25s==0.3.16",
    "pystemmer==3.1.0",
)


def pack(bundle: Path, data_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from irtune.models.loading import bundled_model_path

    model = SentenceTransformer(str(bundled_model_path()), device="cpu").half()
    model.save(str(bundle / "minilm-fp16"))
    shutil.copytree(data_dir / "scifact", bundle / "beir" / "scifact", dirs_exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
            "--implementation",
            "cp",
            "--platform",
            "manylinux_2_28_x86_64",
            "--platform",
            "manylinux_2_17_x86_64",
            "--platform",
            "manylinux2014_x86_64",
            "-d",
            str(bundle / "wheels"),
            *WHEELS,
        ],
        check=True,
    )
    size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file())
    print(f"{bundle}: {size / 2**20:.1f} MiB")


def timed(label: str, fn: Any) -> tuple[Any, float]:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    value = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    print(f"{label:28s} {seconds:8.2f} s  {value if not isinstance(value, dict) else ''}", flush=True)
    return value, seconds


def irtune_eval(dataset: Any, model_dir: Path, precision: str, device: str, cache: Path, batch: int) -> float:
    from irtune.evaluation.runner import evaluate_dataset
    from irtune.models.loading import load_model
    from irtune.retrieval.settings import RetrievalSettings

    settings = RetrievalSettings(precision=precision, cache_dir=cache, batch_size=batch)
    model = load_model(str(model_dir), device=device)
    return round(evaluate_dataset(dataset, settings, model).result.metrics["ndcg@10"], 4)


def beir_eval(dataset: Any, model_dir: Path, precision: str, device: str, batch: int) -> float:
    """BEIR's DenseRetrievalExactSearch on SentenceBERT, scored by irtune's metrics (identical to
    pytrec_eval's, which the tests assert) so both rows use one scorer."""
    from beir.retrieval import models
    from beir.retrieval.search.dense import DenseRetrievalExactSearch

    from irtune.results.metrics import evaluate_run, mean_metrics

    corpus = {d: {"title": doc.title, "text": doc.text} for d, doc in dataset.corpus.items()}
    qrels = dataset.qrels("test")
    queries = {q: dataset.queries[q] for q in qrels}
    encoder = models.SentenceBERT(str(model_dir), device=device)
    encoder.q_model = encoder.q_model.half() if precision == "fp16" else encoder.q_model.float()
    encoder.doc_model = encoder.q_model
    searcher = DenseRetrievalExactSearch(encoder, batch_size=batch, corpus_chunk_size=50_000)
    run = searcher.search(corpus, queries, top_k=1000, score_function="cos_sim")
    run = {q: {d: s for d, s in docs.items() if d != q} for q, docs in run.items()}
    return round(mean_metrics(evaluate_run(qrels, run, ["ndcg@10"]))["ndcg@10"], 4)


def train_steps(model_dir: Path, data_dir: Path, out: Path, steps: int, device: str) -> Path:
    from irtune.api import train

    config = {
        "max_steps": steps,
        "epochs": 50,  # max_steps ends it
        "batch_size": 32,
        "mixed_precision": "fp16" if device.startswith("cuda") else "none",
        "precision": "fp16" if device.startswith("cuda") else "fp32",
        "save_steps": 10_000,
    }
    return train(str(model_dir), ["scifact"], out_dir=out, config=config, data_dir=data_dir, device=device)


def warm_up(dataset: Any, model_dir: Path, device: str, batch: int) -> None:
    """Encode 512 documents in each precision once: CUDA loads kernels lazily on first use, so
    without this the first timed row pays for everyone's start-up."""
    import torch
    from sentence_transformers import SentenceTransformer

    texts = [doc.full_text() for doc in itertools.islice(dataset.corpus.values(), 512)]
    model = SentenceTransformer(str(model_dir), device=device, model_kwargs={"dtype": torch.float32})
    with torch.inference_mode():
        model.encode(texts, batch_size=batch)
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.float16):
            model.encode(texts, batch_size=batch)
        model.half().encode(texts, batch_size=batch)


def run(
    bundle: Path,
    *,
    device: str,
    batch: int,
    steps: int,
    repeats: int,
    skip_training: bool,
    json_path: Path | None,
) -> None:
    import torch

    from irtune.data.registry import resolve_dataset
    from irtune.models.lineage import TRAINING_METADATA, TrainingRecord

    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("error: no CUDA device here; this check runs on a GPU machine (or --device cpu)")
    model_dir, data_dir = bundle / "minilm-fp16", bundle / "beir"
    dataset = resolve_dataset("scifact", data_dir)
    _ = dataset.corpus, dataset.queries, dataset.qrels("test")  # parse once, outside every timing
    if device.startswith("cuda"):
        torch.ones(1024, 1024, device=device) @ torch.ones(1024, 1024, device=device)  # CUDA start-up
        print(torch.cuda.get_device_name(), f"torch {torch.__version__}", flush=True)
    warm_up(dataset, model_dir, device, batch)
    rows: dict[str, tuple[Any, float]] = {}
    with tempfile.TemporaryDirectory() as work:
        for precision in ("fp32", "fp16"):
            walls: dict[str, list[float]] = {"irtune": [], "beir": []}
            for repeat in range(repeats):  # alternate the order: neither always runs first
                cache = Path(work) / f"cache-{precision}-{repeat}"
                for name in ("irtune", "beir") if repeat % 2 == 0 else ("beir", "irtune"):
                    if name == "irtune":
                        ndcg, seconds = timed(
                            f"irtune {precision}",
                            lambda p=precision, c=cache: irtune_eval(dataset, model_dir, p, device, c, batch),
                        )
                    else:
                        ndcg, seconds = timed(
                            f"BEIR DRES {precision}",
                            lambda p=precision: beir_eval(dataset, model_dir, p, device, batch),
                        )
                    walls[name].append(seconds)
                    rows[f"{'irtune' if name == 'irtune' else 'beir_dres'}_{precision}"] = (ndcg, 0.0)
            for name, key in (("irtune", f"irtune_{precision}"), ("beir", f"beir_dres_{precision}")):
                rows[key] = (rows[key][0], statistics.median(walls[name]))
            rows[f"irtune_{precision}_cached"] = timed(
                f"irtune {precision} cached",
                lambda p=precision, c=cache: irtune_eval(dataset, model_dir, p, device, c, batch),
            )
        if not skip_training:
            folder, seconds = timed(
                f"train {steps} steps fp16",
                lambda: train_steps(model_dir, data_dir, Path(work) / "tuned", steps, device),
            )
            rows["train"] = (TrainingRecord.read(folder / TRAINING_METADATA).selected, seconds)
            rows["tuned_fp16"] = timed(
                "tuned eval fp16",
                lambda: irtune_eval(dataset, folder, "fp16", device, Path(work) / "cache-tuned", batch),
            )
    figures = {name: {"wall_s": round(seconds, 2), "value": value} for name, (value, seconds) in rows.items()}
    for precision in ("fp32", "fp16"):
        ratio = rows[f"beir_dres_{precision}"][1] / rows[f"irtune_{precision}"][1]
        figures[f"irtune_{precision}"]["speedup_vs_beir_dres"] = round(ratio, 2)
        print(f"irtune {precision} vs BEIR DRES {precision}: x{ratio:.2f}")
    payload = {
        "benchmark": "gpu_check",
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else device,
        "torch": torch.__version__,
        "batch_size": batch,
        "repeats": repeats,
        "figures": figures,
    }
    print(json.dumps(payload, indent=2))
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(payload, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    packer = commands.add_parser("pack", help="make the bundle here")
    packer.add_argument("bundle", type=Path)
    packer.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/beir"
    )
    runner = commands.add_parser("run", help="run the check from a bundle")
    runner.add_argument("bundle", type=Path)
    runner.add_argument("--device", default="cuda")
    runner.add_argument("--batch-size", type=int, default=128)
    runner.add_argument("--steps", type=int, default=200)
    runner.add_argument("--repeats", type=int, default=3, help="cold runs per row (the median is kept)")
    runner.add_argument("--skip-training", action="store_true")
    runner.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.bundle, args.data_dir)
    else:
        run(
            args.bundle,
            device=args.device,
            batch=args.batch_size,
            steps=args.steps,
            repeats=args.repeats,
            skip_training=args.skip_training,
            json_path=args.json,
        )


if __name__ == "__main__":
    main()
