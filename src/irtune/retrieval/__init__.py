"""Retrieval: cached encoding, exact/ANN dense search and BM25."""
