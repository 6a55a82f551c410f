"""The ``mlstream`` command, its demos and benchmarks, and the local services it starts."""
