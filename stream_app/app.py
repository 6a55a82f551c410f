"""The Faust app: score records as they arrive, learn when their labels come.

Run it with ``mlstream app`` (a Faust worker). Two short agents feed a table of
predictions waiting for labels; a timer reports metrics and checkpoints the
model; ``/stats/`` shows the same figures over HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import faust

import models
from mlstream.dead_letters import PROCESSING_FAILED, dead_letter
from mlstream.identifiers import build_crn, deployment_crn, model_crn
from mlstream.model_store import FolderModelStore
from mlstream.serde import TopicCodec, UndecodableValue, epoch_ms, registry_client
from mlstream.settings import Settings
from stream_app.lineage import emit_startup_lineage
from stream_app.scorer import StreamScorer, now_ms

log = logging.getLogger(__name__)

settings = Settings.from_env()
topics = settings.topics
REGISTRY_RETRY_S = 2.0
METRICS_INTERVAL_S = 5.0

datadir = settings.state_dir / "faust" / settings.app_id
datadir.parent.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level

app = faust.App(
    settings.app_id,
    broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
    store="memory://",  # tables are rebuilt from their changelog topics on restart
    datadir=str(datadir),
    web_port=settings.web_port,
    topic_partitions=settings.partitions,
    topic_replication_factor=1,
    key_serializer="raw",
    value_serializer="raw",  # values are Confluent-framed Avro, decoded by our codecs
    consumer_auto_offset_reset="earliest",
)

records_topic = app.topic(topics.records)
labels_topic = app.topic(topics.labels)
predictions_topic = app.topic(topics.predictions)
metrics_topic = app.topic(topics.metrics)
dead_letters_topic = app.topic(topics.dead_letters)

# Tables keep keys and values as JSON (Faust's default for tables), whatever the topics use.
# record id -> what learning needs once the label arrives (features, prediction)
awaiting_label = app.Table("awaiting-label", default=None, partitions=settings.partitions, key_type=str)
# record id -> a label that arrived before its record was scored
early_labels = app.Table("early-labels", default=None, partitions=settings.partitions, key_type=str)

registry = registry_client(settings.schema_registry_url)
codecs = {
    "records": TopicCodec.for_topic(registry, topics.records, "record"),
    "labels": TopicCodec.for_topic(registry, topics.labels, "label"),
    "predictions": TopicCodec.for_topic(registry, topics.predictions, "prediction"),
    "metrics": TopicCodec.for_topic(registry, topics.metrics, "metric"),
    "dead_letters": TopicCodec.for_topic(registry, topics.dead_letters, "dead_letter"),
}
model_store = FolderModelStore(settings.state_dir / "models")
scorer = StreamScorer.restore(lambda: models.build(settings.model), settings.model, settings.model_version, model_store)
counters = {"records_in": 0, "labels_in": 0, "predictions_out": 0, "dead_letters": 0, "labels_before_record": 0}
window_start_ms = now_ms()


async def decode(codec: TopicCodec, message) -> dict | None:
    """Decode a message value, or dead-letter it and return None.

    A registry that cannot be reached is not the message's fault: wait and retry.
    """
    while True:
        try:
            return codec.decode(message.value)
        except UndecodableValue as err:
            await send_dead_letter(message, err.kind, err.message)
            return None
        except Exception as err:
            log.warning("registry unavailable while decoding %s[%s]@%s (%s); retrying in %ss",
                        message.topic, message.partition, message.offset, err, REGISTRY_RETRY_S)
            await asyncio.sleep(REGISTRY_RETRY_S)


async def send_dead_letter(message, error_type: str, error_message: str) -> None:
    letter = dead_letter(message.topic, message.partition, message.offset, int(message.timestamp * 1000),
                         message.key, message.value, message.headers, error_type, error_message, settings.app_id)
    await dead_letters_topic.send(key=message.key, value=codecs["dead_letters"].encode(letter))
    counters["dead_letters"] += 1
    log.warning("dead-lettered %s[%s]@%s: %s", message.topic, message.partition, message.offset, error_type)


@app.agent(records_topic)
async def score(stream):
    async for event in stream.events():
        arrived = time.perf_counter()
        message = event.message
        counters["records_in"] += 1
        record = await decode(codecs["records"], message)
        if record is None:
            continue
        try:
            prediction, pending = scorer.score(record, message.topic, message.partition, message.offset,
                                               epoch_ms(record["event_time"]), arrived)
            value = codecs["predictions"].encode(prediction)
        except Exception as err:  # a record the model cannot take must not stop the stream
            await send_dead_letter(message, PROCESSING_FAILED, f"{type(err).__name__}: {err}")
            continue
        await predictions_topic.send(key=message.key, value=value)
        counters["predictions_out"] += 1
        early = early_labels.get(record["id"])
        if early is None:
            awaiting_label[record["id"]] = pending
        else:
            del early_labels[record["id"]]
            scorer.learn(pending, early["label"], early["event_time"])


@app.agent(labels_topic)
async def learn(stream):
    async for event in stream.events():
        message = event.message
        counters["labels_in"] += 1
        label = await decode(codecs["labels"], message)
        if label is None:
            continue
        pending = awaiting_label.get(label["id"])
        if pending is None:
            counters["labels_before_record"] += 1
            early_labels[label["id"]] = {"label": label["label"], "event_time": epoch_ms(label["event_time"])}
            continue
        del awaiting_label[label["id"]]
        scorer.learn(pending, label["label"], epoch_ms(label["event_time"]))


def metric_record(start_ms: int, end_ms: int) -> dict:
    model = scorer.model
    figures = scorer.monitor.figures()
    figures.update({f"app_{name}": float(value) for name, value in counters.items()})
    return {
        "metric_id": str(uuid.uuid4()),
        "model_crn": model_crn(model.name),
        "model_build_crn": build_crn(model.name, model.version),
        "model_deployment_crn": deployment_crn(model.name, settings.app_id),
        "prediction_uuid": None,
        "start_timestamp_ms": start_ms,
        "end_timestamp_ms": end_ms,
        "metrics": figures,
    }


@app.timer(interval=METRICS_INTERVAL_S)
async def report():
    global window_start_ms
    end_ms = now_ms()
    await metrics_topic.send(value=codecs["metrics"].encode(metric_record(window_start_ms, end_ms)))
    window_start_ms = end_ms
    scorer.checkpoint()


@app.task
async def announce_lineage():
    # Blocking (registry look-ups, a producer flush) but once, at start: run it off the loop.
    await asyncio.get_running_loop().run_in_executor(None, emit_startup_lineage, settings, registry)


@app.on_before_shutdown.connect
async def save_model(app, **kwargs):
    if scorer.checkpoint():
        log.info("checkpointed %s v%s after %d labels", scorer.model.name, scorer.model.version,
                 scorer.model.n_learned)


@app.page("/stats/")
async def stats(web, request):
    return web.json({
        "app_id": settings.app_id,
        "model": {"name": scorer.model.name, "version": scorer.model.version, "n_learned": scorer.model.n_learned},
        "counters": counters,
        "awaiting_label": len(awaiting_label),
        "figures": scorer.monitor.figures(),
    })
