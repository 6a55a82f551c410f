"""The secure-dataset processor exactly once, through real `mlstream security process` workers on the real broker.

A raw customers feed plays while the processor is SIGKILLed twice and restarted; read back with
``read_committed`` (never from the processor's word), each team's secure topic holds each raw
record its row filter keeps exactly once, none missing, none twice, and none of the raw values
of a masked field. On the plain broker: the ACLs are tested on the secured one
(test_secure_datasets.py); what is tested here is the data plane's guarantee.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections import Counter

import pytest

from mlstream.kafka import clients
from mlstream.kafka.reader import read_all
from mlstream.kafka.serde import TopicCodec
from mlstream.kafka.topics import init
from producers import pii_customers
from tests.conftest import free_port
from tests.integration.raw_customers import prepare_raw_customers
from tests.integration.test_secure_datasets import Processor
from tools.demo import wait_for

pytestmark = pytest.mark.integration

RECORDS = 3000
RATE = 100  # records/s: a 30 s feed, time for two kills and restarts in the middle of it
#: the example policies' row filters (hive-policies.json, the directory's attributes), evaluated independently
KEPT = {"fraud": lambda r: r["region"] == "EU" and r["consent"], "churn": lambda r: r["region"] == "US"}


def feed(settings, topic: str, rows: list[dict]) -> threading.Thread:
    def play() -> None:
        codec = TopicCodec.for_schema(clients.registry_client(settings), topic, pii_customers.schema_json())
        producer = clients.producer(settings)
        for i, row in enumerate(rows):
            producer.produce(topic, key=row["id"].encode(), value=codec.encode(row))
            if i % 10 == 9:
                producer.poll(0)
                time.sleep(10 / RATE)
        assert producer.flush(30) == 0

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    return thread


def test_sigkills_mid_feed_write_each_kept_record_once_and_masked(isolated):
    settings = dataclasses.replace(isolated, worker_id="secure-a")  # the same member after each restart
    init(settings, say=lambda _: None)
    raw = prepare_raw_customers(settings)
    topics = {team: f"{raw}.secure.{team}" for team in KEPT}
    admin = clients.admin(settings)
    rows = pii_customers.customers(RECORDS, run="eo")
    expected = {team: sorted(r["id"] for r in rows if kept(r)) for team, kept in KEPT.items()}

    def committed() -> dict[str, list]:
        return {team: read_all(settings, topic) if topic in admin.list_topics(timeout=15).topics else []
                for team, topic in topics.items()}

    processor = Processor(settings, raw, free_port())
    playing = feed(settings, raw, rows)
    try:
        total = sum(len(ids) for ids in expected.values())
        for share in (0.2, 0.5):
            # Committed secure records (read_committed), not /stats/: the kill comes after a commit, often in
            # the middle of the next transaction.
            wait_for(lambda: sum(len(v) for v in committed().values()) >= total * share, 120,
                     f"{share:.0%} of the kept records secured (see {processor.log_path})")
            assert playing.is_alive(), "the feed ended before the kill: the kill was not mid-feed"
            processor.process.send_signal(signal.SIGKILL)
            processor.process.wait()
            processor = Processor(settings, raw, processor.web_port)
        playing.join()
        wait_for(lambda: all(len(v) >= len(expected[t]) for t, v in committed().items()), 120,
                 f"every kept record secured (see {processor.log_path})")
        stats = processor.wait(lambda s: s["data_plane"].get("restored_entries", 0) > 0, "the restored state")
    finally:
        processor.stop()
    raw_values = [row[field].encode() for row in rows for field in ("name", "email", "phone")]
    registry = clients.registry_client(settings)
    for team, messages in committed().items():
        decoder = TopicCodec.decoder(registry, topics[team])
        ids = [decoder.decode(m.value())["id"] for m in messages]
        assert sorted(ids) == expected[team], (team, [i for i, n in Counter(ids).items() if n > 1][:5])
        assert not any(value in m.value() for m in messages for value in raw_values), team
    assert stats["halted"] == {} and sorted(stats["teams"]) == ["churn", "fraud"]
