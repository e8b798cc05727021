"""Import sources that are no local file: an `ir_datasets` dataset, and a file of a Hugging
Face Hub dataset repo (`hf:OWNER/NAME/FILE`, fetched into the Hub's cache)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from irtune.data.beir import Document, Qrels
from irtune.data.import_readers import (
    Imported,
    SourceReport,
    absent_document_dropped,
    not_negative,
    warn_of_absent_documents,
)
from irtune.errors import IrtuneError, ParameterError


def read_ir_datasets(dataset_id: str, split: str, into: Imported, *, drop_unknown: bool = False) -> None:
    """Documents (from the first id that has them), queries and qrels of an `ir_datasets`
    dataset, e.g. `beir/scifact/test`, checked like files; recorded with a hash of what was
    read. Negative grades (some TREC collections mark junk with -1) become 0: judged, not
    relevant (counted under `changed`); judgements of absent documents as in `read_qrels`."""
    try:
        import ir_datasets
    except ImportError:
        raise ParameterError("{ir_datasets} needs its package: pip install 'irtune[ir-datasets]'") from None
    try:
        source = ir_datasets.load(dataset_id)
    except KeyError:
        raise IrtuneError(f"ir_datasets knows no dataset {dataset_id!r}") from None
    report = SourceReport(f"ir_datasets:{split}", Path(dataset_id), "ir_datasets", {})
    report.origin = f"ir_datasets:{dataset_id}"
    digest = hashlib.sha256()
    where = f"ir_datasets {dataset_id}"
    if source.has_docs() and not into.corpus:
        for doc in source.docs_iter():
            text = getattr(doc, "text", None)
            document = Document(
                title=getattr(doc, "title", "") or "", text=text if text is not None else doc.default_text()
            )
            digest.update(f"d\0{doc.doc_id}\0{document.title}\0{document.text}\0".encode())
            if doc.doc_id in into.corpus or doc.doc_id in into.dropped_docs:
                raise IrtuneError(f"{where}: duplicate document id {doc.doc_id!r}")
            if not document.full_text():
                report.dropped["empty document"] += 1
                into.dropped_docs.add(doc.doc_id)
                continue
            into.corpus[doc.doc_id] = document
    elif source.has_docs() and source.docs_count() not in (None, len(into.corpus) + len(into.dropped_docs)):
        raise IrtuneError(f"{where}: its documents are not those imported before (another corpus)")
    if source.has_queries():
        for query in source.queries_iter():
            text = getattr(query, "text", None)
            text = (text if text is not None else query.default_text()).strip()
            digest.update(f"q\0{query.query_id}\0{text}\0".encode())
            if not text:
                report.dropped["empty query"] += 1
                into.dropped_queries.add(query.query_id)
            elif into.queries.setdefault(query.query_id, text) != text:
                raise IrtuneError(f"{where}: query {query.query_id!r} has another text than before")
    if source.has_qrels():
        judged: Qrels = into.qrels.setdefault(split, {})
        for row in source.qrels_iter():
            report.rows += 1
            digest.update(f"r\0{row.query_id}\0{row.doc_id}\0{row.relevance}\0".encode())
            if row.doc_id in into.dropped_docs or row.query_id in into.dropped_queries:
                report.dropped["names an empty query or document"] += 1
                continue
            if row.query_id not in into.queries:
                raise IrtuneError(f"{where}: qrels name an unknown query id {row.query_id!r}")
            if row.doc_id not in into.corpus and absent_document_dropped(report, drop_unknown):
                continue
            judged.setdefault(row.query_id, {})[row.doc_id] = not_negative(int(row.relevance), report)
    warn_of_absent_documents(where, report)
    report.digest = digest.hexdigest()
    into.reports.append(report)


HUB_PREFIX = "hf:"


def fetch_hub_file(spec: str) -> tuple[Path, str]:
    """`hf:OWNER/NAME/PATH/IN/REPO` -> (the file in the Hugging Face cache, its origin with the
    commit it was read at). Offline, a file cached before is used."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    parts = spec.removeprefix(HUB_PREFIX).strip("/").split("/")
    if len(parts) < 3:
        raise IrtuneError(f"{spec!r}: expected hf:OWNER/NAME/FILE (a file of a Hub dataset repo)")
    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        local = Path(hf_hub_download(repo_id, filename, repo_type="dataset"))
    except LocalEntryNotFoundError:  # a subclass of EntryNotFoundError: caught first
        raise IrtuneError(f"{spec}: not in the local cache and the Hub cannot be reached") from None
    except EntryNotFoundError:
        raise IrtuneError(f"{spec}: no file {filename!r} in the dataset repo {repo_id}") from None
    except HfHubHTTPError as exc:
        raise IrtuneError(f"{spec}: {' '.join(str(exc).split())[:200]}") from None
    commit = local.parent.name if local.parent.parent.name == "snapshots" else None
    if commit is None:  # a file in a subfolder of the repo
        commit = next((p.name for p in local.parents if p.parent.name == "snapshots"), "unknown")
    return local, f"{spec}@{commit}"


def local_source(path: Path | None) -> tuple[Path | None, str | None]:
    """(the file to read, its origin): a Hub file fetched first, a local one as it is."""
    if path is not None and str(path).startswith(HUB_PREFIX):
        return fetch_hub_file(str(path))
    return path, None
