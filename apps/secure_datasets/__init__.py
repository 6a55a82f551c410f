"""The secure-dataset processor: per-team masked and filtered copies of a raw dataset topic."""
