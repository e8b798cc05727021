"""Results: the typed results file, the metrics that fill it, file names, comparisons with their
significance (over queries, and over training seeds), MTEB export and experiment trackers."""
