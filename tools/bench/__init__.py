"""Benchmarks: each prints figures side by side with its baselines (``--json`` for a document)."""
