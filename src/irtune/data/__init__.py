"""BEIR-format data: loading, downloading and honest query splits."""

from irtune.data.beir import BeirDataset, Document, load_corpus, load_qrels, load_queries
from irtune.data.registry import default_data_dir, resolve_dataset

__all__ = [
    "BeirDataset",
    "Document",
    "default_data_dir",
    "load_corpus",
    "load_qrels",
    "load_queries",
    "resolve_dataset",
]
