"""Evaluation: one job (a model on datasets, with its settings) run dataset by dataset into a
results folder, and sweeps over compressed settings."""
