"""`irtune eval`: a model (or BM25) on datasets, one setting or a frontier of sizes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from irtune import api
from irtune.cli.console import out
from irtune.cli.options import CacheDir, DataDir, MlflowUri
from irtune.cli.values import key_numbers, whole_numbers
from irtune.errors import IrtuneError
from irtune.results.files import FRONTIER_FILE, RESULTS_FILE
from irtune.retrieval.registry import retriever_names


def eval_command(
    dataset: Annotated[list[str], typer.Option("-d", "--dataset", help="Name or BEIR folder (repeat).")],
    model: Annotated[str | None, typer.Option("-m", "--model", help="minilm, a hub id or a folder.")] = None,
    split: Annotated[str, typer.Option(help="Qrels split to evaluate.")] = "test",
    retriever: Annotated[str, typer.Option(help=f"One of {', '.join(retriever_names())}.")] = "dense",
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write results.json and run files here.")
    ] = None,
    heldout: Annotated[
        list[Path] | None,
        typer.Option(
            "--split-file", help="Evaluate only the `eval` queries of this irtune split file (repeat)."
        ),
    ] = None,
    data_dir: DataDir = None,
    cache_dir: CacheDir = None,
    query_prompt: Annotated[str | None, typer.Option(help="Override the query prompt.")] = None,
    doc_prompt: Annotated[str | None, typer.Option(help="Override the document prompt.")] = None,
    max_seq_length: Annotated[int | None, typer.Option(help="Override the model's max length.")] = None,
    batch_size: Annotated[int, typer.Option(help="Encoding batch size.")] = 32,
    precision: Annotated[
        str,
        typer.Option(help="fp32, bf16 or fp16 (torch autocast); fp32 or bf16 with the openvino backends."),
    ] = "fp32",
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: best).")] = None,
    top_k: Annotated[int, typer.Option(help="Documents kept per query.")] = 1000,
    keep_identical_ids: Annotated[
        bool, typer.Option(help="Keep a retrieved doc whose id equals the query id.")
    ] = False,
    strict: Annotated[bool, typer.Option(help="Unknown ids in qrels are errors.")] = False,
    label: Annotated[str | None, typer.Option(help="Name of this run in reports.")] = None,
    index: Annotated[str, typer.Option(help="exact (default), flat, ivf or hnsw (FAISS).")] = "exact",
    index_param: Annotated[
        list[str] | None,
        typer.Option(help="FAISS parameter KEY=VALUE (repeat): nlist, nprobe, m, ef_search, ..."),
    ] = None,
    store_dtype: Annotated[str, typer.Option(help="Embedding cache dtype: float32 or float16.")] = "float32",
    devices: Annotated[
        str | None,
        typer.Option(help="Encode the corpus with a multi-process pool, e.g. cuda:0,cuda:1 or cpu,cpu."),
    ] = None,
    dims: Annotated[
        str | None,
        typer.Option(
            help="Keep the first N embedding dimensions, renormalised (from the cache); several "
            "(384,256,128) evaluate each and compare it with full precision."
        ),
    ] = None,
    quantize: Annotated[
        str,
        typer.Option(
            help="Document vectors as none, int8 or ubinary (from the cache); several (none,int8) "
            "evaluate each."
        ),
    ] = "none",
    rescore: Annotated[
        int, typer.Option(help="ubinary: rescore the top N x k candidates with the float query.")
    ] = 1,
    backend: Annotated[
        str,
        typer.Option(
            help="What encodes on the CPU: torch, onnx, onnx-int8 (dynamic), openvino or openvino-int8 "
            "(static, calibrated on the corpus); exports are cached beside the embedding cache."
        ),
    ] = "torch",
    mlflow: MlflowUri = None,
    force: Annotated[
        bool, typer.Option(help="Replace the results of another evaluation (other setup) in --out.")
    ] = False,
) -> None:
    """Evaluate a model (or BM25) on datasets and print NDCG@10/100, MAP@100, Recall@100."""
    from irtune.results.tracking import Tracking, log_results

    tracking = Tracking(mlflow=mlflow)
    tracking.check()  # before the model loads

    sizes = whole_numbers(dims, "--dims") if dims else []
    kinds = [k.strip() for k in quantize.split(",")]
    common: dict[str, Any] = {
        "device": device,
        "max_seq_length": max_seq_length,
        "query_prompt": query_prompt,
        "doc_prompt": doc_prompt,
        "out_dir": out_dir,
        "split_files": heldout or [],
        "data_dir": data_dir,
        "label": label,
        "strict": strict,
        "split": split,
        "retriever": retriever,
        "batch_size": batch_size,
        "precision": precision,
        "top_k": top_k,
        "ignore_identical_ids": not keep_identical_ids,
        "cache_dir": cache_dir,
        "index": index,
        "index_params": key_numbers(index_param or [], "--index-param"),
        "store_dtype": store_dtype,
        "devices": tuple(d.strip() for d in devices.split(",")) if devices else (),
        "backend": backend,
        "force": force,
    }
    if len(sizes) > 1 or len(kinds) > 1:
        if model is None:
            raise IrtuneError(
                "several --dims/--quantize settings need a model: -m minilm, a hub id or a folder"
            )
        swept = api.frontier(model, dataset, dims=sizes, quantize=kinds, rescore=rescore, **common)
        from irtune.reporting.tables import frontier_table

        out.print(frontier_table(swept))
        for run in swept.runs.values():
            log_results(tracking, run)
        if out_dir is not None:
            count = len(swept.runs)
            out.print(f"wrote {out_dir / FRONTIER_FILE} and SETTING/{RESULTS_FILE} for {count} settings")
        return
    result = api.evaluate(
        model, dataset, dims=sizes[0] if sizes else None, quantize=kinds[0], rescore=rescore, **common
    )
    from irtune.reporting.tables import results_table

    out.print(results_table(result))
    if out_dir is not None:
        out.print(f"wrote {out_dir / RESULTS_FILE}")
    if run_id := log_results(tracking, result, out_dir / RESULTS_FILE if out_dir else None):
        out.print(f"logged to MLflow run {run_id}", markup=False, highlight=False)
