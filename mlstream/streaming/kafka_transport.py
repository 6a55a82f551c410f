"""Faust's aiokafka transport with one change: aiokafka fetches a table's changelog only while Faust reads it.

Faust keeps each table's changelog partitions assigned to its consumer after recovery,
and stops reading them in its own bookkeeping only; aiokafka goes on fetching them. The
first record the app then writes to a changelog is fetched and never read, and while a
broker has prefetched data nobody has read, aiokafka holds back every fetch to that
broker for 100 ms (its ``prefetch_backoff``, a setting neither Faust nor
``AIOKafkaConsumer`` exposes). With one broker, each table's first write after a start
stopped the input stream for 100 ms: the linkage app's p99 latency at 500 records/s went
from 76-107 ms to a median of 10 ms (16 passes) without it and the two start-up fixes in
``faust_app.warm_up``.

Here, before each fetch, the changelog partitions Faust is not reading are paused in
aiokafka and the ones it reads are resumed, on the consumer's own thread. During recovery
Faust reads the changelogs, so they are fetched then.

The scheme ``mlstream-kafka://`` names this transport; ``new_app`` uses it.
"""

from __future__ import annotations

from aiokafka import TopicPartition
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka

SCHEME = "mlstream-kafka"


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def _fetch_records(self, consumer, active_partitions, timeout=None, max_records=None):
        if active_partitions is not None:
            fetch_changelogs_only_when_read(consumer, active_partitions, self.consumer.app.tables.changelog_topics)
        return await super()._fetch_records(consumer, active_partitions, timeout=timeout,
                                            max_records=max_records)


def fetch_changelogs_only_when_read(consumer, reading, changelog_topics) -> None:
    """Pause the changelog partitions not in ``reading``; resume the paused ones that are.

    Only changelogs: a stream partition paused while Faust recovers would sit out the
    long poll (up to 1.5 s) already in flight to its broker once it is resumed.
    """
    reading = {TopicPartition(tp.topic, tp.partition) for tp in reading}
    changelogs = {tp for tp in consumer.assignment() if tp.topic in changelog_topics}
    paused = consumer.paused()
    if idle := changelogs - reading - paused:
        consumer.pause(*idle)
    if wanted := paused & reading:
        consumer.resume(*wanted)


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def topic_partitions(self, topic: str) -> int | None:
        """None (not known yet), not 0, for a topic the consumer has no metadata of yet.

        aiokafka's group coordinator counts a subscribed topic it has no metadata of as 0
        partitions; a table's changelog created moments ago, at the first start of an app id,
        is one. Faust took that 0 for a partition count other than the source topic's and
        crashed the agent on its first record (PartitionsMismatch) when a backlog was already
        waiting: 1 start in 10 of `mlstream bench scorer`'s app rounds. Unknown skips Faust's
        check, and sending to the changelog waits for its metadata.
        """
        return super().topic_partitions(topic) or None


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


drivers.TRANSPORTS.setdefault(SCHEME, f"{__name__}:Transport")
