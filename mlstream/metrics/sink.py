"""Where tracked metrics go: one small interface, a Kafka implementation and an embedded one.

:class:`KafkaMetricsSink` writes Avro records (``mlstream/schemas/metric.avsc``) to the
metrics topic, the way the app, producers, scripts and Spark jobs all write; a
materializer (``mlstream metrics materialize``) fills the store ``read_metrics``
reads. :class:`EmbeddedMetricsSink` puts records straight into a store, for a
script or test with no broker.

Both pickle: a Spark job can build one on the driver and use it inside
``foreachBatch`` or on executors, where each process opens its own producer on
first use.
"""

from __future__ import annotations

import threading
from typing import Protocol

from mlstream.metrics.store import MetricsStore, open_store
from mlstream.settings import Settings

FLUSH_TIMEOUT_S = 30.0


class MetricsDeliveryError(RuntimeError):
    """The broker did not take a metric record."""


class MetricsSink(Protocol):
    def write(self, record: dict) -> None:
        """Send one metric record (already checked by :func:`~mlstream.metrics.records.metric_record`)."""

    def flush(self) -> None:
        """Return once every record written so far is delivered; raise if one was not."""


class KafkaMetricsSink:
    """Metric records on the metrics topic, Confluent-framed Avro; the producer opens lazily."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._producer = None
        self._codec = None
        self._failures: list[str] = []
        self._lock = threading.Lock()

    def __getstate__(self):
        return {"settings": self.settings}

    def __setstate__(self, state):
        self.__init__(state["settings"])

    def _open(self):
        # Imported on first write, not at the top: confluent-kafka and the registry client add 0.5 s of
        # CPU to `import mlstream.metrics` (0.07 s), which model code does where there may be no broker.
        from confluent_kafka import Producer

        from mlstream.kafka.serde import registry_client
        from mlstream.kafka.topics import topic_codec

        with self._lock:
            if self._producer is None:
                registry = registry_client(self.settings.schema_registry_url)
                self._codec = topic_codec(registry, self.settings, self.settings.topics.metrics)
                self._producer = Producer({"bootstrap.servers": self.settings.bootstrap_servers,
                                           "enable.idempotence": True, "linger.ms": 50})
        return self._producer

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self._failures.append(str(err))

    def write(self, record: dict) -> None:
        producer = self._producer or self._open()
        producer.produce(self.settings.topics.metrics, key=record.get("prediction_uuid"),
                         value=self._codec.encode(record), on_delivery=self._delivered)
        producer.poll(0)  # serve delivery callbacks without waiting

    def flush(self) -> None:
        if self._producer is None:
            return
        left = self._producer.flush(FLUSH_TIMEOUT_S)
        if left or self._failures:
            failures, self._failures = self._failures, []
            raise MetricsDeliveryError(f"{left} metric records undelivered after {FLUSH_TIMEOUT_S:.0f}s, "
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

    def flush(self) -> None:
        pass
