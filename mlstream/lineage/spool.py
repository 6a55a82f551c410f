"""Lineage that cannot be sent now is kept on disk and sent first the next time: never dropped.

``SpoolingEmitter`` wraps any :class:`~mlstream.lineage.emitter.LineageEmitter`. Its ``flush``
first resends what earlier flushes spooled (oldest first), then the new notifications; if
the wrapped emitter fails, everything not yet confirmed is written to the spool folder and
the error is raised. Delivery is at least once: Atlas creates and updates by qualifiedName,
so a notification delivered twice changes nothing the second time.

    >>> import tempfile
    >>> class Down:
    ...     def emit(self, note): pass
    ...     def flush(self, timeout=30.0): raise LineageDeliveryError("Atlas is down")
    >>> class Up(list):
    ...     def emit(self, note): self.append(note)
    ...     def flush(self, timeout=30.0): pass
    >>> folder = tempfile.mkdtemp()
    >>> down = SpoolingEmitter(Down(), folder)
    >>> down.emit({"type": "ENTITY_DELETE_V2", "user": "me", "entities": []})
    >>> down.flush()
    Traceback (most recent call last):
    ...
    mlstream.lineage.emitter.LineageDeliveryError: Atlas is down; 1 notification(s) kept in ... and sent on the next flush
    >>> up = Up()
    >>> SpoolingEmitter(up, folder).flush()
    >>> [note["type"] for note in up], SpoolingEmitter(up, folder).spooled()
    (['ENTITY_DELETE_V2'], [])
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlstream.lineage.emitter import (AtlasRestEmitter, KafkaHookEmitter, LineageDeliveryError, LineageEmitter,
                                      hook_producer)

_sequence = itertools.count()


class SpoolingEmitter:
    def __init__(self, inner: LineageEmitter, folder: str | os.PathLike) -> None:
        self.inner = inner
        self.folder = Path(folder)
        self._pending: list[Mapping[str, Any]] = []

    def emit(self, notification: Mapping[str, Any]) -> None:
        self._pending.append(notification)

    def spooled(self) -> list[Path]:
        """Files of notifications not yet delivered, oldest first."""
        return sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []

    def flush(self, timeout: float = 30.0) -> None:
        spooled = self.spooled()
        pending, self._pending = self._pending, []
        try:
            for path in spooled:
                self.inner.emit(json.loads(path.read_text(encoding="utf-8")))
            for note in pending:
                self.inner.emit(note)
            self.inner.flush(timeout)
        except Exception as err:
            for note in pending:
                self._spool(note)
            raise LineageDeliveryError(f"{err}; {len(spooled) + len(pending)} notification(s) kept in "
                                       f"{self.folder} and sent on the next flush") from err
        for path in spooled:
            path.unlink(missing_ok=True)

    def _spool(self, note: Mapping[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(_sequence):06d}.json"
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".spool-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(note, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / name)


def lineage_emitter(settings, key: str) -> SpoolingEmitter:
    """The configured emitter: REST to ``MLSTREAM_ATLAS_URL`` if set, else the ATLAS_HOOK topic; spooled."""
    if settings.atlas_url:
        inner: LineageEmitter = AtlasRestEmitter(settings.atlas_url)
    else:
        inner = KafkaHookEmitter(hook_producer(settings, **{"message.timeout.ms": 30000}), settings.topics.atlas_hook,
                                 key=key)
    return SpoolingEmitter(inner, settings.state_dir / "lineage-spool" / key)
