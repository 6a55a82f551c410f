"""Record linkage over live feeds, without Kafka: config, blocking, comparisons, scoring, clusters.

One short module per part, composed by :class:`linkage.linker.Linker`, which the Faust
app (``apps/linker/app.py``) drives one record at a time and the unit tests drive
with plain dicts. Nothing here knows a dataset: field names, blocking keys, comparisons
and thresholds come from a YAML config (``linkage/configs/``).
"""
