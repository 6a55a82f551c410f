"""The record linkage app: a Faust worker that links records of live feeds into entities."""
