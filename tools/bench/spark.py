"""``mlstream spark bench``: rows per second reading and decoding one topic, Spark beside the Python consumer.

A topic of its own (``<prefix>bench.<run id>``, the records schema) is filled with N records
through a fast producer path: a few thousand distinct records of a dataset are encoded once
(Confluent framing, schema id from the registry) and their bytes sent again and again with
large batches and linger, so producing does not dominate the run. Then, in the same run:

- **python**: one confluent-kafka consumer reads every message and decodes it with
  confluent-kafka's ``AvroDeserializer`` (:class:`mlstream.kafka.serde.TopicCodec`), as the stream
  app does;
- **spark read**: Spark's Kafka source reads every message, nothing decoded (the floor);
- **spark read+decode**: the same plus :func:`spark_jobs.avro.decode` (``from_avro``,
  quarantine columns), every decoded column materialised (the ``noop`` sink).

Spark's start-up (JVM, connector jars) and one untimed warm-up read are left out of its figures. The topic is deleted at the end.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Callable


from mlstream.kafka import clients
from mlstream.kafka.serde import TopicCodec, value_subject

from mlstream.kafka.topics import TopicSpec, create_topics, register_schemas
from mlstream.settings import Settings
from producers.datasets import examples, source_name
from spark_jobs.avro import decoded_rows, fetch_schemas, kafka_options
from spark_jobs.topics import read_batch

DISTINCT_RECORDS = 2000


def create_topic(settings: Settings, topic: str) -> None:
    """Create the topic and register the records schema under it."""
    spec = TopicSpec(topic, settings.partitions, "record")
    create_topics(clients.admin(settings), [spec], say=lambda line: None)
    register_schemas(clients.registry_client(settings), [spec], say=lambda line: None)


def produce(settings: Settings, topic: str, n: int, say: Callable[[str], None]) -> dict:
    """N records from pre-encoded bodies; returns the figures of the producing itself."""
    codec = TopicCodec.for_topic(clients.registry_client(settings), topic, "record")
    now = int(time.time() * 1000)
    bodies = [(f"bench-{i}".encode(), codec.encode({"id": f"bench-{i}", "source": source_name("bananas"),
                                                    "event_time": now, "features": features}))
              for i, (features, _) in enumerate(itertools.islice(examples("bananas"), DISTINCT_RECORDS))]
    producer = clients.producer(settings, **{"linger.ms": 50,
                         "batch.size": 1_000_000, "compression.type": "lz4", "acks": "1",
                         "queue.buffering.max.messages": 1_000_000})
    started = time.perf_counter()
    for i in range(n):
        key, value = bodies[i % len(bodies)]
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.1)
        if i % 100_000 == 0 and i:
            producer.poll(0)
            say(f"spark bench: produced {i:,} of {n:,}")
    if producer.flush(120):
        raise RuntimeError(f"spark bench: records still unsent after 120 s to {topic}")
    seconds = time.perf_counter() - started
    return {"records": n, "seconds": round(seconds, 3), "records_per_second": round(n / seconds)}


def python_consumer(settings: Settings, topic: str, n: int) -> dict:
    """Read and decode every message with one confluent-kafka consumer and AvroDeserializer."""
    codec = TopicCodec.for_topic(clients.registry_client(settings), topic, "record")
    consumer = clients.consumer(settings, **{"group.id": f"bench-{uuid.uuid4().hex}", "enable.auto.commit": False,
                                             "auto.offset.reset": "earliest", "fetch.max.bytes": 52_428_800,
                                             "queued.max.messages.kbytes": 262_144})
    consumer.subscribe([topic])
    started, rows, features = time.perf_counter(), 0, 0
    try:
        while rows < n:
            for message in consumer.consume(num_messages=10_000, timeout=1.0):
                if message.error() is None:
                    features += len(codec.decode(message.value())["features"])
                    rows += 1
            if time.perf_counter() - started > 600:
                raise RuntimeError(f"python consumer read only {rows:,} of {n:,} in 600 s")
    finally:
        consumer.close()
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds)}


def spark_read(spark, settings: Settings, topic: str, decode: bool) -> dict:
    started = time.perf_counter()
    if decode:
        frame = decoded_rows(read_batch(spark, settings, fetch_schemas(settings, topic, "record")))
    else:
        frame = spark.read.format("kafka").options(**kafka_options(settings, topic)).load()
    frame.write.format("noop").mode("overwrite").save()
    seconds = time.perf_counter() - started
    rows = (frame.count() if not decode else frame.agg({"id": "count"}).first()[0])  # outside the timing
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds)}


def run(settings: Settings, records: int, start_spark: Callable[[], object],
        say: Callable[[str], None] = print) -> dict:
    topic = f"{settings.topics.prefix}bench.{uuid.uuid4().hex[:8]}"
    result: dict = {"topic": topic, "records": records}
    create_topic(settings, topic)
    try:
        say(f"spark bench: producing {records:,} records into {topic}")
        result["produce"] = produce(settings, topic, records, say)
        say(f"spark bench: produced at {result['produce']['records_per_second']:,} records/s")
        say("spark bench: python consumer + AvroDeserializer ...")
        result["python_read_decode"] = python_consumer(settings, topic, records)
        say(f"spark bench: python {result['python_read_decode']['rows_per_second']:,} rows/s; starting Spark ...")
        started = time.perf_counter()
        spark = start_spark()
        result["spark_startup_seconds"] = round(time.perf_counter() - started, 3)
        spark_read(spark, settings, topic, decode=False)  # untimed warm-up: JIT, connector classes, page cache
        result["spark_read"] = spark_read(spark, settings, topic, decode=False)
        say(f"spark bench: spark read {result['spark_read']['rows_per_second']:,} rows/s; decoding ...")
        result["spark_read_decode"] = spark_read(spark, settings, topic, decode=True)
        result["spark_master"] = spark.sparkContext.master
        result["speedup_spark_vs_python"] = round(result["spark_read_decode"]["rows_per_second"]
                                                  / result["python_read_decode"]["rows_per_second"], 2)
    finally:
        admin = clients.admin(settings)  # kept until the futures resolve
        for future in admin.delete_topics([topic]).values():
            future.result(timeout=30)
        registry = clients.registry_client(settings)
        registry.delete_subject(value_subject(topic))
        registry.delete_subject(value_subject(topic), permanent=True)
    return result


def format_result(r: dict) -> str:
    lines = [f"spark bench: {r['records']:,} records of {r['topic']} (Spark {r.get('spark_master', '?')})"]
    lines.append(f"  produce (pre-encoded)      {r['produce']['records_per_second']:>10,} records/s")
    for key, label in (("python_read_decode", "python read+decode"), ("spark_read", "spark read"),
                       ("spark_read_decode", "spark read+decode")):
        x = r[key]
        lines.append(f"  {label:26} {x['rows_per_second']:>10,} rows/s  ({x['rows']:,} rows in {x['seconds']} s)")
    lines.append(f"  spark start-up             {r['spark_startup_seconds']:>10} s (not in the figures above)")
    lines.append(f"  spark read+decode / python {r['speedup_spark_vs_python']:>10}x")
    return "\n".join(lines)
