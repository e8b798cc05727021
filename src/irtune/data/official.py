"""The official files of the public datasets irtune knows, by content.

A folder is a public dataset (and its numbers may go under the public task's name: the card's
`BeIR/<name>`, MTEB's task) only when its files are the official ones, whatever the folder is
called: a 20-query slice named `scifact` is not SciFact. Files are compared by the dataset's
identity (`BeirDataset.identity`: BEIR path, sha256 of the decompressed bytes), so a gzipped copy
is recognised too; per split, the relevant queries' count and ids hash say whether
an evaluation covered all of the split's queries.
"""

from __future__ import annotations

from dataclasses import dataclass

from irtune.data.beir import BeirDataset


@dataclass(frozen=True)
class OfficialDataset:
    name: str
    corpus_documents: int
    files_sha256: dict[str, str]  # BEIR path (uncompressed) -> sha256 of its bytes
    relevant_queries: dict[str, tuple[int, str]]  # split -> (count, sha256_text of the sorted ids)


# from ../shared/data/beir/MANIFEST.tsv (byte-identical to the official BEIR zips)
OFFICIAL_DATASETS: dict[str, OfficialDataset] = {
    d.name: d
    for d in (
        OfficialDataset(
            "scifact",
            5183,
            {
                "corpus.jsonl": "dec31c8182f3d744c7d2c09423756fd1d17cbef75808db13ba01cc0aab4d1ac6",
                "queries.jsonl": "8ff84a7c903f722981cd8d595c022660140c51867b27608a6d4910db86080313",
                "qrels/test.tsv": "0864bb985e0ca2367ba217977e72004d549054b2b06666ed9d4825ac7c21284c",
                "qrels/train.tsv": "a53f2114831916c096b6c37d9e54da68cef4efdcdbd5ed46533601af972acf1d",
            },
            {
                "test": (300, "95a67aeff391f7b28adb43f05a7f5853414fe3d5835eafbf6a1448ce2dbdb50c"),
                "train": (809, "b6c0e209424f63f03362674fd368e44b5fab81346a6fe956fe901573e02df164"),
            },
        ),
        OfficialDataset(
            "nfcorpus",
            3633,
            {
                "corpus.jsonl": "10cc83ef1826b1425e6a87090b5140b39b27755d5a27e48215a88611c899991f",
                "queries.jsonl": "d024e6621b84925d485ae473d316a0c3af31c62c8068a59fb29d22f7613aef2a",
                "qrels/test.tsv": "f8fba6ef3d4dd9c3a242a8ba4ae38276fc3622fce7dcbae764766d564542fd2a",
                "qrels/dev.tsv": "b1d38b5e8f78c4a5820bce2b7ec2db54911d7690dc601e76811846b211180bd8",
                "qrels/train.tsv": "6336b80f9bffc4f063f3aa450047ad35c0b7c534efe4a6ba35e16dbace047f6a",
            },
            {
                "test": (323, "f98b9a98cab504a7b6c4c1b70e3c1e55185ead478cd61b19dd6d0a935c1152ee"),
                "dev": (324, "cfa2e08b7ff02b7793e6c3edc258b83482be71a9771f60339b18163f72e691ef"),
                "train": (2590, "c6a0fc14c6dc2db4a111d82b1e90623e4ef3cb226cb42c85a8409f24a3032675"),
            },
        ),
    )
}


def official_name(dataset: BeirDataset, split: str) -> str | None:
    """The public dataset whose official corpus, queries and `split` qrels these files are
    (None: any other files). Only a corpus of the official size is hashed."""
    for official in OFFICIAL_DATASETS.values():
        qrels = f"qrels/{split}.tsv"
        if qrels not in official.files_sha256 or len(dataset.doc_ids) != official.corpus_documents:
            continue
        found = dataset.identity([dataset.corpus_path, dataset.queries_path, dataset.qrels_path(split)])
        if all(official.files_sha256.get(path) == sha for path, sha in found.items()):
            return official.name
    return None
