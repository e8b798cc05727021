"""The names of the files irtune writes into a results folder, in one place."""

from __future__ import annotations

RESULTS_FILE = "results.json"  # the typed results (irtune.results.schema)
FRONTIER_FILE = "frontier.json"  # a sweep's settings, written beside their results folders
