"""The Faust app: score records as they arrive, learn when their labels come.

Run it with ``mlstream app`` (a Faust worker). Two short agents feed a table of
predictions waiting for labels; a timer reports metrics and checkpoints the
model; ``/stats/`` shows the same figures over HTTP.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys
import time
import uuid

import models
from mlstream.kafka.dead_letters import PROCESSING_FAILED
from mlstream.metrics import KafkaMetricsSink, MetricsTracker, MetricValueError
from mlstream.scoring.model_store import open_model_store
from mlstream.scoring.monitoring import Alert
from mlstream.kafka.serde import TopicCodec, epoch_ms, registry_client
from mlstream.settings import Settings
from apps.scorer.lineage import LineageReporter
from apps.scorer.dashboard import LiveHistory
from mlstream.streaming.dead_lettering import DeadLetterer
from mlstream.streaming.faust_app import new_app, warm_up
from mlstream.streaming.skipped_records import SkippedRecords
from mlstream.scoring.scorer import StreamScorer, now_ms
from apps.scorer.web import WebViews

log = logging.getLogger(__name__)

settings = Settings.from_env()
topics = settings.topics
MIN_ROLLING_ACCURACY = 0.7  # below it, an alert
MONITORING = {"min_rolling_accuracy": MIN_ROLLING_ACCURACY, "drift_features": settings.drift_features}
METRICS_INTERVAL_S = 5.0

app = new_app(settings, settings.app_id, settings.web_port, settings.partitions)

records_topic = app.topic(topics.records)
labels_topic = app.topic(topics.labels)
predictions_topic = app.topic(topics.predictions)
dead_letters_topic = app.topic(topics.dead_letters)
alerts_topic = app.topic(topics.alerts)

# Tables keep keys and values as JSON (Faust's default for tables), whatever the topics use.
# record id -> what learning needs once the label arrives (features, prediction)
awaiting_label = app.Table("awaiting-label", default=None, partitions=settings.partitions, key_type=str)
# record id -> a label that arrived before its record was scored
early_labels = app.Table("early-labels", default=None, partitions=settings.partitions, key_type=str)
# "<topic>:<partition>" -> last offset processed. faust-streaming 0.15 can hand a restarted
# worker records it already processed, and skip one: this keeps scoring idempotent, and
# lets the skipped record be read back (mlstream/streaming/skipped_records.py).
processed_up_to = app.Table("processed-up-to", default=None, partitions=settings.partitions, key_type=str)

registry = registry_client(settings.schema_registry_url)
codecs = {
    "records": TopicCodec.for_topic(registry, topics.records, "record"),
    "labels": TopicCodec.for_topic(registry, topics.labels, "label"),
    "predictions": TopicCodec.for_topic(registry, topics.predictions, "prediction"),
    "dead_letters": TopicCodec.for_topic(registry, topics.dead_letters, "dead_letter"),
    "alerts": TopicCodec.for_topic(registry, topics.alerts, "alert"),
}
model_store = open_model_store(settings.model_store, settings.state_dir / "models", settings.s3_endpoint_url)
scorer = StreamScorer.restore(lambda: models.build(settings.model), settings.model, settings.model_version, model_store,
                              **MONITORING)
# The challenger is scored in shadow: its predictions are judged and tracked, never sent.
challenger = StreamScorer.restore(lambda: models.build(settings.challenger_model), settings.challenger_model,
                                  settings.challenger_version, model_store, **MONITORING
                                  ) if settings.challenger_model else None
metrics_sink = KafkaMetricsSink(settings)
trackers = {id(s): MetricsTracker(metrics_sink, s.model.name, s.model.version,
                                  settings.app_id if s is scorer else f"{settings.app_id}-shadow")
            for s in (scorer, challenger) if s is not None}
counters = {"records_in": 0, "labels_in": 0, "predictions_out": 0, "dead_letters": 0, "labels_before_record": 0,
            "alerts": 0, "duplicates_skipped": 0, "skipped_offsets_read_back": 0, "metrics_refused": 0}
dead_letterer = DeadLetterer(dead_letters_topic, codecs["dead_letters"], settings.app_id, counters)
skipped = SkippedRecords(settings.bootstrap_servers, processed_up_to, counters)
live = LiveHistory()
materializer: list = []  # the metrics materializer's child process, once started


def monitors() -> dict:
    return {f"{s.model.name} v{s.model.version}": s.monitor for s in (scorer, challenger) if s is not None}


def consumer_lag() -> dict[str, int]:
    consumer = app.consumer
    lag: dict[str, int] = {}
    for tp in consumer.assignment():
        if tp.topic in (topics.records, topics.labels):
            read = consumer._read_offset.get(tp)  # Faust keeps the last offset read per partition here
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, (consumer.highwater(tp) or 0) - (read + 1 if read is not None else 0))
    return lag


web_views = WebViews(app, live, counters, monitors, consumer_lag, now_ms)
window_start_ms = now_ms()


def seen_before(message) -> bool:
    expected = skipped.expected(message.topic, message.partition)
    if expected is not None and message.offset < expected:
        counters["duplicates_skipped"] += 1
        return True
    skipped.processed(message)
    return False


@app.agent(records_topic)
async def score(stream):
    async for message in skipped.messages(stream):
        await score_one(message)


async def score_one(message) -> None:
    arrived = time.perf_counter()
    if seen_before(message):
        return
    counters["records_in"] += 1
    record = await dead_letterer.decode(codecs["records"], message)
    if record is None:
        return
    serving = scorer  # one build per record, even if apps.scorer.deployments swaps it during an await
    try:
        prediction, pending = serving.score(record, message.topic, message.partition, message.offset,
                                            epoch_ms(record["event_time"]), arrived)
        value = codecs["predictions"].encode(prediction)
    except Exception as err:  # a record the model cannot take must not stop the stream
        await dead_letterer.send(message, PROCESSING_FAILED, f"{type(err).__name__}: {err}")
        return
    await predictions_topic.send(key=message.key, value=value)
    counters["predictions_out"] += 1
    web_views.observe_latency(prediction["latency_ms"])
    live.on_prediction(prediction["scored_at"], f"{serving.model.name} v{serving.model.version}",
                       prediction["predicted_label"], prediction["score"])
    if settings.prediction_metrics:
        track_prediction(serving, prediction)
    if challenger is not None:
        pending["shadow"] = shadow_score(record, message, arrived)
    early = early_labels.get(record["id"])
    if early is None:
        awaiting_label[record["id"]] = pending
    else:
        del early_labels[record["id"]]
        await judge(pending, early["label"], early["event_time"])


@app.agent(labels_topic)
async def learn(stream):
    async for message in skipped.messages(stream):
        await learn_one(message)


async def learn_one(message) -> None:
    if seen_before(message):
        return
    counters["labels_in"] += 1
    label = await dead_letterer.decode(codecs["labels"], message)
    if label is None:
        return
    pending = awaiting_label.get(label["id"])
    if pending is None:
        counters["labels_before_record"] += 1
        early_labels[label["id"]] = {"label": label["label"], "event_time": epoch_ms(label["event_time"])}
        return
    del awaiting_label[label["id"]]
    await judge(pending, label["label"], epoch_ms(label["event_time"]))


def shadow_score(record: dict, message, arrived: float) -> dict:
    prediction, pending = challenger.score(record, message.topic, message.partition, message.offset,
                                           epoch_ms(record["event_time"]), arrived)
    if settings.prediction_metrics:
        track_prediction(challenger, prediction)
    return pending


def track_prediction(which: StreamScorer, prediction: dict) -> None:
    """CML's per-prediction row: the prediction id is its uuid; the label is merged in later."""
    row = {"score": prediction["score"], "predicted_label": prediction["predicted_label"],
           "latency_ms": prediction["latency_ms"]}
    tracked(trackers[id(which)].track_prediction, prediction["prediction_id"],
            {k: v for k, v in row.items() if v is not None},
            min(prediction["record_time"], prediction["scored_at"]), prediction["scored_at"])


def tracked(call, *args) -> None:
    """A value the metrics API refuses (a NaN label, say) is counted and logged; the stream goes on."""
    try:
        call(*args)
    except MetricValueError as err:
        counters["metrics_refused"] += 1
        log.warning("metric not tracked: %s", err)


async def judge(pending: dict, label, label_time_ms: int) -> None:
    """A label met its prediction: learn, track the label, send any alerts; the same for the shadow."""
    for which, entry in ((scorer, pending), (challenger, pending.get("shadow"))):
        if which is None or entry is None:
            continue
        for alert in which.learn(entry, label, label_time_ms):
            await send_alert(which, alert)
        if settings.prediction_metrics:
            tracked(trackers[id(which)].track_delayed_metrics, {"actual": label}, entry["prediction_id"])


async def send_alert(which: StreamScorer, alert: Alert) -> None:
    tracker = trackers[id(which)]
    model_crn, build_crn, deployment_crn = tracker.crns
    raised_at = now_ms()
    value = {"alert_id": str(uuid.uuid4()), "model_crn": model_crn, "model_build_crn": build_crn,
             "model_deployment_crn": deployment_crn, "raised_at": raised_at, **vars(alert)}
    await alerts_topic.send(key=deployment_crn.encode(), value=codecs["alerts"].encode(value))
    counters["alerts"] += 1
    live.on_alert(alert, raised_at, f"{which.model.name} v{which.model.version}")
    log.warning("alert %s: %s", alert.alert_type, alert.message)


@app.timer(interval=METRICS_INTERVAL_S)
async def report():
    global window_start_ms
    end_ms = now_ms()
    for which in (scorer, challenger):
        if which is not None:
            figures = which.monitor.figures() | {f"app_{name}": float(value) for name, value in counters.items()}
            trackers[id(which)].track_aggregate_metrics(figures, window_start_ms, end_ms)
            which.checkpoint()
    window_start_ms = end_ms


@app.timer(interval=1.0)
async def sample_dashboard():
    live.sample(time.time(), counters, monitors())


@app.task
async def materialize_metrics():
    """Keep the metrics store that `read_metrics` reads filled from the metrics topic.

    A child process, not a thread: decoding and storing every metric record under
    this process's GIL would slow scoring down by half.
    """
    materializer.append(await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools", "metrics", "materialize", env=os.environ | settings.to_env(),
        stdout=asyncio.subprocess.DEVNULL, preexec_fn=stop_with_parent))


def stop_with_parent() -> None:
    """In the child: get SIGINT when the app dies, even by SIGKILL, so no materializer is orphaned."""
    if sys.platform == "linux":
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)


@app.task
async def get_ready():
    await warm_up(codecs.values())


lineage = LineageReporter(settings, registry)
LINEAGE_POLL_S = 10.0


@app.task
async def announce_lineage():
    # Blocking (registry look-ups, a producer flush): run it off the loop.
    await asyncio.get_running_loop().run_in_executor(None, lineage.poll)


@app.timer(interval=LINEAGE_POLL_S)
async def follow_lineage_config():
    """Report the lineage again when `mlstream config put lineage ...` stores a new version."""
    await asyncio.get_running_loop().run_in_executor(None, lineage.poll)


@app.on_before_shutdown.connect
async def save_model(app, **kwargs):
    for which in (scorer, challenger):
        if which is not None and which.checkpoint():
            log.info("checkpointed %s v%s after %d labels", which.model.name, which.model.version,
                     which.model.n_learned)
    metrics_sink.flush()
    for child in materializer:
        child.send_signal(signal.SIGINT)  # like Ctrl-C: it commits what it stored and exits
        await child.wait()


@app.page("/stats/")
async def stats(web, request):
    return web.json({
        "app_id": settings.app_id,
        "model": {"name": scorer.model.name, "version": scorer.model.version, "n_learned": scorer.model.n_learned},
        "counters": counters,
        "awaiting_label": len(awaiting_label),
        "figures": scorer.monitor.figures(),
        "versions": {name: monitor.figures() for name, monitor in monitors().items()},
    })


# Hot deploy and rollback from the deployments topic; it swaps `scorer` / `challenger` above.
from apps.scorer import deployments  # noqa: E402,F401  (imported last: it uses this module's objects)
