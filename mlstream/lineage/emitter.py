"""Where lineage goes: the emitter protocol and its Kafka implementation (Atlas's hook topic).

Code that reports lineage depends on :class:`LineageEmitter` only, so it can be given the
Kafka emitter in production and a list-backed fake in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message, Producer

from mlstream.kafka import clients
from mlstream.lineage.hook import MAX_MESSAGE_BYTES, encode, envelope
from mlstream.settings import Settings


class LineageDeliveryError(RuntimeError):
    """Lineage notifications were not delivered; they are lost unless emitted again."""


class LineageEmitter(Protocol):
    def emit(self, notification: Mapping[str, Any]) -> None:
        """Queue one hook notification (a dict from mlstream.lineage.hook.entity_*_v2)."""

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued notification is stored; raise LineageDeliveryError if not."""


def hook_producer(settings: Settings, **overrides) -> Producer:
    """The producer a :class:`KafkaHookEmitter` sends with: idempotent, so a retried send is not a second message."""
    return clients.producer(settings, **{"enable.idempotence": True, **overrides})


class KafkaHookEmitter:
    """Sends hook notifications to Atlas's hook topic (``settings.topics.atlas_hook``).

    All values are sent with one key, so they land on one partition in the order emitted:
    the chunks of a split message stay together and in order, and later notifications about
    an entity (a partial update after a create) are not consumed before earlier ones.

    Pass a producer config (the emitter then owns a producer with idempotence on, so
    retries cannot reorder chunks) or an existing confluent_kafka.Producer (configure it
    the same way). Values are up to about 1,000,000 bytes, which fits librdkafka's and
    Kafka's default size limits.
    """

    def __init__(
        self,
        producer: Producer,
        topic: str,
        *,
        key: str,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._key = key.encode("utf-8")
        self._max_message_bytes = max_message_bytes
        self._failures: list[str] = []

    def emit(self, notification: Mapping[str, Any]) -> None:
        for value in encode(envelope(notification), self._max_message_bytes):
            try:
                self._produce(value)
            except BufferError:
                # The local queue is full: serve delivery reports to free it, then retry once.
                self._producer.poll(1.0)
                self._produce(value)
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        undelivered = self._producer.flush(timeout)
        failures, self._failures = self._failures, []
        if undelivered:
            failures.append(f"{undelivered} message(s) still queued after {timeout}s")
        if failures:
            raise LineageDeliveryError(f"lineage to {self._topic} not delivered: " + "; ".join(failures))

    def _produce(self, value: bytes) -> None:
        self._producer.produce(self._topic, value=value, key=self._key, on_delivery=self._on_delivery)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(f"{error.str()} ({len(message.value() or b'')} bytes)")


class AtlasRestEmitter:
    """Sends hook notifications to an Atlas server over REST v2, through the official ``apache-atlas`` client.

    Each notification maps to the REST call Atlas's hook consumer makes for it:
    ENTITY_CREATE_V2 / ENTITY_FULL_UPDATE_V2 -> ``POST /v2/entity/bulk``;
    ENTITY_PARTIAL_UPDATE_V2 -> ``PUT /v2/entity/uniqueAttribute/type/{type}``;
    ENTITY_DELETE_V2 -> ``DELETE /v2/entity/uniqueAttribute/type/{type}`` per entity.
    Calls are made in ``flush``, in the order emitted, and stop at the first failure.
    """

    def __init__(self, url: str, auth: tuple[str, str] | None = ("admin", "admin")) -> None:
        from apache_atlas.client.base_client import AtlasClient

        self.url = url
        self._client = AtlasClient(url, auth)
        self._queue: list[Mapping[str, Any]] = []

    def emit(self, notification: Mapping[str, Any]) -> None:
        self._queue.append(notification)

    def flush(self, timeout: float = 30.0) -> None:
        from apache_atlas.client.entity import EntityClient
        from apache_atlas.model.instance import EntityMutationResponse
        from apache_atlas.utils import attributes_to_params

        while self._queue:
            note = self._queue[0]
            kind = note["type"]
            try:
                if kind in ("ENTITY_CREATE_V2", "ENTITY_FULL_UPDATE_V2"):
                    self._client.entity.create_entities(note["entities"])
                elif kind == "ENTITY_PARTIAL_UPDATE_V2":
                    entity_id = note["entityId"]
                    api = EntityClient.UPDATE_ENTITY_BY_ATTRIBUTE.format_path_with_params(entity_id["typeName"])
                    self._client.call_api(api, EntityMutationResponse,
                                          attributes_to_params(entity_id["uniqueAttributes"]), note["entity"])
                elif kind == "ENTITY_DELETE_V2":
                    for entity_id in note["entities"]:
                        self._client.entity.delete_entity_by_attribute(entity_id["typeName"],
                                                                       entity_id["uniqueAttributes"])
                else:
                    raise LineageDeliveryError(f"cannot send a {kind} notification over REST")
            except LineageDeliveryError:
                raise
            except Exception as err:  # requests' connection errors and AtlasServiceException alike
                raise LineageDeliveryError(f"lineage to Atlas at {self.url} not delivered "
                                           f"({len(self._queue)} queued): {type(err).__name__}: {err}") from err
            self._queue.pop(0)
