"""Known BEIR datasets (official zip URL and checksum) and dataset-name resolution."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_cache_dir

from irtune.core import checks
from irtune.data.beir import BeirDataset
from irtune.errors import IrtuneError, ParameterError

BEIR_BASE_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"
DATA_DIR_ENV = "IRTUNE_DATA_DIR"


@dataclass(frozen=True)
class KnownDataset:
    name: str
    md5: str  # of the official zip, from BEIR's examples/dataset/md5.csv

    @property
    def url(self) -> str:
        return f"{BEIR_BASE_URL}/{self.name}.zip"


KNOWN_DATASETS: dict[str, KnownDataset] = {
    d.name: d
    for d in (
        KnownDataset("scifact", "5f7d1de60b170fc8027bb7898e2efca1"),
        KnownDataset("nfcorpus", "a89dba18a62ef92f7d323ec890a0d38d"),
        KnownDataset("scidocs", "38121350fc3a4d2f48850f6aff52e4a9"),
        KnownDataset("quora", "18fb154900ba42a600f84b839c173167"),
        KnownDataset("arguana", "8ad3e3c2a5867cdced806d6503f29b99"),
        KnownDataset("fiqa", "17918ed23cd04fb15047f73e6c3bd9d9"),
        KnownDataset("trec-covid", "ce62140cb23feb9becf6270d0d1fe6d1"),
        KnownDataset("nq", "d4d3d2e48787a744b6f6e691ff534307"),
        KnownDataset("hotpotqa", "f412724f78b0d91183a0e86805e16114"),
        KnownDataset("webis-touche2020", "6e29ac6c57e2d227fb57501872cac45f"),
        KnownDataset("dbpedia-entity", "c2a39eb420a3164af735795df012ac2c"),
        KnownDataset("fever", "88591ef8eb2913126d0c93ecbde6285f"),
        KnownDataset("climate-fever", "8b66f0a9126c521bae2bde127b4dc99d"),
        KnownDataset("msmarco", "444067daf65d982533ea17ebd59501e4"),
    )
}


def default_data_dir() -> Path:
    """`$IRTUNE_DATA_DIR`, else the user's cache folder."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else Path(user_cache_dir("irtune")) / "beir"


def resolve_dataset(name_or_path: str, data_dir: Path | None = None, strict: bool = False) -> BeirDataset:
    """A dataset given as a folder path, or by name under the data dir. A bare name that is
    both a folder in the working directory and a dataset under the data dir is refused: which
    files are read must not depend on where the command runs (content, not names)."""
    checks.path_fits("dataset", name_or_path)
    as_path = Path(name_or_path).expanduser()
    if as_path.is_dir() and not _data_dir_dataset(name_or_path, as_path, data_dir):
        return BeirDataset(as_path, strict=strict)
    if name_or_path.startswith((".", "/", "~")):
        raise IrtuneError(f"{name_or_path}: dataset folder not found")
    checks.dataset_name(name_or_path)
    base = data_dir or default_data_dir()
    candidate = base / name_or_path
    if candidate.is_dir():
        return BeirDataset(candidate, name=name_or_path, strict=strict)
    hint = (
        f"run `irtune data fetch {name_or_path}`"
        if name_or_path in KNOWN_DATASETS
        else "give a BEIR folder path"
    )
    raise ParameterError(
        'dataset "{name}" not found in {base} ({hint}, or set {data_dir} / {variable})',
        name=name_or_path,
        base=base,
        hint=hint,
        variable=DATA_DIR_ENV,
    )


def _data_dir_dataset(name: str, folder: Path, data_dir: Path | None) -> bool:
    """Whether a bare `name` that is also the folder `folder` here means the data dir's dataset
    (the folder here is no dataset); refused when both are datasets."""
    if name.startswith((".", "/", "~")) or len(Path(name).parts) != 1:
        return False  # written as a path
    named = (data_dir or default_data_dir()) / name
    if not named.is_dir() or named.resolve() == folder.resolve():
        return False
    if any((folder / f"corpus.jsonl{suffix}").is_file() for suffix in ("", ".gz")):
        raise IrtuneError(
            f'dataset "{name}" names both the folder ./{name} and the dataset {named}: '
            f"write ./{name} for the folder, or the dataset's full path"
        )
    return True
