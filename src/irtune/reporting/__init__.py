"""Comparison tables, charts and the self-contained HTML report."""
