"""Cache entries are trusted by content: an export or an embedding shard is used only when the
manifest its entry wrote last lists it with the sha256 it has; anything else is rebuilt, with a
warning, never re-blessed. Static int8 calibration never sees a query's own document."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np
import pytest

from irtune.core import files as fileio
from irtune.data.beir import BeirDataset
from irtune.evaluation.runner import evaluate_dataset
from irtune.models.loading import load_model
from irtune.retrieval import backends, encode
from irtune.retrieval.settings import RetrievalSettings

from conftest import write_beir

TEXTS = ["a", "short text", "a longer text about proteins and cells " * 3]


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return load_model(str(tiny_model), device="cpu")


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _scribble(path, size: int = 512) -> Callable[[], None]:
    """Random bytes written into the middle of `path` (inside the weights; its length unchanged);
    returns what puts the file back as it was."""
    data = path.read_bytes()
    offset = len(data) // 2
    path.write_bytes(data[:offset] + np.random.default_rng(0).bytes(size) + data[offset + size :])
    return lambda: path.write_bytes(data)


def _export_folder(tmp_path, model, backend):
    return tmp_path / "exports" / backends.export_key(model, backend, "")


@pytest.mark.parametrize(
    ("backend", "damaged"),
    [("onnx", "model.onnx"), ("openvino", "openvino_model.bin"), ("openvino", "openvino_model.xml")],
)
def test_an_export_with_random_bytes_inside_is_rebuilt_with_a_warning(
    backend, damaged, tiny, tmp_path, caplog
):
    backends.on_backend(tiny, backend, cache_dir=tmp_path)
    folder = _export_folder(tmp_path, tiny, backend)
    target = folder / damaged
    _scribble(target)
    with caplog.at_level("WARNING", logger="irtune"):
        again = backends.on_backend(tiny, backend, cache_dir=tmp_path)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(target.name in m and "exporting it again" in m for m in warned), warned
    assert np.abs(again.model.encode(TEXTS) - tiny.model.encode(TEXTS)).max() < 1e-4
    listed = json.loads((folder / "manifest.json").read_text())["files"]
    assert listed[target.name] == _sha256(target)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda folder: (folder / "stray.bin").write_bytes(b"x"), "stray.bin is not in its manifest"),
        (lambda folder: (folder / "model.onnx").unlink(), "model.onnx is missing"),
        (
            lambda folder: (folder / "manifest.json").write_text(json.dumps({"files": ["model.onnx"]})),
            "its manifest lists no sha256 of its files",
        ),
    ],
    ids=["unlisted-file", "missing-file", "manifest-without-hashes"],
)
def test_an_export_its_manifest_does_not_vouch_for_is_rebuilt(damage, problem, tiny, tmp_path, caplog):
    backends.on_backend(tiny, "onnx", cache_dir=tmp_path)
    folder = _export_folder(tmp_path, tiny, "onnx")
    damage(folder)
    with caplog.at_level("WARNING", logger="irtune"):
        backends.on_backend(tiny, "onnx", cache_dir=tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.onnx"]
    assert manifest["files"] == {"model.onnx": _sha256(folder / "model.onnx")}
    assert any(problem in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_embeddings_are_keyed_on_the_exports_content_not_its_name(tiny, scifact_slice, tmp_path):
    """The repro: an int8 export with random bytes inside encodes the corpus; once the file is
    restored, the embeddings it produced must not be reused."""
    texts = [d.full_text() for d in BeirDataset(scifact_slice).corpus.values()][:80]
    clean = backends.on_backend(tiny, "onnx-int8", cache_dir=tmp_path / "clean")
    reference = encode.encode_corpus_cached(clean, texts, "k", tmp_path / "clean", chunk_size=64).to_array()
    folder = tmp_path / "clean" / "exports" / backends.export_key(tiny, "onnx-int8", "")

    cache = tmp_path / "cache"
    backends.on_backend(tiny, "onnx-int8", cache_dir=cache)
    target = cache / "exports" / folder.name / "model_int8.onnx"
    restore = _scribble(target)
    damaged = backends.on_backend(tiny, "onnx-int8", cache_dir=cache)
    first = encode.encode_corpus_cached(damaged, texts, "k", cache, chunk_size=64).to_array()
    restore()
    restored = backends.on_backend(tiny, "onnx-int8", cache_dir=cache)
    second = encode.encode_corpus_cached(restored, texts, "k", cache, chunk_size=64).to_array()
    assert np.array_equal(first, reference) and np.array_equal(second, reference)
    assert restored.backend_key == clean.backend_key == _sha256(folder / "manifest.json")


def _encode(model, texts, cache_dir, **kwargs):
    return encode.encode_corpus_cached(model, texts, "key", cache_dir, chunk_size=64, **kwargs)


REAL_ENCODE_TEXTS = encode.encode_texts


class Stopped(Exception):
    pass


def _counting(monkeypatch, fail_at: int | None = None) -> list[int]:
    calls: list[int] = []
    real = REAL_ENCODE_TEXTS

    def counted(model, texts, *args, **kwargs):
        if fail_at is not None and len(calls) == fail_at:
            raise Stopped  # the user stops the encode, or the machine goes down
        calls.append(len(texts))
        return real(model, texts, *args, **kwargs)

    monkeypatch.setattr(encode, "encode_texts", counted)
    return calls


@pytest.fixture(scope="module")
def slice_texts(scifact_slice):
    return [d.full_text() for d in BeirDataset(scifact_slice).corpus.values()]


def test_a_zeroed_shard_without_its_sidecar_is_encoded_again_not_re_blessed(
    tiny, slice_texts, cache_dir, monkeypatch, caplog
):
    """The repro: zeroed vectors and their `.sha256` sidecar deleted were trusted (NDCG@10 0)."""
    first = _encode(tiny, slice_texts, cache_dir)
    reference = first.to_array()
    chunk = sorted(first.folder.glob("chunk_*.npy"))[1]
    np.save(chunk, np.zeros_like(np.load(chunk)))
    chunk.with_name(chunk.name + ".sha256").unlink(missing_ok=True)
    fileio.hashed_files.clear()  # a new process
    calls = _counting(monkeypatch)
    with caplog.at_level("WARNING", logger="irtune"):
        again = _encode(tiny, slice_texts, cache_dir).to_array()
    assert calls == [64] and np.abs(again - reference).max() < 1e-5
    assert any(chunk.name in r.getMessage() and "encoding it again" in r.getMessage() for r in caplog.records)
    listed = json.loads((first.folder / "manifest.json").read_text())["chunks"]
    assert listed[chunk.name] == _sha256(chunk)


def test_a_shard_the_manifest_does_not_list_is_encoded_again(tiny, slice_texts, cache_dir, monkeypatch):
    first = _encode(tiny, slice_texts, cache_dir)
    manifest = first.folder / "manifest.json"
    doc = json.loads(manifest.read_text())
    dropped = sorted(doc["chunks"])[0]
    del doc["chunks"][dropped]
    manifest.write_text(json.dumps(doc))
    fileio.hashed_files.clear()
    calls = _counting(monkeypatch)
    _encode(tiny, slice_texts, cache_dir)
    assert calls == [64]
    assert json.loads(manifest.read_text())["chunks"][dropped] == _sha256(first.folder / dropped)


def test_an_interrupted_encode_resumes_from_its_journal(tiny, slice_texts, cache_dir, monkeypatch):
    """Each finished shard is recorded in the manifest as it is written, so a stopped encode
    resumes; the resumed entry equals an uninterrupted one."""
    calls = _counting(monkeypatch, fail_at=2)
    with pytest.raises(Stopped):
        _encode(tiny, iter(slice_texts), cache_dir, count=len(slice_texts))
    key = encode.cache_key(tiny, tiny.prompts.document, "fp32", "key")
    folder = cache_dir / "embeddings" / key
    listed = json.loads((folder / "manifest.json").read_text())["chunks"]
    assert sorted(listed) == ["chunk_00000_64.npy", "chunk_00001_64.npy"]
    fileio.hashed_files.clear()
    calls = _counting(monkeypatch)
    resumed = _encode(tiny, slice_texts, cache_dir).to_array()
    n_chunks = (len(slice_texts) + 63) // 64
    assert len(calls) == n_chunks - 2
    assert np.abs(resumed - _encode(tiny, slice_texts, cache_dir / "fresh").to_array()).max() < 1e-6
    assert len(json.loads((folder / "manifest.json").read_text())["chunks"]) == n_chunks


def test_static_int8_calibration_leaves_out_the_documents_of_queries(tiny_model, tmp_path, monkeypatch):
    """Quora style: queries are documents too (by id, or by the same text under another id)."""
    corpus = {f"d{i}": {"text": f"Question {i}: how does subject {i % 5} work?"} for i in range(40)}
    queries = {
        "d1": "Question 1: how does subject 1 work?",  # its own document shares its id
        "q2": "QUESTION 2 -- how does Subject 2 work",  # the same normalised text, another id
        "q3": "something nobody wrote down",
    }
    data = write_beir(tmp_path / "ds", corpus, queries, {"test": {q: {"d4": 1} for q in queries}})
    calibrated: list[list[str]] = []
    real = backends._convert

    def spy(model, backend, onnx_path, out, sample):
        calibrated.append(list(sample))
        return real(model, backend, onnx_path, out, sample)

    monkeypatch.setattr(backends, "_convert", spy)
    model = load_model(str(tiny_model), device="cpu")
    settings = RetrievalSettings(backend="openvino-int8", cache_dir=tmp_path / "cache")
    evaluate_dataset(BeirDataset(data), settings, model)
    (sample,) = calibrated
    assert sorted(sample) == sorted(
        f"Question {i}: how does subject {i % 5} work?" for i in range(40) if i not in (1, 2)
    )
    (manifest,) = (tmp_path / "cache" / "exports").glob("*/manifest.json")
    doc = json.loads(manifest.read_text())
    assert doc["calibration_documents"] == 38 and doc["calibration_left_out"] == 2


def test_an_unchanged_export_is_hashed_once_per_process(tiny, tmp_path, monkeypatch):
    """Old code re-hashed the whole export (hundreds of MB) on every `on_backend` call; a file
    changed in place is hashed again (its mtime moves), so damage is still found."""
    backends.on_backend(tiny, "onnx", cache_dir=tmp_path)
    hashed: list[str] = []
    real = fileio.sha256_file
    monkeypatch.setattr(fileio, "sha256_file", lambda path: hashed.append(path.name) or real(path))
    backends.on_backend(tiny, "onnx", cache_dir=tmp_path)
    backends.on_backend(tiny, "onnx", cache_dir=tmp_path)
    assert "model.onnx" not in hashed
    _scribble(_export_folder(tmp_path, tiny, "onnx") / "model.onnx")()  # rewritten: same bytes, new mtime
    backends.on_backend(tiny, "onnx", cache_dir=tmp_path)
    assert hashed.count("model.onnx") == 1


def _vouch_for_damage(folder, damaged: str, garbage: bool) -> None:
    """Damage `damaged` and rewrite the manifest to vouch for it (a sync tool or a copy that
    rewrote both, or a damage this process's hash cache has not seen)."""
    target = folder / damaged
    if garbage:
        target.write_bytes(b"\x08\x07not a protobuf" * 40)
    else:  # weights of the same size, all zero
        target.write_bytes(bytes(target.stat().st_size))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][damaged] = _sha256(target)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    fileio.hashed_files.clear()


@pytest.mark.parametrize(
    ("backend", "damaged", "garbage"),
    [("onnx-int8", "model_int8.onnx", True), ("openvino", "openvino_model.bin", False)],
    ids=["int8-not-a-protobuf", "openvino-zeroed-weights"],
)
def test_an_export_that_fails_to_load_or_verify_is_rebuilt_with_a_warning(
    backend, damaged, garbage, tiny, tmp_path, caplog
):
    before = backends.on_backend(tiny, backend, cache_dir=tmp_path).model.encode(TEXTS)
    folder = _export_folder(tmp_path, tiny, backend)
    _vouch_for_damage(folder, damaged, garbage)
    with caplog.at_level("WARNING", logger="irtune"):
        again = backends.on_backend(tiny, backend, cache_dir=tmp_path)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(str(folder) in m and "exporting it again" in m for m in warned), warned
    assert np.array_equal(again.model.encode(TEXTS), before)
    assert json.loads((folder / "manifest.json").read_text())["files"][damaged] == _sha256(folder / damaged)
