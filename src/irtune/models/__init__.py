"""Models: resolving and loading them (bundled, hub ids, local folders, registry parts), their
prompts and weight hashes, and the lineage a fine-tuned model's folder records."""
