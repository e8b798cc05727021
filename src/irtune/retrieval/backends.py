"""Encoding backends for the CPU: the model's transformer exported to ONNX and run by ONNX
Runtime or OpenVINO, in fp32 or int8, exported once and cached beside the embedding cache.

Why not sentence-transformers' own `backend="onnx"|"openvino"`: both go through Optimum, and
no release of optimum-onnx installs beside transformers 5 (it pins transformers<4.58), while
optimum-intel pins an older transformers and pulls a CUDA build of torch. So the pieces those
wrappers call are called here directly: torch's ONNX exporter, onnxruntime's dynamic int8
quantisation (int8 weights, activations quantised per batch), and NNCF's static int8
quantisation for OpenVINO (what optimum-intel runs), calibrated on a sample of the corpus being
encoded (never a query's own document). The exported graph stands in for the Hugging Face
model inside sentence-transformers' Transformer module, so tokenisation, pooling and
normalisation stay sentence-transformers' own.

Every export is checked against the torch model on texts of other lengths and batch sizes than
it was traced with before it is used (a trace that baked in a shape would fail there); an int8
export is not held to that bound (it changes the numbers by design), its quality is measured.

A cached export is trusted by content: it is used only when its manifest, written last, lists
every file in its folder with the sha256 the file has; anything else is exported again, with a
warning. The embeddings an export makes are keyed on that manifest's hash, not on its name.
"""

from __future__ import annotations

import copy
import heapq
import importlib
import importlib.metadata
import itertools
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from irtune.core.files import sha256_file, sha256_file_once, sha256_text, write_json_atomic
from irtune.core.locks import folder_lock
from irtune.data.leakage import text_fingerprint
from irtune.errors import ParameterError, invalid
from irtune.models.loading import LoadedModel
from irtune.retrieval.settings import BACKEND_PRECISIONS, BACKENDS

if TYPE_CHECKING:
    from irtune.retrieval.base import Corpus

log = logging.getLogger("irtune")

EXPORT_FORMAT = "irtune-export-v1"
CALIBRATION_SIZE = 300  # corpus documents NNCF calibrates static int8 on (its own default subset)
EXPORT_TOLERANCE = 1e-3  # largest |difference| of an fp32 export's embeddings from torch's
BF16_MIN_COSINE = 0.99  # smallest cosine of an export run in bf16 to torch's fp32 embedding
OPSET = 17
MANIFEST = "manifest.json"  # written last: every file of the export with its sha256


@dataclass(frozen=True)
class Runtime:
    """What a backend needs installed, and how to say so."""

    modules: tuple[str, ...]
    extra: str


RUNTIMES = {
    "onnx": Runtime(("onnx", "onnxruntime"), "onnx"),
    "openvino": Runtime(("onnx", "openvino", "nncf"), "openvino"),
}


def runtime_of(backend: str) -> str:
    return backend.removesuffix("-int8")


def require(backend: str) -> None:
    """One line naming the missing package and the extra that installs it."""
    if backend == "torch":
        return
    runtime = RUNTIMES[runtime_of(backend)]
    for module in runtime.modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise ParameterError(
                "{backend} {name} needs the package {module!r}, which is not installed: "
                "pip install 'irtune[{extra}]'",
                name=backend,
                module=module,
                extra=runtime.extra,
            ) from None


@dataclass(frozen=True)
class CalibrationSample:
    """The documents static int8 calibrates on, and how many documents the seeded draw would
    have held that were left out as a query's own document."""

    texts: list[str]
    left_out: int


@dataclass(frozen=True)
class Calibration:
    """The documents static int8 calibrates on, named by `key` (the corpus content, the queries
    whose documents are left out, prompt and sample size) so that a cached export is found
    without reading the corpus again."""

    key: str
    draw: Callable[[], CalibrationSample]


def corpus_calibration(corpus: Corpus, prompt: str) -> Calibration:
    """A seeded sample of `corpus`'s documents (with the document `prompt`), never a query's
    own: where queries are documents (Quora, ArguAna), a document whose id is a query id or
    whose normalised text is a query's is left out."""
    queries = corpus.queries()
    ids = frozenset(queries)
    fingerprints = frozenset(text_fingerprint(text) for text in queries.values())

    def draw() -> CalibrationSample:
        documents = zip(corpus.doc_ids, corpus.texts(), strict=True)
        sample = calibration_sample(documents, len(corpus), ids, fingerprints)
        return replace(sample, texts=[prompt + text for text in sample.texts])

    key = sha256_text(corpus.content_key, prompt, str(CALIBRATION_SIZE), *sorted(ids), *sorted(fingerprints))
    return Calibration(key, draw)


def calibration_sample(
    documents: Iterable[tuple[str, str]],
    count: int,
    query_ids: frozenset[str] = frozenset(),
    query_fingerprints: frozenset[str] = frozenset(),
) -> CalibrationSample:
    """The first CALIBRATION_SIZE of the `count` (id, text) documents in a seeded random order
    (a stream, read once), in corpus order, leaving out the documents of queries (by id or
    text fingerprint): the same corpus and queries calibrate the same."""
    rank = np.empty(count, dtype=np.int64)
    rank[np.random.default_rng(0).permutation(count)] = np.arange(count)
    kept: list[tuple[int, int, str]] = []  # a max-heap on rank: (-rank, position, text)
    left_out: list[int] = []  # ranks of query documents met
    for position, (doc_id, text) in enumerate(documents):
        if len(kept) == CALIBRATION_SIZE and rank[position] > -kept[0][0]:
            continue  # ranked after the whole sample: never fingerprinted
        if doc_id in query_ids or text_fingerprint(text) in query_fingerprints:
            left_out.append(int(rank[position]))
            continue
        heapq.heappush(kept, (-int(rank[position]), position, text))
        if len(kept) > CALIBRATION_SIZE:
            heapq.heappop(kept)
    last = -kept[0][0] if len(kept) == CALIBRATION_SIZE else count
    texts = [text for _, _, text in sorted(kept, key=lambda entry: entry[1])]
    return CalibrationSample(texts, sum(r < last for r in left_out))


def on_backend(
    model: LoadedModel,
    backend: str,
    *,
    cache_dir: Path,
    calibration: Calibration | None = None,
    precision: str = "fp32",
) -> LoadedModel:
    """`model` with its transformer run by `backend` (exported on first use into
    `cache_dir/exports/KEY`); static int8 (openvino-int8) calibrates on `calibration`. OpenVINO
    runs in `precision` (fp32, or bf16 on a CPU that has it); the export is the same for both."""
    if backend not in BACKENDS:
        raise invalid(
            "backend", "must be one of {allowed}, not {value!r}", allowed=", ".join(BACKENDS), value=backend
        )
    if backend == "torch":
        return model
    require(backend)
    if model.model.device.type != "cpu":
        raise ParameterError(
            "{backend} {name} runs on the CPU, not {device_name}; drop {device}",
            name=backend,
            device_name=model.model.device,
        )
    transformer = model.model[0]
    hf_model = getattr(transformer, "model", None)
    if not isinstance(hf_model, torch.nn.Module) or not hasattr(transformer, "tokenizer"):
        raise ParameterError(
            "{backend} {name}: {model_name} has no Hugging Face transformer to export",
            name=backend,
            model_name=model.name,
        )
    if precision not in BACKEND_PRECISIONS[backend]:
        raise invalid(
            "precision", "{value} does not apply to {backend} {name}", value=precision, name=backend
        )
    if precision == "bf16" and not cpu_runs_bf16():
        raise ParameterError(
            "{precision} bf16 with {backend} {name} needs a CPU with bf16 instructions (AVX512-BF16 or "
            "AMX), which this one lacks: OpenVINO would run fp32 instead; use {precision} fp32",
            name=backend,
        )
    if backend == "openvino-int8" and calibration is None:
        raise ValueError("openvino-int8 needs calibration documents")
    used = calibration if backend == "openvino-int8" else None
    folder = cache_dir / "exports" / export_key(model, backend, used.key if used else "")
    with folder_lock(folder, what="model export", wait=True):
        if (problem := _export_problem(folder)) is None:
            try:
                return _exported(model, backend, folder, precision)
            except PrecisionDrift:
                raise  # the export is sound in fp32: not a reason to export it again
            except Exception as exc:  # onnxruntime's and OpenVINO's load errors share no base class
                problem = f"it fails to load or to encode like the model ({_first_line(exc)})"
        if any(folder.iterdir()):
            log.warning("%s: %s; exporting it again", folder, problem)
        _empty(folder)
        try:
            _export(model, hf_model, backend, folder, used.draw() if used else CalibrationSample([], 0))
        except (RuntimeError, ValueError, TypeError, ImportError) as exc:
            first = _first_line(exc)
            raise ParameterError(
                "{backend} {name}: exporting {model_name} failed ({problem}); use {backend} torch",
                name=backend,
                model_name=model.name,
                problem=first,
            ) from None
        return _exported(model, backend, folder, precision)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _exported(model: LoadedModel, backend: str, folder: Path, precision: str) -> LoadedModel:
    """`model` whose transformer is the export in `folder` (held locked by the caller), checked
    against the torch model."""
    transformer = model.model[0]
    hf_model: Any = transformer.model  # a Hugging Face model (checked by on_backend)
    encoder = ExportedTransformer(
        _load(backend, folder, precision), _input_names(transformer), copy.deepcopy(hf_model.config)
    )
    # a copy of the sentence-transformers model whose Hugging Face model is the export (the
    # memo hands the copy our encoder instead of copying the weights)
    swapped = copy.deepcopy(model.model, memo={id(hf_model): encoder})
    # the export's content (its manifest lists every file's sha256) keys the embeddings it makes
    loaded = replace(model, model=swapped, backend=backend, backend_key=sha256_file(folder / MANIFEST))
    _verify(model, loaded, backend, precision)
    return loaded


def _export_problem(folder: Path) -> str | None:
    """Why the export in `folder` cannot be used; None when its manifest, written last, lists
    every file there with the sha256 the file has."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return "it has no manifest (an interrupted export)"
    try:
        listed = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError):
        return "its manifest is unreadable"
    if not isinstance(listed, dict):
        return "its manifest lists no sha256 of its files (an older irtune wrote it)"
    present = {p.name for p in folder.iterdir() if p.name != MANIFEST and not p.name.startswith(".work-")}
    if unlisted := sorted(present - set(listed)):
        return f"{unlisted[0]} is not in its manifest"
    for name, digest in listed.items():
        if name not in present:
            return f"{name} is missing"
        if sha256_file_once(folder / name) != digest:
            return f"{name} does not match the sha256 its manifest records (a damaged or replaced file)"
    return None


def _empty(folder: Path) -> None:
    """Remove everything in `folder` (held locked by the caller): a damaged export's files, or
    the work folders of a killed one."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def export_key(model: LoadedModel, backend: str, calibration_key: str) -> str:
    """The weights, the max length, the backend and the versions of what traces, exports and
    runs it (another onnxruntime may quantise differently), and for static int8 what it was
    calibrated on."""
    runtime = RUNTIMES[runtime_of(backend)]
    libraries = ("torch", "transformers", "sentence-transformers", *runtime.modules)
    versions = [f"{m}={_version(m)}" for m in libraries]
    return sha256_text(
        EXPORT_FORMAT,
        model.weights_sha256,
        str(model.max_seq_length),
        backend,
        str(OPSET),
        *versions,
        calibration_key,
    )


def _version(module: str) -> str:
    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class ExportedTransformer(torch.nn.Module):
    """Stands in for the Hugging Face model inside sentence-transformers' Transformer module:
    the same tokenised inputs in, `last_hidden_state` out, computed by the exported graph."""

    def __init__(
        self, infer: Callable[[dict[str, np.ndarray]], np.ndarray], input_names: Sequence[str], config: Any
    ) -> None:
        super().__init__()
        self.infer = infer
        self.input_names = tuple(input_names)
        self.config = config
        self.device = torch.device("cpu")

    def forward(self, **features: Any) -> dict[str, torch.Tensor]:
        feeds = {name: features[name].cpu().numpy().astype(np.int64) for name in self.input_names}
        return {"last_hidden_state": torch.from_numpy(np.ascontiguousarray(self.infer(feeds)))}


def _input_names(transformer: Any) -> list[str]:
    import inspect

    accepted = set(inspect.signature(transformer.model.forward).parameters)
    names = [n for n in transformer.tokenizer.model_input_names if n in accepted]
    return names or ["input_ids", "attention_mask"]


class _LastHiddenState(torch.nn.Module):
    """The Hugging Face model with positional inputs and one output, as the exporter wants."""

    def __init__(self, model: torch.nn.Module, names: Sequence[str]) -> None:
        super().__init__()
        self.model, self.names = model, tuple(names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, inputs, strict=True))).last_hidden_state


def _export(
    model: LoadedModel, hf_model: torch.nn.Module, backend: str, folder: Path, sample: CalibrationSample
) -> None:
    """Export into `folder` (held locked by the caller); the manifest is written last, so an
    interrupted export has none and is redone."""
    transformer = model.model[0]
    names = _input_names(transformer)
    log.info("exporting %s for backend %s (once; cached in %s)", model.name, backend, folder)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".work-") as work:
        onnx_path = Path(work) / "onnx" / "model.onnx"
        onnx_path.parent.mkdir()
        features = model.model.tokenize(["an example sentence to trace", "a second, longer one to trace it"])
        was_training = hf_model.training
        wrapped = _LastHiddenState(hf_model, names).eval()
        axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
        # the tracer warns about every Python branch it freezes; _verify checks the result on
        # other shapes instead, so the warnings are noise to the user
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped,
                tuple(features[n] for n in names),
                str(onnx_path),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,  # the TorchScript exporter: no onnxscript, seconds not minutes
            )
        hf_model.train(was_training)
        # every file of the converted model: a model over 2 GB keeps its weights in
        # external-data files beside the graph
        converted = _convert(model, backend, onnx_path, Path(work) / "out", sample.texts)
        moved = sorted(p.name for p in converted.iterdir())
        for name in moved:
            os.replace(converted / name, folder / name)
        files = {name: sha256_file_once(folder / name) for name in moved}  # the manifest, written last
    write_json_atomic(
        folder / MANIFEST,
        {
            "format": EXPORT_FORMAT,
            "backend": backend,
            "model_weights_sha256": model.weights_sha256,
            "inputs": names,
            "files": files,
            "calibration_documents": len(sample.texts),
            "calibration_left_out": sample.left_out,
        },
    )


def _convert(model: LoadedModel, backend: str, onnx_path: Path, out: Path, sample: Sequence[str]) -> Path:
    """The folder holding exactly the files of the converted model."""
    if backend == "onnx":
        return onnx_path.parent
    out.mkdir()
    if backend == "onnx-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        size = sum(p.stat().st_size for p in onnx_path.parent.iterdir())
        quantize_dynamic(
            onnx_path,
            out / "model_int8.onnx",
            weight_type=QuantType.QInt8,
            per_channel=True,
            use_external_data_format=size > 1_500_000_000,  # protobuf's 2 GB limit
        )
        return out
    import openvino as ov

    ov_model = ov.Core().read_model(str(onnx_path))
    if backend == "openvino-int8":
        import nncf

        names = _input_names(model.model[0])
        batches = []
        for start in range(0, len(sample), 16):
            features = model.model.tokenize(list(sample[start : start + 16]))
            batches.append({n: features[n].numpy().astype(np.int64) for n in names})
        ov_model = nncf.quantize(
            ov_model, nncf.Dataset(batches), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(sample)
        )
    ov.save_model(ov_model, str(out / "openvino_model.xml"), compress_to_fp16=False)
    return out


def _load(backend: str, folder: Path, precision: str) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    if runtime_of(backend) == "onnx":
        import onnxruntime as ort

        name = "model_int8.onnx" if backend == "onnx-int8" else "model.onnx"
        session = ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])
        return lambda feeds: session.run(["last_hidden_state"], feeds)[0]
    import openvino as ov

    # f32 unless bf16 is asked: OpenVINO would otherwise run fp32 layers in bf16 on CPUs that have it
    hint = OPENVINO_PRECISION[precision]
    compiled = ov.Core().compile_model(
        str(folder / "openvino_model.xml"),
        "CPU",
        {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "THROUGHPUT"},
    )
    if (runs := compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()) != hint:
        raise PrecisionDrift(
            "{backend} {name}: OpenVINO runs it in {runs}, not {value} as asked; use {precision} fp32",
            name=backend,
            runs=runs,
            value=precision,
        )
    return _split_over_streams(compiled)


OPENVINO_PRECISION = {"fp32": "f32", "bf16": "bf16"}


class PrecisionDrift(ParameterError):
    """An export that is sound in fp32 but cannot run, or runs too far from torch, in the
    precision asked for."""


def _split_over_streams(compiled: Any) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """Each batch cut into one part per OpenVINO stream, run at once. Its throughput mode gives
    each stream its own cores (one each on 2 cores), where one request over all cores waits
    at every layer for the slowest; each row's numbers are the same either way."""
    import openvino as ov

    streams = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    queue = ov.AsyncInferQueue(compiled, streams)

    def infer(feeds: dict[str, np.ndarray]) -> np.ndarray:
        queue.wait_all()  # a call that raised part-way must not deliver its rows into this one
        rows = len(next(iter(feeds.values())))
        bounds = np.linspace(0, rows, min(streams, rows) + 1).astype(int).tolist()
        parts: list[np.ndarray] = [np.empty(0)] * (len(bounds) - 1)
        queue.set_callback(lambda request, i: parts.__setitem__(i, request.get_output_tensor(0).data.copy()))
        for i, (start, stop) in enumerate(itertools.pairwise(bounds)):
            queue.start_async({name: value[start:stop] for name, value in feeds.items()}, i)
        queue.wait_all()
        return np.concatenate(parts)

    return infer


def cpu_runs_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


VERIFY_TEXTS = ("a", "two short texts", "and a third, longer text than both of the others, " * 6)


def _verify(torch_model: LoadedModel, exported: LoadedModel, backend: str, precision: str) -> None:
    """An fp32 export must match torch on shapes it was not traced with (batch of 3, lengths
    from 3 to ~80 tokens), a bf16 run of it point the same way (cosine); an int8 one must at
    least produce finite vectors."""
    with torch.inference_mode():
        reference = torch_model.model.encode(list(VERIFY_TEXTS), convert_to_numpy=True)
        got = exported.model.encode(list(VERIFY_TEXTS), convert_to_numpy=True)
    if not np.isfinite(got).all():
        raise ParameterError("{backend} {name}: the export produced non-finite embeddings", name=backend)
    if backend.endswith("-int8"):
        return
    if precision == "fp32":
        gap = float(np.abs(got - reference).max())
        if not gap <= EXPORT_TOLERANCE:
            raise ParameterError(
                "{backend} {name}: the export differs from the torch model by {gap:.2g} on texts of other "
                "lengths than it was traced with (allowed {tolerance}); use {backend} torch",
                name=backend,
                gap=gap,
                tolerance=EXPORT_TOLERANCE,
            )
        return
    norms = np.linalg.norm(got, axis=1) * np.linalg.norm(reference, axis=1)
    cosine = float(((got * reference).sum(axis=1) / norms).min())
    if not cosine >= BF16_MIN_COSINE:  # NaN (a zero vector) fails too
        raise PrecisionDrift(
            "{backend} {name} in {value}: its embeddings point away from the torch model's "
            "(cosine {cosine:.4f}, allowed from {minimum}); use {precision} fp32",
            name=backend,
            value=precision,
            cosine=cosine,
            minimum=BF16_MIN_COSINE,
        )
