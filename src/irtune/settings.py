"""What an evaluation and a model load are asked to do, checked when they are made.

These objects are light (no torch, faiss or bm25s): `irtune eval --top-k 0` or
`--device banana` fails before a model or a corpus is touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irtune import checks
from irtune.errors import IrtuneError
from irtune.metrics import DEFAULT_METRICS, parse_metric
from irtune.results import EvaluationSettings
from irtune.retrieval.registry import check_retriever

if TYPE_CHECKING:
    from irtune.models import LoadedModel

PRECISIONS = ("fp32", "bf16", "fp16")
INDEX_TYPES = ("exact", "flat", "ivf", "hnsw")
# what runs the transformer when encoding: torch, or an export run by ONNX Runtime / OpenVINO
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")
QUANTIZATIONS = ("none", "int8", "ubinary")  # of document vectors, made from the float cache
# FAISS parameters per index type (all positive whole numbers), with their defaults
DEFAULT_INDEX_PARAMS: dict[str, dict[str, int]] = {
    "exact": {},
    "flat": {},
    "ivf": {"nlist": 1024, "nprobe": 32, "train_size": 100_000},
    "hnsw": {"m": 32, "ef_construction": 80, "ef_search": 128},
}


@dataclass
class EvalSettings:
    split: str = "test"
    retriever: str = "dense"  # a name in irtune.retrieval.registry
    batch_size: int = 32
    precision: str = "fp32"
    top_k: int = 1000
    metrics: tuple[str, ...] = DEFAULT_METRICS
    ignore_identical_ids: bool = True
    cache_dir: Path | None = None
    index: str = "exact"
    index_params: dict[str, Any] = field(default_factory=dict)
    store_dtype: str = "float32"
    devices: tuple[str, ...] = ()  # several: a multi-process encoding pool (GPUs or CPU workers)
    dims: int | None = None  # the first N dimensions, renormalised (None: all)
    quantize: str = "none"  # none, int8 or ubinary document vectors
    rescore: int = 1  # ubinary: rescore the top rescore x k by the float query (1: off)
    backend: str = "torch"  # irtune.retrieval.backends

    def __post_init__(self) -> None:
        check_retriever(self.retriever)
        choices = {
            "precision": (self.precision, PRECISIONS),
            "index": (self.index, INDEX_TYPES),
            "store-dtype": (self.store_dtype, ("float32", "float16")),
            "quantize": (self.quantize, QUANTIZATIONS),
            "backend": (self.backend, BACKENDS),
        }
        for option, (value, allowed) in choices.items():
            if value not in allowed:
                raise IrtuneError(f"--{option} must be one of {', '.join(allowed)}, not {value!r}")
        checks.at_least("--batch-size", self.batch_size, 1)
        checks.at_least("--top-k", self.top_k, 1)
        _check_top_k(self.top_k, self.metrics)
        _check_index_params(self.index, self.index_params)
        for name in self.devices:
            checks.device("--devices", name)
        checks.output_folder("--cache-dir", self.cache_dir)
        self._check_compression()
        self._check_backend()

    def _check_backend(self) -> None:
        if self.backend == "torch":
            return
        if not check_retriever(self.retriever).needs_model:
            raise IrtuneError(
                f"--backend {self.backend} encodes with a model; --retriever {self.retriever} encodes nothing"
            )
        if self.precision != "fp32":
            raise IrtuneError(
                f"--precision {self.precision} applies to --backend torch; --backend {self.backend} "
                "runs the exported graph as it is (fp32, or int8 for the -int8 backends)"
            )
        if self.devices:
            raise IrtuneError(
                f"--devices applies to --backend torch; --backend {self.backend} runs on the CPU"
            )

    def _check_compression(self) -> None:
        checks.at_least("--dims", self.dims, 1)
        checks.at_least("--rescore", self.rescore, 1)
        if self.rescore > 1 and self.quantize != "ubinary":
            raise IrtuneError("--rescore applies to --quantize ubinary (int8 is scored with the float query)")
        if (self.dims is not None or self.quantize != "none") and (
            self.retriever != "dense" or self.index != "exact"
        ):
            raise IrtuneError(
                "--dims and --quantize apply to --retriever dense with --index exact "
                f"(not {self.retriever} with --index {self.index})"
            )

    def describe(self) -> EvaluationSettings:
        """What the results file records of these settings (the retriever describes itself)."""
        return EvaluationSettings(
            split=self.split,
            top_k=self.top_k,
            metrics=list(self.metrics),
            ignore_identical_ids=self.ignore_identical_ids,
            batch_size=self.batch_size,
            cache_dir=str(self.cache_dir) if self.cache_dir else None,
            devices=list(self.devices),
        )


def _check_top_k(top_k: int, metrics: Sequence[str]) -> None:
    """A metric cut deeper than the kept ranking would be computed on a truncated list
    (Recall@1000 of a top-100 run is Recall@100 under another name), so refuse it."""
    try:
        deepest = max((parse_metric(m) for m in metrics), key=lambda spec: spec.k, default=None)
    except ValueError as exc:
        raise IrtuneError(str(exc)) from None
    if deepest is not None and top_k < deepest.k:
        raise IrtuneError(
            f"--top-k {top_k} is below the deepest metric cutoff: {deepest.name} would be "
            f"computed on a truncated ranking; use --top-k {deepest.k} or more"
        )


def _check_index_params(index: str, params: dict[str, Any]) -> None:
    known = DEFAULT_INDEX_PARAMS[index]
    for key, value in params.items():
        if key not in known:
            allowed = f"one of {', '.join(known)}" if known else "none"
            raise IrtuneError(f"--index-param {key}: not a parameter of --index {index} ({allowed})")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise IrtuneError(f"--index-param {key}={value}: must be a whole number of at least 1")


@dataclass(frozen=True)
class ModelOptions:
    """How to load a model: device, max length and prompt overrides (None: the model's own)."""

    device: str | None = None
    max_seq_length: int | None = None
    query_prompt: str | None = None
    doc_prompt: str | None = None

    def __post_init__(self) -> None:
        checks.device("--device", self.device)
        checks.at_least("--max-seq-length", self.max_seq_length, 1)

    def for_backend(self, backend: str) -> ModelOptions:
        """An exported backend runs on the CPU: load there unless a device was named (a
        named accelerator is refused before loading)."""
        if backend == "torch" or self.device is not None:
            return self
        return replace(self, device="cpu")

    def load(self, spec: str) -> LoadedModel:
        from irtune.models import load_model

        return load_model(spec, self.device, self.max_seq_length, self.query_prompt, self.doc_prompt)
