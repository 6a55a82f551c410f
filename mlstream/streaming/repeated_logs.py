"""Repeated log lines of the Kafka clients under Faust, let through once per interval.

While the broker is away aiokafka (Faust's control plane: the leader topic, deployments,
alerts) logs the same ERROR for each of its retries, ten a second and per consumer: an
8-second broker restart wrote some 300 such lines, which buried what the app itself said.
:class:`RepeatedLogFilter` lets the first line of each kind through, drops its repeats for
``interval_s`` and then says how many it dropped, so nothing is hidden, only folded.

    >>> import logging
    >>> clock = iter([0.0, 0.1, 0.2, 11.0]).__next__
    >>> repeats = RepeatedLogFilter(interval_s=10.0, clock=clock)
    >>> def line(n):
    ...     return logging.LogRecord("aiokafka.conn", logging.ERROR, "", 0, "Unable connect to node %s", (n,), None)
    >>> [(repeats.filter(r), r.getMessage()) for r in map(line, [1, 1, 1, 1])]  # doctest: +NORMALIZE_WHITESPACE
    [(True, 'Unable connect to node 1'), (False, 'Unable connect to node 1'), (False, 'Unable connect to node 1'),
     (True, 'Unable connect to node 1 (and 2 more like it in 11 s)')]
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from pathlib import Path

#: The loggers whose repeats are folded: the Kafka client under Faust.
CLIENT_LOGGERS = "aiokafka"


class RepeatedLogFilter(logging.Filter):
    """Pass a log line of a kind (logger and format) once per ``interval_s``, and count the rest."""

    def __init__(self, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval_s, self.clock = interval_s, clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # kind -> (when last passed, dropped since)

    def filter(self, record: logging.LogRecord) -> bool:
        kind, now = (record.name, str(record.msg)), self.clock()
        passed_at, dropped = self._seen.get(kind, (None, 0))
        if passed_at is not None and now - passed_at < self.interval_s:
            self._seen[kind] = (passed_at, dropped + 1)
            return False
        self._seen[kind] = (now, 0)
        if dropped:
            record.msg, record.args = f"{record.getMessage()} (and {dropped} more like it in {now - passed_at:.0f} s)", ()
        return True


def fold_client_log_repeats(interval_s: float = 10.0) -> None:
    """Fold the repeats of every module logger of aiokafka; idempotent.

    A logger's filters see only the lines logged on it, not its children's, so each module's logger
    gets the filter, made now if aiokafka is not imported yet (Faust imports it when a worker starts;
    its modules' ``getLogger(__name__)`` then return these).
    """
    spec = importlib.util.find_spec(CLIENT_LOGGERS)
    if spec is None or not spec.submodule_search_locations:
        return
    root = Path(next(iter(spec.submodule_search_locations)))
    names = {".".join((CLIENT_LOGGERS, *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
             for path in root.rglob("*.py")}
    repeats = RepeatedLogFilter(interval_s)
    for name in sorted(names):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatedLogFilter) for f in logger.filters):
            logger.addFilter(repeats)
