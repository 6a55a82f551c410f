"""Secrets kept out of logs and messages: passwords in URLs are masked wherever a line is written.

A registry URL may carry its credentials (``http://user:password@host/...``, which
confluent-kafka's client turns into basic auth), and the HTTP client it uses logs every
request with its URL at INFO. :func:`install_log_masking` masks them in every log record
the process creates, whichever library logs it and whichever handler writes it (Faust's
worker installs its own handlers after the CLI starts, so a filter on today's handlers
would miss them); :func:`mask_secrets` does the same for a message printed directly.

    >>> mask_secrets("GET http://svc:s3cret@registry:8081/subjects/x-value")
    'GET http://svc:***@registry:8081/subjects/x-value'
    >>> mask_secrets("http://registry:8081/apis/ccompat/v7 has no secret")
    'http://registry:8081/apis/ccompat/v7 has no secret'
"""

from __future__ import annotations

import logging
import re

_URL_PASSWORD = re.compile(r"(?P<prefix>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):(?P<password>[^@/\s]+)@")
MASK = "***"


def mask_secrets(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` replaced by ``***``."""
    return _URL_PASSWORD.sub(lambda m: f"{m['prefix']}:{MASK}@", text)


def install_log_masking() -> None:
    """Mask URL passwords in every log record from now on (its message, arguments and traceback); idempotent."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "masks_secrets", False):
        return
    formatter = logging.Formatter()

    def masked_record(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: logging reports it when it is written
            return record
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_secrets(formatter.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info)
        return record

    masked_record.masks_secrets = True
    logging.setLogRecordFactory(masked_record)
