"""The stages of a study: hash-keyed folders with completion markers.

A stage writes under `<out_dir>/stages/<name>-<hash of its inputs>/` and marks completion with
`done.json`; a re-run skips finished stages, and `force` redoes the stages it names. A stage's
inputs are its own settings, the sha256 of every data file it reads (`StudyInputs`) and the
stamps of the stages it is built on: an edited qrels file redoes exactly the stages that read
it, and a dataset a stage does not read cannot redo it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from irtune.core.files import sha256_file, sha256_text, write_json_atomic
from irtune.data.beir import SYNTHETIC_MANIFEST, SYNTHETIC_QUERIES, BeirDataset
from irtune.data.registry import resolve_dataset
from irtune.errors import InvalidValueError
from irtune.models.loading import hub_repo_id, hub_snapshot, resolve_model_location

log = logging.getLogger(__name__)

DONE_FILE = "done.json"  # written last into a stage's folder: the stage finished


def _force_names(stage: str) -> set[str]:
    """The names that force a stage: its own, `splits` for a kind of stage done per dataset
    (`splits:NAME`), and a variant's stage over all its seeds (`train:NAME` forces
    `train:NAME@seed-1` ...)."""
    kind, _, _ = stage.partition(":")
    return {stage, stage.partition("@")[0], *([kind] if kind == "splits" else [])}


class Stages:
    """The planned stages of a run, in the order they run (and are counted). A stage built on
    another keys on its `stamp`, so redoing a stage redoes every stage built on it."""

    def __init__(self, out_dir: Path, planned: Sequence[str], force: Collection[str]) -> None:
        self.root = out_dir / "stages"
        self.planned = list(planned)
        self.force = set(force)
        known = {name for stage in self.planned for name in _force_names(stage)}
        if unknown := self.force - known:
            raise InvalidValueError(
                "{force}: unknown stage {stage!r} (stages: {stages})",
                stage=sorted(unknown)[0],
                stages=", ".join(sorted(known)),
            )

    def folder(self, name: str, inputs: Any) -> Path:
        key = sha256_text(json.dumps(inputs, sort_keys=True, default=str))[:12]
        return self.root / f"{name.replace(':', '-')}-{key}"

    def run(
        self,
        name: str,
        inputs: Any,
        work: Callable[[Path], Any],
        stale: Callable[[Path], str | None] = lambda _: None,
    ) -> Path:
        """Do `work` in the stage's folder unless it is done; a done stage for which `stale`
        gives a reason is redone."""
        number = f"{self.planned.index(name) + 1}/{len(self.planned)}"
        folder = self.folder(name, inputs)
        done = folder / DONE_FILE
        if self.force & _force_names(name) and folder.exists():
            shutil.rmtree(folder)
        if done.is_file() and (reason := stale(folder)):
            log.warning("stage %s: %s; redone", name, reason)
            shutil.rmtree(folder)
        if done.is_file():
            log.info("stage %s %s: done, skipped", number, name)
            return folder
        log.info("stage %s: %s", number, name)
        folder.mkdir(parents=True, exist_ok=True)
        work(folder)
        write_json_atomic(done, {"stage": name, "inputs": inputs, "id": uuid.uuid4().hex})
        return folder

    @staticmethod
    def stamp(folder: Path) -> str:
        """A finished stage as the keys of later stages name it: its folder and the id of the
        run that finished it. A folder name alone survives a forced redo, and the stages built
        on it were skipped with results of the old weights. (Stages finished before ids were
        recorded keep their name, so their studies are not redone.)"""
        done = json.loads((folder / DONE_FILE).read_text(encoding="utf-8"))
        return f"{folder.name}@{done['id']}" if "id" in done else folder.name


MODEL_FILES_NOT_LOADED = frozenset({"README.md"})
# the qrels an honest split plan is cut from (`make_plan`): every stage that reads a dataset
# reads them, through its split file or by planning itself
PLAN_SPLITS = ("train", "dev", "test")


class StudyInputs:
    """The datasets a study reads, each resolved once, and the sha256 of their files, each
    file hashed once per run (a corpus can be large)."""

    def __init__(self, data_dir: Path | None) -> None:
        self.data_dir = data_dir
        self._datasets: dict[str, BeirDataset] = {}
        self._sha256: dict[Path, str] = {}
        self._hub_revisions: dict[str, dict[str, str]] = {}

    def dataset(self, name: str) -> BeirDataset:
        if name not in self._datasets:
            self._datasets[name] = resolve_dataset(name, self.data_dir)
        return self._datasets[name]

    def content(self, name: str, splits: Iterable[str] = ()) -> dict[str, str]:
        """sha256 by path in the dataset folder of what a stage reads of it: the corpus, the
        queries (real and generated), and the qrels of the plan's splits and of `splits`
        that exist (a split added later changes the plan, so its absence is keyed too).

        Raw bytes by file name, not the dataset's identity (`BeirDataset.identity`): a stage key
        only detects change, and recompressing a file redoes its stages at worst."""
        dataset = self.dataset(name)
        files = [dataset.corpus_path, dataset.queries_path, dataset.root / SYNTHETIC_QUERIES]
        for split in dict.fromkeys([*PLAN_SPLITS, *splits]):
            if dataset.has_split(split):
                files.append(dataset.qrels_path(split))
                if dataset.is_synthetic(split):
                    files.append(dataset.root / SYNTHETIC_MANIFEST)
        return {str(p.relative_to(dataset.root)): self._hash(p) for p in files if p.is_file()}

    def model(self, spec: str) -> dict[str, Any]:
        """The base model as the sha256 of the files it loads from when it is a folder on this
        machine (a path, the bundled and parted aliases), else as the hub commit it loads at:
        new weights under the same name redo every stage that encoded with them. A hub id whose
        commit cannot be resolved (offline and not in the cache: loading it fails too) is keyed
        on its name. The card and training logs are left out: evaluating a model rewrites its card."""
        location = Path(resolve_model_location(spec))
        if not location.is_dir():
            if spec not in self._hub_revisions:  # one look-up per run
                self._hub_revisions[spec] = _hub_revision(spec)
            return {"spec": spec, **self._hub_revisions[spec]}
        files = sorted(
            path
            for path in location.rglob("*")
            if path.is_file()
            and path.relative_to(location).as_posix() not in MODEL_FILES_NOT_LOADED
            and not any(
                part.startswith((".", "_")) or part == "runs" for part in path.relative_to(location).parts
            )
        )
        return {
            "spec": spec,
            "files": {path.relative_to(location).as_posix(): self._hash(path) for path in files},
        }

    def _hash(self, path: Path) -> str:
        if path not in self._sha256:
            self._sha256[path] = sha256_file(path)
        return self._sha256[path]


def _hub_revision(spec: str) -> dict[str, str]:
    """The commit a hub model loads at (its cache snapshot's folder name, resolved as `load_model`
    resolves it: online, or offline from the cache), or nothing when it cannot be resolved."""
    try:
        snapshot = hub_snapshot(hub_repo_id(spec), os.environ.get("SENTENCE_TRANSFORMERS_HOME"))
    except (OSError, ValueError) as exc:
        log.warning("%s: the hub commit cannot be resolved (%s); its stages are keyed on its name", spec, exc)
        return {}
    return {"revision": snapshot.name}
