"""Honest fine-tuning: pairs from qrels, hard negatives, MNRL training, selection."""
