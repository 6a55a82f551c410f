"""Records Faust's consumer passed over, read back directly so that no record is lost.

faust-streaming 0.15.3, when a worker restarts with records already waiting, was seen to
skip the second waiting record of a partition (and often deliver the first twice), then
commit past it: restarting the linkage app with half of a 2,400-record feed waiting, offset
1201 was skipped in 14 of 15 restarts, and lost in 4 of 8 before this guard existed. Records of our topics have consecutive offsets, so an
agent that is handed an offset past the one it expects next has been skipped over; it
reads the missing range itself (confluent-kafka, no consumer group) and processes those
records first. Replays are the agents' business (both apps drop what they have seen).

    >>> skipped = SkippedRecords("localhost:9092", {}, {})
    >>> skipped.processed(ReadMessage("t", 0, 7, None, None, 0.0, []))
    >>> skipped.expected("t", 0)
    8
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, MutableMapping
from dataclasses import dataclass

from mlstream.kafka.reader import read_range

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 30


@dataclass(frozen=True)
class ReadMessage:
    """A message read with confluent-kafka, with the attributes of Faust's messages the agents use."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float  # seconds, as Faust's
    headers: list

    @classmethod
    def of(cls, message) -> "ReadMessage":
        return cls(message.topic(), message.partition(), message.offset(), message.key(), message.value(),
                   message.timestamp()[1] / 1000, message.headers() or [])


class SkippedRecords:
    """The offset each partition's agent expects next, and what the consumer jumped over.

    ``last_processed`` maps ``"<topic>:<partition>"`` to the last offset processed: a
    changelog-backed table survives a restart, so a skip of the first waiting record is
    caught too.
    """

    def __init__(self, bootstrap_servers: str, last_processed: MutableMapping[str, int], counters: dict):
        self.bootstrap_servers = bootstrap_servers
        self.last_processed = last_processed
        self.counters = counters

    def expected(self, topic: str, partition: int) -> int | None:
        last = self.last_processed.get(f"{topic}:{partition}")
        return None if last is None else last + 1

    def processed(self, message) -> None:
        key = f"{message.topic}:{message.partition}"
        last = self.last_processed.get(key)
        if last is None or message.offset > last:
            self.last_processed[key] = message.offset

    async def messages(self, stream, prepare: Callable[[], object] = lambda: None) -> AsyncIterator:
        """Each message of a Faust ``stream``, after any the consumer skipped before it.

        ``prepare`` runs before each message is looked at: the linkage app builds its linker
        there (once the tables are recovered), whose stored records say where it was left.
        """
        async for event in stream.events():
            prepare()
            for missed in await self.before(event.message):
                yield missed
            yield event.message

    async def before(self, message) -> list[ReadMessage]:
        """The messages of ``message``'s partition between the expected offset and it."""
        expected = self.expected(message.topic, message.partition)
        if expected is None or message.offset <= expected:
            return []
        self.counters["skipped_offsets_read_back"] = (self.counters.get("skipped_offsets_read_back", 0)
                                                      + message.offset - expected)
        log.warning("the consumer skipped %s[%s] offsets %d..%d: reading them directly",
                    message.topic, message.partition, expected, message.offset - 1)
        fetched = await asyncio.get_running_loop().run_in_executor(
            None, read_range, self.bootstrap_servers, message.topic, {message.partition: expected},
            {message.partition: message.offset}, READ_TIMEOUT_S)
        return [ReadMessage.of(m) for m in fetched]
