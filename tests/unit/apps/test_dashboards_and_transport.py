"""The stream apps' Kafka-free helpers: the linkage dashboard's state, the skipped-record bookkeeping,
which partitions the transport lets aiokafka fetch."""

import asyncio

from apps.linker.dashboard import LinkageHistory
from mlstream.streaming.kafka_transport import fetch_changelogs_only_when_read
from mlstream.streaming.skipped_records import ReadMessage, SkippedRecords


def test_linkage_history_takes_each_seconds_latency_and_shows_quality_once_there_are_records():
    live = LinkageHistory(horizon_samples=2)
    for t, (links, latencies) in enumerate([(0, []), (10, [5.0] * 9 + [40.0]), (30, [6.0] * 20)]):
        for ms in latencies:
            live.on_linked(0.2, ms)
        quality = {"records": links, "precision": 1.0, "recall": 0.5, "f1": 2 / 3, "pairs_completeness": 0.9,
                   "reduction_ratio": 0.99}
        live.sample(float(t), {"links_out": links, "dead_letters": 1}, {"duplicate_records": 2}, entities=links,
                    model_fits=1, quality=quality)
    live.on_merge(3_000, "ent-a", ["ent-b"], 3)
    snap = live.snapshot(3_000)
    assert [s["end_to_end_p99_ms"] for s in snap["samples"]] == [40.0, 6.0]  # each second's own; the first fell off
    assert snap["samples"][-1]["bad_input"]["dead_letters"] == 1
    assert snap["samples"][-1]["bad_input"]["duplicate_records"] == 2
    assert snap["samples"][-1]["quality"]["recall"] == 0.5 and snap["merges"][0]["merged_from"] == ["ent-b"]
    assert live.latency()["end_to_end_ms"]["p99"] == 40.0  # /stats/ takes the latest records, not one second
    live.sample(3.0, {"links_out": 30}, {}, entities=30, model_fits=1, quality={"records": 0, "f1": 0.0})
    assert live.snapshot(3_000)["samples"][-1]["quality"] is None


def test_skipped_records_expect_the_offset_after_the_last_processed_and_read_back_only_gaps():
    counters = {}
    skipped = SkippedRecords("localhost:1", {"t:0": 9}, counters)  # a restart: the table says 9 was last
    assert skipped.expected("t", 0) == 10 and skipped.expected("t", 1) is None

    def message(partition, offset):
        return ReadMessage("t", partition, offset, None, None, 0.0, [])

    async def before(m):
        return await skipped.before(m)

    assert asyncio.run(before(message(0, 10))) == []  # the next one
    assert asyncio.run(before(message(0, 4))) == []  # a replay: the agent drops it
    assert asyncio.run(before(message(1, 500))) == []  # a partition it knows nothing of yet
    skipped.processed(message(0, 10))
    skipped.processed(message(0, 4))  # a replay does not move it back
    assert skipped.expected("t", 0) == 11 and counters == {}


class RecordingConsumer:
    """The four calls of aiokafka's consumer the transport makes, on sets."""

    def __init__(self, assigned):
        self.assigned, self.paused_tps = set(assigned), set()

    def assignment(self):
        return set(self.assigned)

    def paused(self):
        return set(self.paused_tps)

    def pause(self, *tps):
        self.paused_tps.update(tps)

    def resume(self, *tps):
        self.paused_tps.difference_update(tps)


def test_changelogs_are_fetched_only_while_faust_reads_them_and_stream_partitions_always():
    from aiokafka import TopicPartition
    from faust.types import TP

    records, changelog, leader = (TopicPartition("records", 0), TopicPartition("app-table-changelog", 0),
                                  TopicPartition("app-__assignor-__leader", 0))
    consumer = RecordingConsumer([records, changelog, leader])
    changelogs = {"app-table-changelog"}
    fetch_changelogs_only_when_read(consumer, {TP("app-table-changelog", 0)}, changelogs)  # recovery
    assert consumer.paused() == set()
    fetch_changelogs_only_when_read(consumer, {TP("records", 0)}, changelogs)  # streaming
    assert consumer.paused() == {changelog}
    fetch_changelogs_only_when_read(consumer, set(), changelogs)  # a rebalance: the stream is not paused
    assert consumer.paused() == {changelog}
    fetch_changelogs_only_when_read(consumer, {TP("app-table-changelog", 0)}, changelogs)  # recovery again
    assert consumer.paused() == set()


def test_a_topic_the_consumer_has_no_metadata_of_has_an_unknown_partition_count_not_zero():
    """aiokafka says 0 for a changelog created moments ago; Faust took it for a mismatch and crashed."""
    from types import SimpleNamespace

    from mlstream.streaming.kafka_transport import Consumer

    consumer = object.__new__(Consumer)  # only its thread's metadata matters here
    consumer._thread = SimpleNamespace(topic_partitions={"records": 3, "app-table-changelog": 0}.get)
    assert consumer.topic_partitions("records") == 3
    assert consumer.topic_partitions("app-table-changelog") is None
