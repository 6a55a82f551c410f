"""Where tracked metrics go: one small interface, a Kafka implementation and an embedded one.

:class:`KafkaMetricsSink` writes Avro records (``mlstream/schemas/metric.avsc``) to the
metrics topic, the way the app, producers, scripts and Spark jobs all write; a
materializer (``mlstream metrics materialize``) fills the store ``read_metrics``
reads. :class:`EmbeddedMetricsSink` puts records straight into a store, for a
script or test with no broker.

While the registry cannot be reached, :class:`KafkaMetricsSink` keeps the records it
could not encode (up to :data:`DEFERRED_LIMIT`) and sends them once it can again, so
tracking never raises for an outage and the app that tracks goes on.

Both pickle: a Spark job can build one on the driver and use it inside
``foreachBatch`` or on executors, where each process opens its own producer on
first use.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Protocol

from mlstream.metrics.store import MetricsStore, open_store
from mlstream.settings import Settings

log = logging.getLogger(__name__)

FLUSH_TIMEOUT_S = 30.0
#: Metric records kept while the registry is unreachable (the oldest are dropped, and counted, beyond it):
#: at the app's per-prediction rows, minutes of an outage at a few hundred records/s.
DEFERRED_LIMIT = 100_000
#: Seconds between tries to reach the registry again while records are deferred (from a thread of the sink's).
DEFERRED_RETRY_S = 2.0


class MetricsDeliveryError(RuntimeError):
    """The broker did not take a metric record."""


class MetricsSink(Protocol):
    def write(self, record: dict) -> None:
        """Send one metric record (already checked by :func:`~mlstream.metrics.records.metric_record`)."""

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Return once every record written so far is delivered; raise if one was not."""


class KafkaMetricsSink:
    """Metric records on the metrics topic, Confluent-framed Avro; the producer opens lazily."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._producer = None
        self._codec = None
        self._failures: list[str] = []
        self._lock = threading.Lock()
        self._deferred: deque[dict] = deque(maxlen=DEFERRED_LIMIT)
        self.deferred_dropped = 0

    def __getstate__(self):
        return {"settings": self.settings}

    def __setstate__(self, state):
        self.__init__(state["settings"])

    def _open(self):
        # Imported on first write, not at the top: confluent-kafka and the registry client add 0.5 s of
        # CPU to `import mlstream.metrics` (0.07 s), which model code does where there may be no broker.
        from mlstream.kafka import clients
        from mlstream.kafka.serde import registry_unavailable
        from mlstream.kafka.topics import topic_codec

        self._registry_unavailable = registry_unavailable

        with self._lock:
            if self._producer is None:
                registry = clients.registry_client(self.settings, retries=False)  # deferred, retried here
                self._codec = topic_codec(registry, self.settings, self.settings.topics.metrics)
                self._producer = clients.producer(self.settings, **{"enable.idempotence": True, "linger.ms": 50})
        return self._producer

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self._failures.append(str(err))

    def write(self, record: dict) -> None:
        producer = self._producer or self._open()
        with self._lock:
            if self._deferred:  # an outage: wait behind the others, for the retrying thread
                self._defer(record)
                return
        try:
            self._produce(producer, record)
        except Exception as err:
            if not self._registry_unavailable(err):
                raise
            log.warning("schema registry unavailable (%s: %s): metric records wait until it answers",
                        type(err).__name__, err)
            with self._lock:
                first = not self._deferred
                self._defer(record)
            if first:
                threading.Thread(target=self._send_deferred_when_reachable, name="metrics-sink-retry",
                                 daemon=True).start()
            return
        producer.poll(0)  # serve delivery callbacks without waiting

    @property
    def deferred(self) -> int:
        """Records waiting for the registry."""
        return len(self._deferred)

    def _produce(self, producer, record: dict) -> None:
        producer.produce(self.settings.topics.metrics, key=record.get("prediction_uuid"),
                         value=self._codec.encode(record), on_delivery=self._delivered)

    def _defer(self, record: dict) -> None:
        if len(self._deferred) == self._deferred.maxlen:
            self.deferred_dropped += 1
        self._deferred.append(record)

    def _send_deferred_when_reachable(self) -> None:
        """Off the caller's thread (a registry call that fails takes seconds): retry until all waiting are sent."""
        while not self._send_deferred():
            time.sleep(DEFERRED_RETRY_S)
        log.info("schema registry answers again: the deferred metric records are sent")

    def _send_deferred(self) -> bool:
        """Send what waited, oldest first; False if the registry still does not answer."""
        while True:
            with self._lock:
                if not self._deferred:
                    return True
                record = self._deferred[0]
            try:
                self._produce(self._producer, record)
            except Exception as err:
                if not self._registry_unavailable(err):
                    log.error("metric record dropped: it cannot be encoded (%s: %s)", type(err).__name__, err)
                else:
                    return False
            with self._lock:
                self._deferred.popleft()

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        if self._producer is None:
            return
        if self._deferred:
            raise MetricsDeliveryError(f"{len(self._deferred)} metric records wait for the schema registry at "
                                       f"{self.settings.schema_registry_url}, which does not answer")
        left = self._producer.flush(timeout_s)
        if left or self._failures:
            failures, self._failures = self._failures, []
            raise MetricsDeliveryError(f"{left} metric records undelivered after {timeout_s:.0f}s, "
                                       f"{len(failures)} failed ({'; '.join(failures[:3])}); "
                                       f"is Kafka up at {self.settings.bootstrap_servers}?")


class EmbeddedMetricsSink:
    """Metric records straight into a store (SQLite by default), no broker involved."""

    def __init__(self, store_url: str):
        self.store_url = store_url
        self._store: MetricsStore | None = None

    def __getstate__(self):
        return {"store_url": self.store_url}

    def __setstate__(self, state):
        self.__init__(state["store_url"])

    @property
    def store(self) -> MetricsStore:
        if self._store is None:
            self._store = open_store(self.store_url)
        return self._store

    def write(self, record: dict) -> None:
        self.store.put([record])

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        pass
