"""Dead letters: a message the app gave up on, kept whole with the reason.

    >>> letter = dead_letter("t", 0, 7, None, b"k", b"junk", [("h", b"1")],
    ...                      "NOT_CONFLUENT_FRAMED", "no magic byte", "scorer", failed_at_ms=1)
    >>> letter["source_offset"], letter["headers"]
    (7, [{'key': 'h', 'value': b'1'}])
"""

from __future__ import annotations

import time
from typing import Iterable, Mapping

PROCESSING_FAILED = "PROCESSING_FAILED"


def _header_pairs(headers) -> Iterable[tuple[str, bytes | None]]:
    if not headers:
        return []
    if isinstance(headers, Mapping):
        return headers.items()
    return headers


def dead_letter(
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    key: bytes | None,
    value: bytes | None,
    headers,
    error_type: str,
    error_message: str,
    failed_by: str,
    failed_at_ms: int | None = None,
) -> dict:
    return {
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "source_timestamp_ms": timestamp_ms,
        "key": key,
        "value": value,
        "headers": [{"key": str(k), "value": v} for k, v in _header_pairs(headers)],
        "error_type": error_type,
        "error_message": error_message,
        "failed_by": failed_by,
        "failed_at": failed_at_ms if failed_at_ms is not None else time.time_ns() // 1_000_000,
    }
