"""Encoding backends: ONNX Runtime and OpenVINO exports of the tiny model (fp32 and int8),
checked against the torch model, cached by key, recorded in results, and refused cleanly
when their packages are missing or the settings do not fit."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from irtune.cli.app import flag_names
from irtune.core.files import sha256_file
from irtune.data.leakage import text_fingerprint
from irtune.errors import IrtuneError, ParameterError
from irtune.models.loading import load_model
from irtune.results.compare import compare
from irtune.retrieval import backends
from irtune.retrieval.encode import cache_key
from irtune.retrieval.settings import RetrievalSettings

from conftest import assert_one_line_error, irtune, write_beir

TEXTS = [
    "a",
    "short text",
    "a somewhat longer text about proteins and cells " * 3,
    "the longest of them all, " * 20,
]
EXPORTED = ("onnx", "onnx-int8", "openvino", "openvino-int8")


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return load_model(str(tiny_model), device="cpu")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


@pytest.mark.parametrize("backend", EXPORTED)
def test_an_export_encodes_like_the_torch_model_and_is_made_once(backend, tiny, tmp_path, monkeypatch):
    documents = [f"document {i} about topic {i % 7}" for i in range(40)]
    calibration = backends.Calibration("corpus-1", lambda: backends.CalibrationSample(documents, 0))
    exported = backends.on_backend(tiny, backend, cache_dir=tmp_path, calibration=calibration)
    assert exported.backend == backend and exported.backend_key
    assert tiny.backend == "torch" and tiny.model[0].model is not exported.model[0].model  # not mutated
    reference = tiny.model.encode(TEXTS)
    got = exported.model.encode(TEXTS)
    assert got.shape == reference.shape
    if backend.endswith("-int8"):
        assert not np.allclose(got, reference, atol=1e-5)  # int8 really ran
        assert _cosines(got, reference).min() > 0.9
    else:
        assert np.abs(got - reference).max() < 1e-4
    folder = (
        tmp_path
        / "exports"
        / backends.export_key(tiny, backend, "corpus-1" if backend == "openvino-int8" else "")
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["backend"] == backend and manifest["model_weights_sha256"] == tiny.weights_sha256
    assert sorted(p.name for p in folder.iterdir()) == sorted(["manifest.json", *manifest["files"]])
    assert all(sha256_file(folder / name) == digest for name, digest in manifest["files"].items())
    assert exported.backend_key == sha256_file(folder / "manifest.json")  # the export's content
    assert manifest["calibration_documents"] == (40 if backend == "openvino-int8" else 0)

    def no_second_export(*args, **kwargs):
        raise AssertionError("exported twice")

    monkeypatch.setattr(backends.torch.onnx, "export", no_second_export)
    again = backends.on_backend(tiny, backend, cache_dir=tmp_path, calibration=calibration)
    assert again.backend_key == exported.backend_key
    assert np.array_equal(again.model.encode(TEXTS), got)


@pytest.mark.parametrize("backend", ["openvino", "openvino-int8"])
def test_openvino_in_bf16_uses_the_same_export_and_computes_in_bf16(backend, tiny, tmp_path, monkeypatch):
    """bf16 is how OpenVINO runs the export (one export for both), and it changes the numbers:
    recorded as its own precision and cached apart; a CPU without bf16 is refused, since
    OpenVINO would silently run fp32 there."""
    documents = [f"document {i} about topic {i % 7}" for i in range(40)]
    calibration = backends.Calibration("corpus-1", lambda: backends.CalibrationSample(documents, 0))
    fp32 = backends.on_backend(tiny, backend, cache_dir=tmp_path, calibration=calibration)
    if not backends.cpu_runs_bf16():
        with pytest.raises(ParameterError, match="needs a CPU with bf16 instructions"):
            backends.on_backend(tiny, backend, cache_dir=tmp_path, calibration=calibration, precision="bf16")
        return
    bf16 = backends.on_backend(tiny, backend, cache_dir=tmp_path, calibration=calibration, precision="bf16")
    assert bf16.backend_key == fp32.backend_key  # the same export
    reference, got = fp32.model.encode(TEXTS), bf16.model.encode(TEXTS)
    assert not np.allclose(got, reference, atol=1e-5)  # bf16 really ran
    assert _cosines(got, reference).min() > 0.99
    assert cache_key(bf16, "", "bf16", "corpus") != cache_key(fp32, "", "fp32", "corpus")
    monkeypatch.setattr(backends, "cpu_runs_bf16", lambda: False)
    with pytest.raises(
        ParameterError, match=r"precision bf16 with backend .* lacks: OpenVINO would run fp32"
    ):
        backends.on_backend(tiny, backend, cache_dir=tmp_path, calibration=calibration, precision="bf16")


def test_a_batch_split_over_openvino_streams_encodes_each_row_as_alone(tiny, tmp_path):
    """Rows are cut into one part per stream and put back in order: any batch size, down to one."""
    exported = backends.on_backend(tiny, "openvino", cache_dir=tmp_path)
    texts = [f"text number {i} " * (1 + i % 9) for i in range(13)]
    whole = exported.model.encode(texts, batch_size=13)
    one_by_one = np.concatenate([exported.model.encode([t], batch_size=1) for t in texts])
    assert np.abs(whole - one_by_one).max() < 1e-5
    assert np.abs(whole - tiny.model.encode(texts, batch_size=13)).max() < 1e-4


def test_the_cache_keys_name_the_backend_the_weights_and_the_calibration(tiny, tmp_path):
    onnx = backends.export_key(tiny, "onnx", "")
    assert (
        len({onnx, backends.export_key(tiny, "onnx-int8", ""), backends.export_key(tiny, "openvino", "")})
        == 3
    )
    assert backends.export_key(tiny, "openvino-int8", "a") != backends.export_key(tiny, "openvino-int8", "b")
    other = load_model(str(tiny.location), device="cpu")
    other.weights_sha256 = "0" * 64
    assert backends.export_key(other, "onnx", "") != onnx
    shorter = load_model(str(tiny.location), device="cpu", max_seq_length=16)  # calibrates on other tokens
    assert backends.export_key(shorter, "onnx", "") != onnx
    # the embedding cache: torch and each export encode into their own entries
    exported = backends.on_backend(tiny, "onnx", cache_dir=tmp_path)
    assert cache_key(tiny, "", "fp32", "corpus") != cache_key(exported, "", "fp32", "corpus")
    assert cache_key(tiny, "", "fp32", "corpus") == cache_key(
        load_model(str(tiny.location)), "", "fp32", "corpus"
    )


def test_a_cached_static_int8_export_does_not_read_the_corpus_again(tiny, tmp_path):
    read = []

    def documents():
        read.append(1)
        return backends.CalibrationSample([f"document {i}" for i in range(20)], 0)

    calibration = backends.Calibration("corpus-1", documents)
    first = backends.on_backend(tiny, "openvino-int8", cache_dir=tmp_path, calibration=calibration)
    again = backends.on_backend(tiny, "openvino-int8", cache_dir=tmp_path, calibration=calibration)
    assert read == [1] and again.backend_key == first.backend_key


def test_export_failures_are_one_line_and_leave_nothing_that_looks_finished(tiny, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("Unsupported: ONNX export of operator foo\ndetails")

    monkeypatch.setattr(backends.torch.onnx, "export", broken)
    with pytest.raises(
        ParameterError, match=r"^backend onnx: exporting .* failed \(Unsupported: ONNX export"
    ) as caught:
        backends.on_backend(tiny, "onnx", cache_dir=tmp_path)
    assert str(caught.value).endswith("; use backend torch")
    assert caught.value.naming(flag_names(["eval"])).startswith("--backend onnx: exporting")
    folder = tmp_path / "exports" / backends.export_key(tiny, "onnx", "")
    assert not (folder / "manifest.json").exists() and not list(folder.glob(".work-*"))


def test_an_export_missing_a_file_its_manifest_names_is_redone(tiny, tmp_path):
    backends.on_backend(tiny, "onnx", cache_dir=tmp_path)
    folder = tmp_path / "exports" / backends.export_key(tiny, "onnx", "")
    (folder / "model.onnx").unlink()
    (folder / ".work-stale").mkdir()  # a killed export's leftovers
    again = backends.on_backend(tiny, "onnx", cache_dir=tmp_path)
    assert (folder / "model.onnx").is_file() and not (folder / ".work-stale").exists()
    assert np.abs(again.model.encode(TEXTS) - tiny.model.encode(TEXTS)).max() < 1e-4


def test_a_cpu_backend_loads_the_model_on_the_cpu_unless_told_otherwise():
    from irtune.retrieval.settings import ModelOptions

    assert ModelOptions().for_backend("onnx").device == "cpu"
    assert ModelOptions(device="cpu:0").for_backend("onnx").device == "cpu:0"
    assert ModelOptions().for_backend("torch").device is None  # torch picks the accelerator


def test_the_calibration_sample_is_seeded_and_read_from_a_stream():
    documents = [(f"d{i}", f"doc {i}") for i in range(1000)]
    first = backends.calibration_sample(iter(documents), len(documents))
    assert len(first.texts) == backends.CALIBRATION_SIZE and first.left_out == 0
    assert first == backends.calibration_sample(documents, 1000)
    assert first.texts == sorted(first.texts, key=lambda text: int(text.split()[1]))  # corpus order
    assert backends.calibration_sample(documents[:10], 10).texts == [text for _, text in documents[:10]]


def test_the_calibration_sample_replaces_the_documents_of_queries_it_would_have_drawn():
    documents = [(f"d{i}", f"Doc {i}") for i in range(1000)]
    drawn = backends.calibration_sample(documents, 1000).texts
    by_id, by_text = drawn[0], drawn[1]  # two documents the plain draw holds
    ids = frozenset({f"d{by_id.split()[1]}"})
    fingerprints = frozenset({text_fingerprint(by_text.upper() + "!")})
    sample = backends.calibration_sample(documents, 1000, ids, fingerprints)
    assert sample.left_out == 2 and len(sample.texts) == backends.CALIBRATION_SIZE
    assert set(drawn) - set(sample.texts) == {by_id, by_text}  # the rest of the draw is kept


def test_an_export_that_differs_from_torch_is_refused(tiny, tmp_path, monkeypatch):
    """The check that catches a trace which baked in the shapes it was traced with."""
    real_load = backends._load

    def drifting(backend, folder, precision):
        infer = real_load(backend, folder, precision)
        return lambda feeds: infer(feeds) + 0.01 * feeds["input_ids"].shape[1]

    monkeypatch.setattr(backends, "_load", drifting)
    with pytest.raises(IrtuneError, match="differs from the torch model"):
        backends.on_backend(tiny, "onnx", cache_dir=tmp_path)


def test_a_bf16_run_that_drifts_is_refused_without_exporting_again(tiny, tmp_path, monkeypatch):
    """A sound fp32 export whose bf16 run points elsewhere, or that OpenVINO will not run in
    bf16, is refused in one line naming the precision; the export is kept, not redone."""
    if not backends.cpu_runs_bf16():
        pytest.skip("this CPU has no bf16: refused before loading (test_openvino_in_bf16_...)")
    backends.on_backend(tiny, "openvino", cache_dir=tmp_path)  # sound in fp32
    real_load = backends._load

    def drifting(backend, folder, precision):
        infer = real_load(backend, folder, precision)
        return lambda feeds: -infer(feeds) if precision == "bf16" else infer(feeds)

    def no_second_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(backends.torch.onnx, "export", no_second_export)
    monkeypatch.setattr(backends, "_load", drifting)
    with pytest.raises(
        IrtuneError, match=r"^backend openvino in bf16: its embeddings point away .* use precision fp32$"
    ):
        backends.on_backend(tiny, "openvino", cache_dir=tmp_path, precision="bf16")
    monkeypatch.setattr(backends, "_load", real_load)
    import openvino as ov

    compile_model = ov.Core.compile_model

    def ignores_the_hint(self, model, device, config):
        return compile_model(self, model, device, {**config, "INFERENCE_PRECISION_HINT": "f32"})

    monkeypatch.setattr(ov.Core, "compile_model", ignores_the_hint)
    with pytest.raises(IrtuneError, match=r"OpenVINO runs it in f32, not bf16 as asked; use precision fp32"):
        backends.on_backend(tiny, "openvino", cache_dir=tmp_path, precision="bf16")


def test_an_interrupted_export_is_redone(tiny, tmp_path):
    key = backends.export_key(tiny, "onnx", "")
    folder = tmp_path / "exports" / key
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"half an export")  # no manifest: never finished
    exported = backends.on_backend(tiny, "onnx", cache_dir=tmp_path)
    assert np.abs(exported.model.encode(TEXTS) - tiny.model.encode(TEXTS)).max() < 1e-4


def test_eval_records_the_backend_and_compare_says_it_differs(tiny_model, tmp_path):
    data = write_beir(
        tmp_path / "ds",
        {f"d{i}": {"text": f"document {i} on subject {i % 5}"} for i in range(30)},
        {f"q{i}": f"subject {i % 5}" for i in range(6)},
        {"test": {f"q{i}": {f"d{i}": 1} for i in range(6)}},
    )
    common = ["eval", "-m", str(tiny_model), "-d", str(data), "--cache-dir", str(tmp_path / "cache")]
    for backend in ("torch", "onnx-int8"):
        done = irtune(*common, "--backend", backend, "--out", str(tmp_path / backend))
        assert done.returncode == 0, done.stderr
    torch_run = json.loads((tmp_path / "torch" / "results.json").read_text())
    int8_run = json.loads((tmp_path / "onnx-int8" / "results.json").read_text())
    assert torch_run["retriever"]["params"]["backend"] == "torch"
    assert int8_run["retriever"]["params"]["backend"] == "onnx-int8"
    assert int8_run["retriever"]["precision"] == "int8"
    from irtune.results.schema import ResultsFile

    candidate = ResultsFile.model_validate(int8_run)
    assert "onnx-int8 backend" in candidate.retriever.label()
    comparison = compare(ResultsFile.model_validate(torch_run), candidate)
    assert any("backend differs (baseline torch, candidate onnx-int8)" in c for c in comparison.caveats)
    assert (tmp_path / "cache" / "exports").is_dir()  # beside the embedding cache


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--backend", "tensorrt"],
            "--backend must be one of torch, onnx, onnx-int8, openvino, openvino-int8",
        ),
        (
            ["--backend", "onnx", "--precision", "bf16"],
            "--precision bf16 applies to --backend torch (and bf16 to the openvino backends)",
        ),
        (["--backend", "openvino", "--precision", "fp16"], "--precision fp16 applies to --backend torch"),
        (["--backend", "onnx", "--devices", "cpu,cpu"], "--devices applies to --backend torch"),
        (["--backend", "openvino", "--retriever", "bm25"], "--retriever bm25 encodes nothing"),
    ],
)
def test_settings_that_do_not_fit_a_backend_are_one_line(extra, message, tmp_path):
    data = write_beir(tmp_path / "ds", {"d1": {"text": "x"}}, {"q1": "y"}, {"test": {"q1": {"d1": 1}}})
    assert_one_line_error(irtune("eval", "-m", "minilm", "-d", str(data), *extra), message)


def test_an_accelerator_with_a_cpu_backend_is_refused_before_loading(tmp_path, monkeypatch):
    """(This machine has no GPU, so the device check itself is stubbed to accept "cuda".)"""
    import irtune
    from irtune.core import checks

    monkeypatch.setattr(checks, "device", lambda option, name: None)
    data = write_beir(tmp_path / "ds", {"d1": {"text": "x"}}, {"q1": "y"}, {"test": {"q1": {"d1": 1}}})
    with pytest.raises(ParameterError) as caught:
        irtune.evaluate("minilm", [str(data)], device="cuda", backend="onnx")
    assert str(caught.value) == "backend onnx runs on the CPU, not cuda; drop device"
    assert (
        caught.value.naming(flag_names(["eval"])) == "--backend onnx runs on the CPU, not cuda; drop --device"
    )


def test_backend_errors_of_a_loaded_model_name_parameters(tiny, tmp_path, monkeypatch):
    with pytest.raises(ParameterError) as caught:
        backends.on_backend(tiny, "tensorrt", cache_dir=tmp_path)
    assert str(caught.value) == (
        "backend must be one of torch, onnx, onnx-int8, openvino, openvino-int8, not 'tensorrt'"
    )
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(ParameterError) as caught:
        backends.require("onnx-int8")
    assert str(caught.value) == (
        "backend onnx-int8 needs the package 'onnxruntime', which is not installed: "
        "pip install 'irtune[onnx]'"
    )


BLOCKED = """
import sys
sys.modules[{module!r}] = None  # as if the package were not installed
from irtune.cli.app import main
sys.argv = ["irtune", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(
    ("backend", "module", "extra"),
    [("onnx-int8", "onnxruntime", "onnx"), ("openvino", "openvino", "openvino")],
)
def test_a_backend_that_is_not_installed_is_one_line_before_the_model_loads(backend, module, extra, tmp_path):
    data = write_beir(tmp_path / "ds", {"d1": {"text": "x"}}, {"q1": "y"}, {"test": {"q1": {"d1": 1}}})
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCKED.format(module=module),
            "eval",
            "-m",
            "minilm",
            "-d",
            str(data),
            "--backend",
            backend,
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert_one_line_error(done, f"--backend {backend} needs the package {module!r}, which is not installed")
    assert f"pip install 'irtune[{extra}]'" in done.stderr
    assert not (tmp_path / "out").exists()


def test_settings_default_to_torch():
    assert RetrievalSettings().backend == "torch"


def test_the_recorded_precision_says_what_an_int8_export_runs_the_rest_in(tiny):
    from irtune.retrieval.dense import DenseRetriever

    def recorded(backend: str, precision: str) -> str | None:
        return DenseRetriever(tiny, backend=backend, precision=precision).describe().precision

    assert recorded("openvino-int8", "fp32") == "int8"
    assert recorded("openvino-int8", "bf16") == "int8+bf16"
    assert recorded("openvino", "bf16") == "bf16"
