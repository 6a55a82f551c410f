"""The lineage a feed reports: source dataset -> feed process -> records and labels topics.

Sent when a feed starts (so consumers see where records come from while it runs) and
when it ends, with the number of records sent; spooled if it cannot be delivered.
"""

from __future__ import annotations

from collections.abc import Callable

from mlstream.kafka.clients import registry_client
from mlstream.kafka.serde import value_subject
from mlstream.lineage import entities as e
from mlstream.lineage.emitter import LineageDeliveryError
from mlstream.lineage.hook import entity_create_v2
from mlstream.lineage.spool import lineage_emitter
from mlstream.settings import Settings

LINEAGE_USER = "mlstream"


def feed_notification(settings: Settings, registry, *, source: str, seed: int | None, started_at_ms: int,
                      records_sent: int | None = None, records_topic: str | None = None) -> dict:
    """``records_topic``: where the feed's records go, if not the project's records topic (a CSV's own topic)."""
    records_topic = records_topic or settings.topics.records
    ns = settings.atlas_namespace
    guids = e.negative_guids()
    dataset = e.source_dataset(source, ns, guid=next(guids), seed=seed)
    referred, topics = [dataset], []
    for topic in (records_topic, settings.topics.labels):
        registered = registry.get_version(value_subject(topic), "latest")
        schema = e.avro_schema(value_subject(topic), registered.version, registered.schema.schema_str, ns,
                               guid=next(guids))
        topics.append(e.kafka_topic(topic, ns, bootstrap_servers=settings.bootstrap_servers, guid=next(guids),
                                    avro_schemas=[schema]))
        referred.append(schema)
    process = e.feed_process(dataset, topics, records_topic, ns, guid=next(guids),
                             started_at_ms=started_at_ms, records_sent=records_sent)
    return entity_create_v2([process], [*topics, *referred], user=LINEAGE_USER)


class FeedLineage:
    """Reports a feed's lineage at its start and end: ``start()``, then ``finish(records_sent)``."""

    def __init__(self, settings: Settings, *, source: str, seed: int | None, started_at_ms: int,
                 warn: Callable[[str], None] = print, records_topic: str | None = None) -> None:
        self.settings, self.source, self.seed, self.started_at_ms = settings, source, seed, started_at_ms
        self.records_topic = records_topic
        self.warn = warn
        self.registry = registry_client(settings)
        self.emitter = lineage_emitter(settings, key=f"feed-{source.replace('/', '-')}")

    def start(self) -> None:
        self._send(None)

    def finish(self, records_sent: int) -> None:
        self._send(records_sent)

    def _send(self, records_sent: int | None) -> None:
        self.emitter.emit(feed_notification(self.settings, self.registry, source=self.source, seed=self.seed,
                                            started_at_ms=self.started_at_ms, records_sent=records_sent,
                                            records_topic=self.records_topic))
        try:
            self.emitter.flush()
        except LineageDeliveryError as err:  # spooled: a lineage outage must not stop the feed
            self.warn(f"lineage not delivered yet: {err}")
