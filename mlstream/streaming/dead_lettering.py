"""Decoding with a dead-letter fallback, shared by the Faust apps (scorer, linker).

A message that cannot be decoded goes to the dead-letter topic with its bytes
and the reason, is counted, and the agent moves on. A registry that cannot be
reached is not the message's fault: the agent waits and retries instead.
"""

from __future__ import annotations

import asyncio
import logging

from mlstream.kafka.dead_letters import dead_letter
from mlstream.kafka.serde import TopicCodec, UndecodableValue

log = logging.getLogger(__name__)

REGISTRY_RETRY_S = 2.0


class DeadLetterer:
    def __init__(self, topic, codec: TopicCodec, app_id: str, counters: dict):
        self.topic = topic  # a Faust topic
        self.codec = codec
        self.app_id = app_id
        self.counters = counters

    async def decode(self, codec: TopicCodec, message) -> dict | None:
        """The decoded value, or None once the message has been dead-lettered."""
        while True:
            try:
                return codec.decode(message.value)
            except UndecodableValue as err:
                await self.send(message, err.kind, err.message)
                return None
            except Exception as err:
                log.warning("registry unavailable while decoding %s[%s]@%s (%s); retrying in %ss",
                            message.topic, message.partition, message.offset, err, REGISTRY_RETRY_S)
                await asyncio.sleep(REGISTRY_RETRY_S)

    async def send(self, message, error_type: str, error_message: str) -> None:
        letter = dead_letter(message.topic, message.partition, message.offset, int(message.timestamp * 1000),
                             message.key, message.value, message.headers, error_type, error_message, self.app_id)
        await self.topic.send(key=message.key, value=self.codec.encode(letter))
        self.counters["dead_letters"] += 1
        log.warning("dead-lettered %s[%s]@%s: %s", message.topic, message.partition, message.offset, error_type)
