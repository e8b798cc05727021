"""What an evaluation and a model load are asked to do, checked when they are made.

These objects are light (no torch, faiss or bm25s): `irtune eval --top-k 0` or
`--device banana` fails before a model or a corpus is touched.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irtune.core import checks, inputs
from irtune.errors import InvalidValueError, invalid
from irtune.results.metrics import DEFAULT_METRICS, parse_metric
from irtune.results.schema import EvaluationSettings
from irtune.retrieval.registry import Registered, check_retriever

if TYPE_CHECKING:
    from irtune.models.loading import LoadedModel
    from irtune.retrieval.base import Retriever

PRECISIONS = ("fp32", "bf16", "fp16")
INDEX_TYPES = ("exact", "flat", "ivf", "hnsw")
# what runs the transformer when encoding: torch, or an export run by ONNX Runtime / OpenVINO
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")
# the precisions each backend computes in: OpenVINO runs what int8 leaves in floats in bf16 when
# asked (INFERENCE_PRECISION_HINT); ONNX Runtime's CPU provider has no such switch
BACKEND_PRECISIONS = {
    "torch": PRECISIONS,
    "onnx": ("fp32",),
    "onnx-int8": ("fp32",),
    "openvino": ("fp32", "bf16"),
    "openvino-int8": ("fp32", "bf16"),
}
QUANTIZATIONS = ("none", "int8", "ubinary")  # of document vectors, made from the float cache
# FAISS parameters per index type (all positive whole numbers), with their defaults
DEFAULT_INDEX_PARAMS: dict[str, dict[str, int]] = {
    "exact": {},
    "flat": {},
    "ivf": {"nlist": 1024, "nprobe": 32, "train_size": 100_000},
    "hnsw": {"m": 32, "ef_construction": 80, "ef_search": 128},
}


def rescore_without_ubinary() -> InvalidValueError:
    return InvalidValueError("{rescore} applies to {quantize} ubinary (int8 is scored with the float query)")


def compression_needs_exact_dense(subject: str, retriever: str, index: str) -> InvalidValueError:
    """`subject` ("{dims} and {quantize} apply") only to exact dense search."""
    return InvalidValueError(
        subject + " to {retriever} dense with {index} exact (not {name} with {index} {index_name})",
        name=retriever,
        index_name=index,
    )


@dataclass
class RetrievalSettings:
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
        self._check_types()
        check_retriever(self.retriever)
        choices = {
            "split": (self.split, None),
            "precision": (self.precision, PRECISIONS),
            "index": (self.index, INDEX_TYPES),
            "store_dtype": (self.store_dtype, ("float32", "float16")),
            "quantize": (self.quantize, QUANTIZATIONS),
            "backend": (self.backend, BACKENDS),
        }
        for option, (value, allowed) in choices.items():
            inputs.text(option, value)
            if allowed is not None and value not in allowed:
                raise invalid(
                    option, "must be one of {allowed}, not {value!r}", allowed=", ".join(allowed), value=value
                )
        checks.at_least("batch_size", self.batch_size, 1)
        checks.at_least("top_k", self.top_k, 1)
        _check_top_k(self.top_k, self.metrics)
        _check_index_params(self.index, self.index_params)
        for name in self.devices:
            checks.device("devices", name)
        checks.output_folder("cache_dir", self.cache_dir)
        self._check_compression()
        self._check_backend()

    def _check_types(self) -> None:
        """Lists, paths, numbers and switches as the API accepts them (see `irtune.core.inputs`)."""
        self.metrics = tuple(inputs.names("metrics", self.metrics))
        self.devices = tuple(inputs.names("devices", self.devices, required=False))
        self.cache_dir = inputs.optional_path("cache_dir", self.cache_dir)
        self.index_params = inputs.mapping("index_params", self.index_params)
        self.ignore_identical_ids = inputs.flag("ignore_identical_ids", self.ignore_identical_ids)
        for name in ("batch_size", "top_k", "rescore"):
            inputs.whole_number(name, getattr(self, name))
        if self.dims is not None:
            inputs.whole_number("dims", self.dims)

    def _check_backend(self) -> None:
        if self.backend == "torch":
            return
        if not check_retriever(self.retriever).needs_model:
            raise InvalidValueError(
                "{backend} {name} encodes with a model; {retriever} {retriever_name} encodes nothing",
                name=self.backend,
                retriever_name=self.retriever,
            )
        if self.precision not in BACKEND_PRECISIONS[self.backend]:
            raise InvalidValueError(
                "{precision} {value} applies to {backend} torch (and bf16 to the openvino backends); "
                "{backend} {name} runs the exported graph as it is (fp32, or int8 for the -int8 backends)",
                value=self.precision,
                name=self.backend,
            )
        if self.devices:
            raise InvalidValueError(
                "{devices} applies to {backend} torch; {backend} {name} runs on the CPU", name=self.backend
            )

    def _check_compression(self) -> None:
        checks.at_least("dims", self.dims, 1)
        checks.at_least("rescore", self.rescore, 1)
        if self.rescore > 1 and self.quantize != "ubinary":
            raise rescore_without_ubinary()
        if (self.dims is not None or self.quantize != "none") and (
            self.retriever != "dense" or self.index != "exact"
        ):
            raise compression_needs_exact_dense("{dims} and {quantize} apply", self.retriever, self.index)

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
        raise invalid("metrics", "{problem}", problem=str(exc)) from None
    if deepest is not None and top_k < deepest.k:
        raise invalid(
            "top_k",
            "{value} is below the deepest metric cutoff: {metric} would be computed on a truncated "
            "ranking; use {top_k} {needed} or more",
            value=top_k,
            metric=deepest.name,
            needed=deepest.k,
        )


def _check_index_params(index: str, params: dict[str, Any]) -> None:
    known = DEFAULT_INDEX_PARAMS[index]
    for key, value in params.items():
        if key not in known:
            allowed = f"one of {', '.join(known)}" if known else "none"
            raise invalid(
                "index_params",
                "{key}: not a parameter of {index} {name} ({allowed})",
                key=key,
                name=index,
                allowed=allowed,
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise invalid(
                "index_params", "{key}={value}: must be a whole number of at least 1", key=key, value=value
            )


@dataclass(frozen=True)
class ModelOptions:
    """How to load a model: device, max length and prompt overrides (None: the model's own)."""

    device: str | None = None
    max_seq_length: int | None = None
    query_prompt: str | None = None
    doc_prompt: str | None = None

    def __post_init__(self) -> None:
        for name in ("device", "query_prompt", "doc_prompt"):
            if (value := getattr(self, name)) is not None and not isinstance(value, str):
                raise inputs.wrong_type(name, "text (str) or None", value)
        if self.max_seq_length is not None:
            inputs.whole_number("max_seq_length", self.max_seq_length)
        checks.device("device", self.device)
        checks.at_least("max_seq_length", self.max_seq_length, 1)

    def for_backend(self, backend: str) -> ModelOptions:
        """An exported backend runs on the CPU: load there unless a device was named (a
        named accelerator is refused before loading)."""
        if backend == "torch" or self.device is not None:
            return self
        return replace(self, device="cpu")

    def load(self, spec: str) -> LoadedModel:
        from irtune.models.loading import load_model

        return load_model(spec, self.device, self.max_seq_length, self.query_prompt, self.doc_prompt)


def check_model_given(retriever: str, model: object | None) -> Registered:
    """The registered retriever, refused when it needs a model and none is given."""
    registered = check_retriever(retriever)
    if registered.needs_model and model is None:
        raise InvalidValueError(
            "{retriever} retrieval needs a {model}: minilm, a hub id or a folder", retriever=retriever
        )
    return registered


def make_retriever(name: str, settings: RetrievalSettings, model: LoadedModel | None) -> Retriever:
    """The registered retriever `name` (irtune.retrieval.registry), its module imported now."""
    registered = check_model_given(name, model)
    module, _, function = registered.factory.partition(":")
    factory = getattr(importlib.import_module(module), function)
    retriever: Retriever = factory(settings, model)
    return retriever
