"""Generate the `synthetic` split of a dataset: one query per sampled document, filtered,
written beside the real queries as one folder (`synthetic/queries.jsonl`, `qrels.tsv`,
`manifest.json`) that replaces the previous one whole; one made with other settings (and the
journals of other settings, paid replies) only with `force`.

Resumable: every raw generation is appended (and fsynced) to a journal under
`.irtune-generate/`, keyed by corpus content, generator and prompt, as soon as it arrives (a
Ctrl-C in the middle of a batch loses none); a rerun skips the documents the journal holds, so
an interrupted run continues where it stopped and a rerun with a larger sample only generates
the new documents.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from irtune.core import checks
from irtune.core.files import sha256_text
from irtune.core.locks import folder_lock
from irtune.core.progress import progress_bar
from irtune.data.beir import (
    GENERATION_JOURNALS,
    SYNTHETIC_DIR,
    SYNTHETIC_MANIFEST,
    SYNTHETIC_QRELS,
    SYNTHETIC_QUERIES,
    BeirDataset,
)
from irtune.data.beir_writer import qrels_lines, query_lines, write_files
from irtune.data.leakage import text_fingerprint
from irtune.data.splits import make_plan
from irtune.errors import DataError, InvalidValueError, IrtuneError, ParameterError
from irtune.generation.backends import Generator
from irtune.generation.filters import FilterSettings, QueryFilter, clean_generation
from irtune.generation.prompts import Example, PromptBuilder, build_prompt

log = logging.getLogger(__name__)

SYNTHETIC_FORMAT = "irtune-synthetic-v1"


@dataclass(frozen=True)
class GenerationRequest:
    sample: int | None = None  # documents to generate for (seeded sample); None: all
    seed: int = 13
    few_shot: int = 3  # real training pairs shown as examples, when the dataset has any
    domain: str = "general"
    prompt_file: Path | None = None
    round_trip_k: int = 10  # keep a query only if its document is in the base model's top k; 0: off
    filters: FilterSettings = field(default_factory=FilterSettings)
    restart: bool = False  # forget the journal: generate every document again
    force: bool = False  # replace a split of other settings, deleting the journals of other settings

    def __post_init__(self) -> None:
        checks.at_least("sample", self.sample, 1)
        checks.at_least("few_shot", self.few_shot, 0)
        checks.at_least("round_trip_k", self.round_trip_k, 0)
        low, high = self.filters.min_words, self.filters.max_words
        checks.at_least("min_words", low, 1)
        if low > high:
            raise InvalidValueError(
                "{min_words} must be at most {max_words} ({low} > {high})", low=low, high=high
            )


class SyntheticManifest(BaseModel):
    format: str = SYNTHETIC_FORMAT
    dataset: str
    created: str
    irtune_version: str
    corpus_sha256: str
    generator: dict[str, Any]
    prompt: dict[str, Any]
    sample: int | None
    seed: int
    documents: int = Field(description="documents a query was generated for")
    kept: int
    keep_rate: float
    dropped: dict[str, int] = Field(description="reason -> generations left out")
    filters: dict[str, Any]
    round_trip: dict[str, Any] | None
    generation: dict[str, float] = Field(description="seconds and documents/s of the generation itself")


def sample_documents(dataset: BeirDataset, sample: int | None, seed: int) -> list[str]:
    """Document ids to generate for, in corpus order: all, or the `sample` with the smallest
    seeded hash, so a larger sample holds a smaller one (a rerun generates only the new ones)."""
    ids = [d for d, doc in dataset.corpus.items() if doc.full_text()]
    if sample is None or sample >= len(ids):
        return ids
    chosen = set(sorted(ids, key=lambda d: sha256_text(str(seed), d))[:sample])
    return [d for d in ids if d in chosen]


def few_shot_examples(dataset: BeirDataset, count: int, seed: int) -> list[Example]:
    """Real (query, relevant document) pairs the model may see: from the training part of the
    dataset's default honest plan (or its train split when nothing is evaluated). Training on
    the generated queries counts these as seen, so a plan that evaluates or selects on one of
    them is refused or the query left out of selection (`TrainSet.remembered`)."""
    if count == 0:
        return []
    if dataset.has_split("test"):
        part = make_plan(dataset).train
        split, allowed = part.split, part.query_ids
    elif dataset.has_split("train"):
        split, allowed = "train", None
    else:
        return []
    real = dataset.real_queries
    qrels = dataset.qrels(split)
    candidates = sorted(
        q
        for q, judged in qrels.items()
        if q in real
        and (allowed is None or q in allowed)
        and any(g > 0 and d in dataset.corpus for d, g in judged.items())
    )
    chosen = random.Random(seed).sample(candidates, min(count, len(candidates)))
    examples = []
    for qid in chosen:
        doc = next(d for d, g in qrels[qid].items() if g > 0 and d in dataset.corpus)
        examples.append(Example(qid, real[qid], dataset.corpus[doc].full_text()))
    return examples


def _journal_path(dataset: BeirDataset, generator: Generator, prompt: PromptBuilder) -> Path:
    """`<corpus>-<settings>.jsonl`: the corpus part tells which journals could still resume."""
    settings = sha256_text(json.dumps(generator.describe(), sort_keys=True), json.dumps(prompt.describe()))
    return dataset.root / GENERATION_JOURNALS / f"{dataset.corpus_hash()[:16]}-{settings[:16]}.jsonl"


def other_journals(current: Path) -> list[Path]:
    """The journals beside `current`: of other generators, prompts or corpus contents."""
    return sorted(j for j in current.parent.glob("*.jsonl") if j != current)


def _lines_in(path: Path) -> int:
    """Records in a JSON-lines file (replies in a journal, queries in a split)."""
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def _split_settings(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What a generated split is made of, read from its manifest (or the one a run will write),
    by the name a refusal gives each part; as JSON values, so that the two compare equal."""
    round_trip = manifest["round_trip"]
    parts = {
        "corpus": manifest["corpus_sha256"],
        "generator": manifest["generator"],
        "prompt": manifest["prompt"],
        "sample": manifest["sample"],
        "seed": manifest["seed"],
        "filters": manifest["filters"],
        "round-trip filter": round_trip and {"model": round_trip["model"], "k": round_trip["k"]},
    }
    return dict(json.loads(json.dumps(parts)))


def _held_settings(manifest: Path) -> dict[str, Any] | None:
    """The settings of the split whose manifest this is; None if it cannot be read."""
    try:
        return _split_settings(json.loads(manifest.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def refuse_replacing_other_settings(dataset: BeirDataset, settings: dict[str, Any], journal: Path) -> None:
    """Refuse to replace a generated split made with other `settings` (its queries, and the
    paid replies in the journals of other settings that replacing it deletes) without `force`."""
    split = dataset.root / SYNTHETIC_DIR
    if not split.exists():
        return
    held = _held_settings(dataset.root / SYNTHETIC_MANIFEST)
    differ = [name for name, value in settings.items() if held is None or held[name] != value]
    if not differ:
        return
    made = "an unreadable manifest" if held is None else f"other settings ({', '.join(differ)})"
    count = _lines_in(dataset.root / SYNTHETIC_QUERIES)
    others = other_journals(journal)
    deleted = ""
    if others:
        replies = sum(_lines_in(j) for j in others)
        plural = "s" if len(others) > 1 else ""
        deleted = (
            f" and delete {len(others)} generation journal{plural} of other settings ({replies} paid replies)"
        )
    raise ParameterError(
        "{path}: holds {count} generated queries made with {made}; generating now would replace "
        "them{deleted}; pass {force} to do so, or copy the dataset folder to keep them",
        path=split,
        count=count,
        made=made,
        deleted=deleted,
    )


def remove_other_journals(current: Path) -> None:
    """Once a forced run has replaced the split, its journal alone stays: it backs the split
    just written (a rerun with a larger sample or other filters reuses its generations)."""
    for journal in other_journals(current):
        journal.unlink(missing_ok=True)
        log.info("removed the generation journal of other settings %s", journal.name)


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """A failed write names `path` (a full disk's OSError names no file)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def read_journal(path: Path) -> dict[str, str]:
    """document id -> raw generation. A last line cut short by a kill is cut off the file (so
    the next append starts on a line of its own) and its document generated again."""
    done: dict[str, str] = {}
    if not path.is_file():
        return done
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                record = json.loads(line)
                done[str(record["doc"])] = str(record["raw"])
            except (json.JSONDecodeError, KeyError, TypeError):
                log.warning("%s:%d: unreadable journal line skipped (an interrupted write)", path, number)
    return done


def _append(path: Path, record: dict[str, str]) -> None:
    with _naming(path), open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def run_generation(
    dataset: BeirDataset,
    generator: Generator,
    prompt: PromptBuilder,
    doc_ids: Sequence[str],
    *,
    restart: bool = False,
) -> tuple[dict[str, str], dict[str, float]]:
    """Raw generations for `doc_ids`, resuming from the journal; (doc -> raw, timing)."""
    journal = _journal_path(dataset, generator, prompt)
    journal.parent.mkdir(parents=True, exist_ok=True)
    if restart:
        journal.unlink(missing_ok=True)
    done = read_journal(journal)
    todo = [d for d in doc_ids if d not in done]
    if done:
        log.info(
            "%s: %d of %d documents already generated (journal %s)",
            dataset.name,
            len(doc_ids) - len(todo),
            len(doc_ids),
            journal.name,
        )
    started = time.perf_counter()
    generated = 0
    keeping = threading.Lock()  # replies arrive from the generator's threads
    with progress_bar(f"generate queries for {dataset.name}", len(todo)) as advance:
        for start in range(0, len(todo), generator.batch_size):
            batch = todo[start : start + generator.batch_size]

            def keep(index: int, text: str, batch: list[str] = batch) -> None:
                with keeping:
                    _append(journal, {"doc": batch[index], "raw": text})
                    done[batch[index]] = text
                    advance(1)

            texts = generator.generate([prompt.render(dataset.corpus[d].full_text()) for d in batch], keep)
            if len(texts) != len(batch):
                raise IrtuneError(f"the generator returned {len(texts)} texts for {len(batch)} prompts")
            for index, text in enumerate(texts):
                if batch[index] not in done:  # a generator that hands nothing over early
                    keep(index, text)
            generated += len(batch)
            elapsed = time.perf_counter() - started
            if start // generator.batch_size % 10 == 9:
                log.info("%d/%d documents, %.2f documents/s", generated, len(todo), generated / elapsed)
    elapsed = time.perf_counter() - started
    timing = {"seconds": round(elapsed, 2), "generated_now": generated}
    if generated:
        timing["documents_per_s"] = round(generated / elapsed, 3)
        log.info(
            "%s: generated %d queries in %.0f s (%.2f documents/s)",
            dataset.name,
            generated,
            elapsed,
            generated / elapsed,
        )
    return {d: done[d] for d in doc_ids}, timing


RoundTrip = Callable[[dict[str, str], int], dict[str, list[str]]]  # queries, k -> top-k doc ids


def generate_synthetic(
    dataset: BeirDataset,
    generator: Generator,
    request: GenerationRequest,
    *,
    round_trip: RoundTrip | None = None,
    round_trip_model: str | None = None,
) -> SyntheticManifest:
    """Generate, filter and write the synthetic split; returns its manifest. One process at a
    time per dataset: a second one is refused (the journal is appended to as it goes)."""
    journals = dataset.root / GENERATION_JOURNALS
    with folder_lock(journals, what="dataset's query generation"):
        return _generate_synthetic(dataset, generator, request, round_trip, round_trip_model)


def _generate_synthetic(
    dataset: BeirDataset,
    generator: Generator,
    request: GenerationRequest,
    round_trip: RoundTrip | None,
    round_trip_model: str | None,
) -> SyntheticManifest:
    from irtune import __version__

    if request.round_trip_k and round_trip is None:
        raise ParameterError(
            "the round-trip filter needs a base model ({base_model}; or {round_trip_k} 0 to skip it)"
        )
    examples = few_shot_examples(dataset, request.few_shot, request.seed)
    prompt = build_prompt(domain=request.domain, examples=examples, prompt_file=request.prompt_file)
    doc_ids = sample_documents(dataset, request.sample, request.seed)
    if not doc_ids:
        raise DataError(dataset.corpus_path, "no non-empty document to generate queries for")
    # read (and check) the real queries before paying for any generation
    query_filter = QueryFilter(request.filters, prompt.fixed_texts(), dataset.real_queries.values())
    settings = _split_settings(
        {
            "corpus_sha256": dataset.corpus_hash(),
            "generator": generator.describe(),
            "prompt": prompt.describe(),
            "sample": request.sample,
            "seed": request.seed,
            "filters": _filter_settings(request.filters),
            "round_trip": {"model": round_trip_model, "k": request.round_trip_k}
            if request.round_trip_k
            else None,
        }
    )
    if not request.force:
        refuse_replacing_other_settings(dataset, settings, _journal_path(dataset, generator, prompt))
    log.info("%s: %d documents, prompt: %s", dataset.name, len(doc_ids), prompt.source)
    raw, timing = run_generation(dataset, generator, prompt, doc_ids, restart=request.restart)
    candidates, dropped = _filtered(dataset, raw, query_filter)
    round_trip_info = None
    if request.round_trip_k and round_trip is not None and candidates:
        k = request.round_trip_k
        round_trip_info = _round_trip_filter(candidates, dropped, round_trip, round_trip_model, k)
    if not candidates:
        raise _everything_filtered_out(dataset, dropped)
    manifest = SyntheticManifest(
        dataset=dataset.name,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        irtune_version=__version__,
        corpus_sha256=dataset.corpus_hash(),
        generator=generator.describe(),
        prompt=prompt.describe(),
        sample=request.sample,
        seed=request.seed,
        documents=len(doc_ids),
        kept=len(candidates),
        keep_rate=round(len(candidates) / len(doc_ids), 4),
        dropped=dict(dropped.most_common()),
        filters=_filter_settings(request.filters),
        round_trip=round_trip_info,
        generation=timing,
    )
    write_synthetic_split(dataset, candidates, manifest)
    if request.force:
        remove_other_journals(_journal_path(dataset, generator, prompt))
    return manifest


Candidates = dict[str, tuple[str, str]]  # query id -> (text, source document)


def _filtered(
    dataset: BeirDataset, raw: Mapping[str, str], query_filter: QueryFilter
) -> tuple[Candidates, Counter[str]]:
    """The cleaned generations (by document) that pass the filters, and why the others did not."""
    dropped: Counter[str] = Counter()
    candidates: Candidates = {}
    for doc_id, generation in raw.items():
        text = clean_generation(generation)
        reason = query_filter.reason_to_drop(text, dataset.corpus[doc_id].full_text())
        if reason:
            dropped[reason] += 1
        else:
            candidates[f"syn-{text_fingerprint(text)}"] = (text, doc_id)
    return candidates, dropped


def _round_trip_filter(
    candidates: Candidates, dropped: Counter[str], round_trip: RoundTrip, model: str | None, k: int
) -> dict[str, Any]:
    """Drop (in place) the candidates whose source document is not in the base model's top `k`
    for them; what the filter did, for the manifest."""
    started = time.perf_counter()
    top = round_trip({q: t for q, (t, _) in candidates.items()}, k)
    missed = [q for q, (_, d) in candidates.items() if d not in top.get(q, [])]
    for qid in missed:
        del candidates[qid]
    dropped[f"source document not in the base model's top {k}"] += len(missed)
    return {
        "model": model,
        "k": k,
        "checked": len(missed) + len(candidates),
        "kept": len(candidates),
        "seconds": round(time.perf_counter() - started, 2),
    }


def _everything_filtered_out(dataset: BeirDataset, dropped: Counter[str]) -> ParameterError:
    return ParameterError(
        "{dataset}: every generated query was filtered out ({reasons}); the raw generations are kept in "
        "{journals} ({restart} generates them again)",
        dataset=dataset.name,
        reasons=", ".join(f"{r}: {n}" for r, n in dropped.most_common()),
        journals=dataset.root / GENERATION_JOURNALS,
    )


def _filter_settings(filters: FilterSettings) -> dict[str, Any]:
    return {"min_words": filters.min_words, "max_words": filters.max_words}


def write_synthetic_split(dataset: BeirDataset, queries: Candidates, manifest: SyntheticManifest) -> None:
    """Queries, qrels and manifest built in a new folder, then swapped in for the old split."""
    target = dataset.root / SYNTHETIC_DIR
    sources = {qid: {"source_document": doc_id} for qid, (_, doc_id) in queries.items()}
    files = {
        SYNTHETIC_QUERIES.name: query_lines({qid: text for qid, (text, _) in queries.items()}, sources),
        SYNTHETIC_QRELS.name: qrels_lines({qid: {doc_id: 1} for qid, (_, doc_id) in queries.items()}),
        SYNTHETIC_MANIFEST.name: [manifest.model_dump_json(indent=2) + "\n"],
    }
    building = Path(tempfile.mkdtemp(prefix=".synthetic.", suffix=".new", dir=dataset.root))
    try:
        write_files(building, files, destination=target)
        os.chmod(building, 0o755)
        retired = dataset.root / f".synthetic.{os.getpid()}.old"
        if target.exists():
            os.replace(target, retired)  # a crash here leaves no split: rerun `generate` (journaled)
        os.replace(building, target)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(building, ignore_errors=True)
