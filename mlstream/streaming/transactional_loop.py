"""The data plane: a batched read-process-write loop on confluent-kafka, exactly once by Kafka's transactions.

Each batch (what has arrived since the last one, up to ``batch_size`` messages; the loop
waits up to ``batch_wait_s`` for a first one) is one transaction: the job's outputs, its state
changes and the consumed offsets (``send_offsets_to_transaction``) commit together or not at all.
A job's state lives per input partition in a compacted changelog topic, written in the same
transactions and read back (``read_committed``) when a partition is assigned: the design of
Kafka Streams, on Kafka's own machinery. So a worker killed at any point loses nothing and
repeats nothing: what it did after its last commit is aborted, and whoever takes its partitions
starts from that commit.

The inputs are co-partitioned (same partition count and key), and the range assignor gives one
worker the same partition numbers of every input topic, so partition ``p`` of the state topic
holds the state of partition ``p`` of all inputs. Within a partition the inputs are merged in
timestamp order, as Kafka Streams does: a message waits while another input of its partition
has older messages not yet fetched, so a backlog is processed in the order it was produced (a
record before the label that followed it) however the fetches happen to interleave. Static membership (``group.instance.id``) lets
a restarted worker take its partitions back at once instead of waiting out a session timeout.

Why not Faust's streams: with one awaited send per message Faust tops out near 3,000 messages/s
on this kind of machine (docs/data-plane.md has the measurements); this loop batches instead.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from mlstream.kafka import clients
from mlstream.settings import Settings

log = logging.getLogger(__name__)

#: Errors a consumer reports while the broker is away; the loop waits, librdkafka reconnects.
TRANSIENT_CONSUMER_ERRORS = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT,
                             KafkaError.UNKNOWN_TOPIC_OR_PART}


#: How long a batch's offsets may take to join its transaction before the producer is given up.
SEND_OFFSETS_DEADLINE_S = 30
#: How long the broker must answer again, after it went away during that call, before the call is given up.
BROKER_BACK_GRACE_S = 2.0
#: librdkafka backs off reconnecting up to 10 s by default: a restarted broker would be found that late.
RECONNECT_BACKOFF_MAX_MS = 1000
#: What the consumer fetches ahead, at most: librdkafka's default (64 MB, 100,000 messages a partition)
#: filled up whenever the app fell behind its feed, and showed as memory growth (bench soak).
PREFETCH_KBYTES, PREFETCH_MESSAGES = 16384, 20000


class Output(Protocol):
    def produce(self, topic: str, value: bytes | None, key: bytes | None = None, partition: int | None = None,
                headers: list | None = None) -> None: ...

    def state(self, partition: int, key: bytes, value: bytes | None) -> None: ...


class Job(Protocol):
    """What the loop runs: restore state on assignment, process batches, forget revoked partitions.

    ``prepare`` runs in the loop's thread and may block (decoding that waits for a registry);
    ``assigned``, ``revoked``, ``process``, ``committed`` and ``discard`` change the job's state and may
    be run elsewhere (on the event loop of the app that hosts the loop: :mod:`mlstream.streaming.loop_service`).
    """

    def assigned(self, partitions: dict[int, dict[bytes, bytes]]) -> None:
        """Partitions now ours, each with its state as restored from the changelog (key -> latest value)."""

    def revoked(self, partitions: list[int]) -> None:
        """Partitions no longer ours: drop their state (the next owner restores it from the changelog)."""

    def prepare(self, messages: list[Message], out: Output) -> object:
        """Work on a batch that touches no state (decoding); its result goes to ``process``."""

    def process(self, messages: list[Message], prepared: object, out: Output) -> None:
        """One batch, in offset order per partition; everything it emits commits with the batch."""

    def committed(self) -> None:
        """The batch last processed committed: what it did may now show (figures readers must be able to trust)."""

    def discard(self) -> None:
        """The batch last prepared did not commit: forget what it changed outside the changelog."""


@dataclass
class LoopStats:
    batches: int = 0
    messages: int = 0
    aborted_batches: int = 0
    restarts: int = 0
    restored_entries: int = 0
    last_restore_s: float = 0.0
    lag: dict[str, int] = field(default_factory=dict)
    assigned: list[int] = field(default_factory=list)
    joined: bool = False  # the group gave this worker its partitions (none is a share too) at least once
    #: seconds from opening the clients to: transactions initialised, partitions assigned, the first commit
    startup_s: dict[str, float] = field(default_factory=dict)


class RestartLoop(Exception):
    """The producer or consumer cannot go on (fenced, fatal, an abort): rebuild both and restore state."""


class _TransactionOutput:
    def __init__(self, producer: Producer, state_topic: str):
        self.producer = producer
        self.state_topic = state_topic

    def produce(self, topic, value, key=None, partition=None, headers=None) -> None:
        options = {} if partition is None else {"partition": partition}
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, headers=headers, **options)
                return
            except BufferError:  # the local queue is full: let deliveries drain, then retry
                self.producer.poll(0.05)

    def state(self, partition, key, value) -> None:
        self.produce(self.state_topic, value, key=key, partition=partition)


class TransactionalLoop:
    """Consume ``inputs`` in group ``group_id`` as member ``instance_id``; run ``job`` batch by batch, exactly once."""

    def __init__(self, settings: Settings, group_id: str, instance_id: str, inputs: list[str], state_topic: str,
                 job: Job, batch_size: int = 2000, batch_wait_s: float = 0.1, session_timeout_ms: int = 10_000,
                 transaction_timeout_ms: int = 10_000):
        self.settings = settings  # the profile's cluster: its clients come from mlstream.kafka.clients
        self.group_id = group_id
        self.instance_id = instance_id
        self.inputs = inputs
        self.state_topic = state_topic
        self.job = job
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.session_timeout_ms = session_timeout_ms
        self.transaction_timeout_ms = transaction_timeout_ms
        self.stats = LoopStats()
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None
        self._owned: list[int] = []
        self._restore_failed: BaseException | None = None
        self._opened_at = time.monotonic()
        #: (topic, partition) -> fetched messages not yet processed (their offsets are not committed)
        self._fetched: dict[tuple[str, int], deque[Message]] = {}
        #: a partition's messages wait this long at most for another input to catch up
        self.max_wait_s = 2.0
        self._waiting_since: dict[int, float] = {}
        self._at_end: set[tuple[str, int]] = set()  # inputs whose last fetched message has been taken

    # -- clients ---------------------------------------------------------------------------------

    def _open(self) -> None:
        self._opened_at = time.monotonic()
        self.stats.startup_s = {}
        self.producer = clients.producer(self.settings, **{
            # One transactional id per worker: a restarted worker fences its own zombie and aborts
            # the transaction it left open. Offsets carry the group's metadata (KIP-447), so a
            # zombie of another worker is fenced by the group generation too.
            "transactional.id": f"{self.group_id}-{self.instance_id}",
            # A worker that dies for good leaves its transaction open, and read_committed readers
            # of its output partitions wait until the coordinator aborts it: Kafka Streams keeps
            # this at 10 s for exactly once, and so do we (a longer batch is aborted and redone).
            "transaction.timeout.ms": self.transaction_timeout_ms,
            "linger.ms": 5,
            "reconnect.backoff.max.ms": RECONNECT_BACKOFF_MAX_MS,
        })
        self._init_transactions()
        self._startup_step("transactions")
        self.consumer = clients.consumer(self.settings, **{
            "group.id": self.group_id,
            "group.instance.id": self.instance_id,
            "session.timeout.ms": self.session_timeout_ms,
            "partition.assignment.strategy": "range",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            # Tells when an input has nothing more to give now: the merge by timestamp stops waiting for it.
            "enable.partition.eof": True,
            "reconnect.backoff.max.ms": RECONNECT_BACKOFF_MAX_MS,
            "queued.max.messages.kbytes": PREFETCH_KBYTES,
            "queued.min.messages": PREFETCH_MESSAGES,
        })
        self.consumer.subscribe(self.inputs, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_revoke)

    def _init_transactions(self) -> None:
        """Register the transactional id (fencing a zombie of this worker), waiting while the
        coordinator is away or still loading, as it is for a while after a broker restart."""
        while True:
            try:
                self.producer.init_transactions(60)
                return
            except KafkaException as err:
                error = err.args[0]
                if not error.retriable():
                    raise RestartLoop(f"initialising transactions: {error}") from err
                log.warning("waiting for the transaction coordinator: %s", error)
                time.sleep(1.0)

    def _startup_step(self, step: str) -> None:
        self.stats.startup_s.setdefault(step, round(time.monotonic() - self._opened_at, 3))

    def _close(self) -> None:
        if self.consumer is not None:
            try:
                self.consumer.close()  # a static member does not leave the group: a restart takes its partitions back
            except KafkaException as err:
                log.warning("closing the consumer: %s", err)
        if self.producer is not None:
            try:
                self.producer.flush(10)
            except KafkaException as err:  # a fenced or failed producer: its transaction aborts anyway
                log.warning("closing the producer: %s", err)
        self.consumer = self.producer = None

    # -- rebalances ------------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        partitions = sorted({tp.partition for tp in assigned})
        started = time.perf_counter()
        try:
            restored = restore_state(self.settings, self.state_topic, partitions)
        except BaseException as err:  # raised from inside consume(): keep it for the loop to act on
            self._restore_failed = err
            return
        self.stats.last_restore_s = time.perf_counter() - started
        self.stats.restored_entries = sum(len(entries) for entries in restored.values())
        self.job.assigned(restored)
        self._startup_step("assigned")
        self._owned = partitions
        self.stats.assigned = partitions
        self.stats.joined = True
        log.info("assigned partitions %s of %s; restored %d state entries in %.2f s", partitions,
                 ", ".join(self.inputs), self.stats.restored_entries, self.stats.last_restore_s)

    def _on_revoke(self, consumer: Consumer, revoked: list[TopicPartition]) -> None:
        partitions = sorted({tp.partition for tp in revoked})
        for tp in revoked:  # never processed, never committed: the next owner fetches them again
            self._fetched.pop((tp.topic, tp.partition), None)
            self._at_end.discard((tp.topic, tp.partition))
        self.job.revoked(partitions)
        self._owned = [p for p in self._owned if p not in partitions]
        self.stats.assigned = self._owned

    # -- the loop --------------------------------------------------------------------------------

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Process batches until ``should_stop()``; rebuild the clients and restore state after any fatal error."""
        while not should_stop():
            try:
                self._open()
                while not should_stop():
                    self._run_batch()
                return
            except RestartLoop as err:
                self.stats.restarts += 1
                log.warning("data plane restarting from the last commit: %s", err)
                time.sleep(1.0)
            finally:
                # Whatever happened since the last commit is forgotten: the state is restored again.
                self.job.revoked(self._owned)
                self._owned = []
                self._fetched.clear()
                self._at_end.clear()
                self._close()

    def _run_batch(self) -> None:
        # What librdkafka has fetched already, or else the first message to come: a batch does not wait
        # to fill. Under a backlog the fetch queue holds full batches; at a steady rate each batch is what
        # came while the last one committed, so a record waits one commit, not batch_wait_s (with
        # consume(batch_size, batch_wait_s) every record waited for the whole wait at 500 records/s).
        messages = self.consumer.consume(self.batch_size, timeout=0)
        if not messages:
            messages = self.consumer.consume(1, timeout=self.batch_wait_s)
            if messages:
                messages += self.consumer.consume(self.batch_size - 1, timeout=0)
        if self._restore_failed is not None:
            err, self._restore_failed = self._restore_failed, None
            raise RestartLoop(f"restoring state failed: {err}")
        for message in messages:
            error = message.error()
            if error is None:
                self._fetched.setdefault((message.topic(), message.partition()), deque()).append(message)
                self._at_end.discard((message.topic(), message.partition()))
            elif error.code() == KafkaError._PARTITION_EOF:
                self._at_end.add((message.topic(), message.partition()))
            elif error.code() in TRANSIENT_CONSUMER_ERRORS:
                log.debug("consumer: %s", error)
            elif error.fatal():
                raise RestartLoop(f"consumer: {error}")
            else:
                log.warning("consumer: %s", error)
        batch = self._in_time_order()
        if not batch:
            self.producer.poll(0)
            return
        self._commit(batch)
        if "first_commit" not in self.stats.startup_s:
            self._startup_step("first_commit")
            log.info("first batch committed (%d messages); seconds since the clients opened: %s", len(batch),
                     ", ".join(f"{step} {at:.2f}" for step, at in self.stats.startup_s.items()))
        self.stats.batches += 1
        self.stats.messages += len(batch)
        self._measure_lag()

    def _in_time_order(self) -> list[Message]:
        """The fetched messages that may be processed now: per partition, all inputs merged by timestamp.

        A partition's merge stops at an input with nothing fetched that has not reached its end (it
        may hold an older message still to come), unless the partition has waited ``max_wait_s``.
        """
        batch: list[Message] = []
        now = time.monotonic()
        partitions = sorted({p for _, p in self._fetched})
        start = self.stats.batches % len(partitions) if partitions else 0
        for partition in partitions[start:] + partitions[:start]:  # a big backlog in one starves none
            queues = {topic: self._fetched.get((topic, partition)) or deque() for topic in self.inputs}
            if not any(queues.values()):
                continue
            # The wait starts when the merge stalls on an input that is behind, and ends when it is
            # over (the input delivered, or caught up) or has lasted max_wait_s: then it starts anew.
            waited_out = now - self._waiting_since.get(partition, now) > self.max_wait_s
            behind = {topic for topic, queue in queues.items() if not queue and not self._caught_up(topic, partition)}
            stalled = False
            while len(batch) < self.batch_size:
                # Ties go to the earlier input: a record before a label stamped the same millisecond.
                heads = [(queue[0].timestamp()[1], rank, topic)
                         for rank, (topic, queue) in enumerate(queues.items()) if queue]
                if not heads:
                    break
                if behind and not waited_out and len(heads) < len(queues):
                    stalled = True
                    break
                _, _, topic = min(heads)
                batch.append(queues[topic].popleft())
                if not queues[topic] and not self._caught_up(topic, partition):
                    behind.add(topic)
            if stalled:
                self._waiting_since.setdefault(partition, now)
            else:
                self._waiting_since.pop(partition, None)
        return batch

    def _caught_up(self, topic: str, partition: int) -> bool:
        """Whether the consumer has reached the end of this input (so an empty queue hides nothing older)."""
        return (topic, partition) in self._at_end

    def _commit(self, batch: list[Message]) -> None:
        producer = self.producer
        producer.begin_transaction()
        try:
            out = _TransactionOutput(producer, self.state_topic)
            self.job.process(batch, self.job.prepare(batch, out), out)
            self._send_offsets(next_offsets(batch))
            commit_transaction(producer)
        except RestartLoop:
            self.stats.aborted_batches += 1
            self.job.discard()
            raise
        except KafkaException as err:
            self.stats.aborted_batches += 1
            self.job.discard()
            try:
                producer.abort_transaction(30)
            except KafkaException:
                pass  # fatal: the restart makes a new producer, whose init aborts the transaction
            # The job's memory has moved past what committed: start again from the commit.
            raise RestartLoop(f"batch of {len(batch)} aborted: {err.args[0]}") from err
        self.job.committed()

    def _send_offsets(self, offsets: list[TopicPartition]) -> None:
        """``send_offsets_to_transaction``, given up when it is stuck (:func:`offsets_call_stuck`).

        librdkafka can block in it for good when the group coordinator went away meanwhile (as in
        a broker restart), whatever its timeout says (confluentinc/librdkafka#5456, #5511). So it
        runs in a thread of its own while this one asks the broker, through the consumer, whether it
        answers; once the call is stuck the producer is abandoned (its transaction aborts when the
        next producer with the same transactional id initialises) and the loop starts again from the
        last commit. Waiting out the whole deadline instead had a restarted broker wait up to 30 s
        for the app (chaos broker_restart: scoring again 14.9 s after the broker was back).
        """
        producer, metadata = self.producer, self.consumer.consumer_group_metadata()
        call = concurrent.futures.Future()

        def send() -> None:
            try:
                producer.send_offsets_to_transaction(offsets, metadata, SEND_OFFSETS_DEADLINE_S)
                call.set_result(None)
            except BaseException as err:
                call.set_exception(err)

        threading.Thread(target=send, name="send-offsets", daemon=True).start()
        started, went_away, answering_since = time.monotonic(), False, None
        while True:
            try:
                call.result(timeout=0.5)
                return
            except concurrent.futures.TimeoutError:
                pass
            now = time.monotonic()
            if self._broker_answers():
                answering_since = answering_since or now
            else:
                went_away, answering_since = True, None
            answering_s = now - answering_since if answering_since else 0.0
            if offsets_call_stuck(now - started, went_away, answering_s):
                break
        self.producer = None  # blocked in librdkafka: neither flushed nor closed, just left behind
        raise RestartLoop(f"send_offsets_to_transaction blocked for {time.monotonic() - started:.1f} s"
                          + (" across a broker outage" if went_away else "") + " (librdkafka #5456)")

    def _broker_answers(self) -> bool:
        try:
            self.consumer.list_topics(self.state_topic, timeout=0.5)
            return True
        except KafkaException:
            return False

    def _measure_lag(self) -> None:
        lag: dict[str, int] = {}
        for tp in self.consumer.assignment():
            _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            position = self.consumer.position([tp])[0].offset
            if high >= 0 and position >= 0:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - position)
        self.stats.lag = lag


def offsets_call_stuck(blocked_s: float, broker_went_away: bool, answering_s: float) -> bool:
    """Whether a ``send_offsets_to_transaction`` blocked this long is stuck, not slow.

    It is once the broker, which went away while it waited, has answered again for
    ``BROKER_BACK_GRACE_S`` (librdkafka #5456: the call does not notice the coordinator is back),
    and in any case past ``SEND_OFFSETS_DEADLINE_S`` (a slow coordinator may take its time).

    >>> offsets_call_stuck(12.0, broker_went_away=True, answering_s=2.5)
    True
    >>> offsets_call_stuck(12.0, broker_went_away=True, answering_s=0.0)   # the broker is still away
    False
    >>> offsets_call_stuck(12.0, broker_went_away=False, answering_s=12.0)  # slow, never away
    False
    >>> offsets_call_stuck(36.0, broker_went_away=False, answering_s=36.0)
    True
    """
    return blocked_s > SEND_OFFSETS_DEADLINE_S + 5 or (broker_went_away and answering_s >= BROKER_BACK_GRACE_S)


def commit_transaction(producer: Producer, attempts: int = 10) -> None:
    """Commit, retrying what Kafka says may be retried (a broker briefly away); raise what needs an abort."""
    for attempt in range(attempts):
        try:
            producer.commit_transaction(30)
            return
        except KafkaException as err:
            error = err.args[0]
            if error.retriable() and attempt < attempts - 1:
                log.warning("commit failed (%s), retrying", error)
                time.sleep(0.5)
                continue
            raise


def next_offsets(batch: Iterable[Message]) -> list[TopicPartition]:
    """The offsets to commit after ``batch``: one past the last message of each partition."""
    ends: dict[tuple[str, int], int] = {}
    for message in batch:
        key = (message.topic(), message.partition())
        ends[key] = max(ends.get(key, -1), message.offset() + 1)
    return [TopicPartition(topic, partition, offset) for (topic, partition), offset in ends.items()]


def restore_state(settings: Settings, topic: str, partitions: list[int], timeout_s: float = 120.0
                  ) -> dict[int, dict[bytes, bytes]]:
    """The committed contents of ``topic``'s ``partitions``: key -> latest value, tombstones applied.

    The end offsets are read once (after the owner's ``init_transactions`` aborted anything a
    dead owner left open): the last offset of a transactional partition is a commit marker, so
    reading is done when the position reaches the end offset, not when a message at end - 1 came.
    """
    restored: dict[int, dict[bytes, bytes]] = {p: {} for p in partitions}
    if not partitions:
        return restored
    consumer = clients.consumer(settings, **{"group.id": f"restore-{topic}", "enable.auto.commit": False,
                                             "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    try:
        ends = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False)
            if high > low:
                ends[p] = high
        if not ends:
            return restored
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        deadline = time.monotonic() + timeout_s
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"restoring {topic} partitions {sorted(ends)} took over {timeout_s:.0f} s")
            # A short wait: consume() waits it out unless 10,000 came, and a restart waits for the restore.
            for message in consumer.consume(10_000, timeout=0.05):
                if message.error() is not None:
                    if message.error().code() in TRANSIENT_CONSUMER_ERRORS:
                        continue
                    raise KafkaException(message.error())
                entries = restored[message.partition()]
                if message.value() is None:
                    entries.pop(message.key(), None)
                else:
                    entries[message.key()] = message.value()
            for tp in consumer.position([TopicPartition(topic, p) for p in list(ends)]):
                if tp.offset >= ends[tp.partition]:
                    del ends[tp.partition]
        return restored
    finally:
        consumer.close()
