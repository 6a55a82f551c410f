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
#: A record whose join state would not fit in a Kafka message: dead-lettered before it is scored.
RECORD_TOO_LARGE = "RECORD_TOO_LARGE"
#: A dead letter keeps at most this much of the value, so it always fits in a Kafka message (1 MiB by default).
MAX_KEPT_VALUE_BYTES = 900_000
#: A decoded record or label that does not fit the app's feature view (a missing required field,
#: a value of the wrong type); the message names the field (mlstream.features.view.RecordMismatch).
FEATURE_VIEW_MISMATCH = "FEATURE_VIEW_MISMATCH"
#: A feature or label no model should see (non-finite, out of range, wrong type for the target);
#: the message names the field and the reason code (mlstream/scoring/validation.py).
INVALID_VALUE = "INVALID_VALUE"


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
    if value is not None and len(value) > MAX_KEPT_VALUE_BYTES:
        # The letter must fit in a message of its own topic; the whole value stays at its source offset.
        error_message += (f" (the value's first {MAX_KEPT_VALUE_BYTES:,} of {len(value):,} bytes are kept here; "
                          f"all of it is at {topic}[{partition}]@{offset})")
        value = value[:MAX_KEPT_VALUE_BYTES]
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
