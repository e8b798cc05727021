"""Synthetic queries for an unlabelled corpus (the InPars / Promptagator / GPL family):
a generator backend writes a query per document, filters keep the plausible ones."""
