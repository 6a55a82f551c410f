"""Record keys: ``source|record_id``, how every part of the linkage names one record.

A module of its own so that what only names records (datasets, evaluation, feeds) does not
import the linker and, through its classifier, river and scipy.
"""

from __future__ import annotations


def record_key(source: str, record_id: str) -> str:
    return f"{source}|{record_id}"


def split_key(key: str) -> tuple[str, str]:
    source, _, record_id = key.partition("|")
    return source, record_id
