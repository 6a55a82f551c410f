"""The same policies in Spark: `spark secure-view` gives each team the rows and values of its secure topic.

The processor writes the secure topics of a raw customers topic; Spark builds each team's view of
the raw topic with its own built-ins; the two must agree record for record (on the plain broker:
what is compared is the masking, the ACLs are tested on the secured one).
"""

from __future__ import annotations

import pytest

from mlstream.config_store import open_config_store
from mlstream.kafka import clients
from mlstream.kafka.reader import read_all
from mlstream.kafka.serde import TopicCodec
from mlstream.kafka.topics import init
from producers import pii_customers
from spark_jobs import secure_view
from tests.conftest import free_port, isolated_settings
from tests.integration.raw_customers import prepare_raw_customers
from tests.integration.test_secure_datasets import Processor

pytestmark = pytest.mark.integration

RECORDS = 300


def test_spark_views_equal_the_secure_topics_record_for_record(services, spark, tmp_path):
    settings = isolated_settings(services, tmp_path / "state")
    init(settings, say=lambda _: None)
    raw = prepare_raw_customers(settings)
    store = open_config_store(settings)
    registry = clients.registry_client(settings)
    codec = TopicCodec.for_schema(registry, raw, pii_customers.schema_json())
    producer = clients.producer(settings)
    rows = pii_customers.customers(RECORDS, run="sv")
    for row in rows:
        producer.produce(raw, key=row["id"].encode(), value=codec.encode(row))
    assert producer.flush(30) == 0

    processor = Processor(settings, raw, free_port())
    try:
        stats = processor.wait(lambda s: s["counters"]["records_in"] >= RECORDS, "the raw records")
    finally:
        processor.stop()
    assert stats["counters"]["records_in"] == RECORDS

    for team in ("fraud", "churn"):
        topic = f"{raw}.secure.{team}"
        decoder = TopicCodec.decoder(registry, topic)
        from_topic = sorted((decoder.decode(m.value()) for m in read_all(settings, topic)), key=lambda r: r["id"])
        result = secure_view.run(spark, settings, raw, team, store, say=lambda _: None)
        from_spark = sorted((r.asDict() for r in spark.table(result["view"]).collect()), key=lambda r: r["id"])
        assert 0 < len(from_topic) < RECORDS and result["rows"] == len(from_topic)
        assert from_spark == from_topic, team
    assert "sha2(CAST(`email` AS STRING), 256)" in secure_view.run(spark, settings, raw, "fraud", store,
                                                                    say=lambda _: None)["sql"]
