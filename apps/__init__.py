"""The stream apps, one package per process: ``scorer``, ``linker`` and ``lineage_service`` (the embedded Atlas)."""
