"""The Faust app: score records as they arrive, learn when their labels come.

Run it with ``mlstream app`` (a Faust worker). :class:`ScorerApp` builds the app from its
settings: two short agents feed a table of predictions waiting for labels; a timer reports
metrics and checkpoints the model; ``/stats/`` shows the same figures over HTTP; the
deployments part swaps the build it serves. Building it contacts nothing: the model is
restored from the store and the registry read when a worker starts the app
(:meth:`ScorerApp.start`), before the first record.
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
from apps.scorer.dashboard import LiveHistory
from apps.scorer.deployments import Deployments
from apps.scorer.lineage import LineageReporter
from apps.scorer.serving import MIN_ROLLING_ACCURACY, Serving
from apps.scorer.web import WebViews
from mlstream.kafka.dead_letters import PROCESSING_FAILED
from mlstream.kafka.serde import epoch_ms, registry_client
from mlstream.kafka.topics import topic_codec
from mlstream.metrics import KafkaMetricsSink, MetricValueError
from mlstream.registry.records import CHAMPION, SHADOW
from mlstream.scoring.model_store import open_model_store
from mlstream.scoring.monitoring import Alert
from mlstream.scoring.scorer import StreamScorer, now_ms
from mlstream.settings import Settings
from mlstream.streaming.dead_lettering import DeadLetterer
from mlstream.streaming.faust_app import new_app, on_worker_start, warm_up
from mlstream.streaming.skipped_records import SkippedRecords

log = logging.getLogger(__name__)

METRICS_INTERVAL_S = 5.0
LINEAGE_POLL_S = 10.0


class ScorerApp:
    """The scorer's Faust app (:attr:`app`) with its topics, tables, clients and serving state."""

    def __init__(self, settings: Settings):
        self.settings = settings
        topics = settings.topics
        self.monitoring = {"min_rolling_accuracy": MIN_ROLLING_ACCURACY, "drift_features": settings.drift_features}
        self.app = app = new_app(settings, settings.app_id, settings.web_port, settings.partitions)

        self.records_topic = app.topic(topics.records)
        self.labels_topic = app.topic(topics.labels)
        self.predictions_topic = app.topic(topics.predictions)
        self.dead_letters_topic = app.topic(topics.dead_letters)
        self.alerts_topic = app.topic(topics.alerts)

        # Tables keep keys and values as JSON (Faust's default for tables), whatever the topics use.
        # record id -> what learning needs once the label arrives (features, prediction)
        self.awaiting_label = app.Table("awaiting-label", default=None, partitions=settings.partitions,
                                        key_type=str)
        # record id -> a label that arrived before its record was scored
        self.early_labels = app.Table("early-labels", default=None, partitions=settings.partitions, key_type=str)
        # "<topic>:<partition>" -> last offset processed. faust-streaming 0.15 can hand a restarted
        # worker records it already processed, and skip one: this keeps scoring idempotent, and
        # lets the skipped record be read back (mlstream/streaming/skipped_records.py).
        self.processed_up_to = app.Table("processed-up-to", default=None, partitions=settings.partitions,
                                         key_type=str)

        # The registry client and the codecs call the registry on first use; the sink opens its producer so.
        self.registry = registry_client(settings.schema_registry_url)
        self.codecs = {name: topic_codec(self.registry, settings, topic) for name, topic in (
            ("records", topics.records), ("labels", topics.labels), ("predictions", topics.predictions),
            ("dead_letters", topics.dead_letters), ("alerts", topics.alerts))}
        self.metrics_sink = KafkaMetricsSink(settings)
        self.serving = Serving(settings.app_id, self.metrics_sink)
        self.counters = {"records_in": 0, "labels_in": 0, "predictions_out": 0, "dead_letters": 0,
                         "labels_before_record": 0, "alerts": 0, "duplicates_skipped": 0,
                         "skipped_offsets_read_back": 0, "metrics_refused": 0}
        self.dead_letterer = DeadLetterer(self.dead_letters_topic, self.codecs["dead_letters"], settings.app_id,
                                          self.counters)
        self.skipped = SkippedRecords(settings.bootstrap_servers, self.processed_up_to, self.counters)
        self.live = LiveHistory()
        self.web_views = WebViews(app, self.live, self.counters, self.serving.monitors, self.consumer_lag, now_ms)
        self.deployments = Deployments(app, settings, self.serving, self.live, self.alerts_topic, self.codecs)
        self.lineage: LineageReporter | None = None  # opened by start()
        self.materializer: list = []  # the metrics materializer's child process, once started
        self.window_start_ms = now_ms()

        on_worker_start(app, self.start)
        app.agent(self.records_topic, name="score")(self.score)
        app.agent(self.labels_topic, name="learn")(self.learn)
        app.timer(interval=METRICS_INTERVAL_S, name="report")(self.report)
        app.timer(interval=1.0, name="sample_dashboard")(self.sample_dashboard)
        app.timer(interval=LINEAGE_POLL_S, name="follow_lineage_config")(self.follow_lineage_config)
        app.task(self.materialize_metrics)
        app.task(self.get_ready)
        app.task(self.announce_lineage)
        app.on_before_shutdown.connect(self.save_model)

        @app.page("/stats/")
        async def stats(web, request):
            return web.json(self.stats())

    def start(self) -> None:
        """Restore the models from the store, then serve what the registry recorded (blocking, before the first record)."""
        settings = self.settings
        store = open_model_store(settings.model_store, settings.state_dir / "models", settings.s3_endpoint_url)
        self.serving.install(CHAMPION, StreamScorer.restore(lambda: models.build(settings.model), settings.model,
                                                            settings.model_version, store, **self.monitoring))
        if settings.challenger_model:
            # The challenger is scored in shadow: its predictions are judged and tracked, never sent.
            self.serving.install(SHADOW, StreamScorer.restore(
                lambda: models.build(settings.challenger_model), settings.challenger_model,
                settings.challenger_version, store, **self.monitoring))
        self.deployments.start(store)
        self.lineage = LineageReporter(settings, self.registry)

    def consumer_lag(self) -> dict[str, int]:
        consumer = self.app.consumer
        inputs = (self.settings.topics.records, self.settings.topics.labels)
        lag: dict[str, int] = {}
        for tp in consumer.assignment():
            if tp.topic in inputs:
                read = consumer._read_offset.get(tp)  # Faust keeps the last offset read per partition here
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, (consumer.highwater(tp) or 0)
                                                           - (read + 1 if read is not None else 0))
        return lag

    def seen_before(self, message) -> bool:
        expected = self.skipped.expected(message.topic, message.partition)
        if expected is not None and message.offset < expected:
            self.counters["duplicates_skipped"] += 1
            return True
        self.skipped.processed(message)
        return False

    async def score(self, stream):
        async for message in self.skipped.messages(stream):
            await self.score_one(message)

    async def score_one(self, message) -> None:
        arrived = time.perf_counter()
        if self.seen_before(message):
            return
        counters = self.counters
        counters["records_in"] += 1
        record = await self.dead_letterer.decode(self.codecs["records"], message)
        if record is None:
            return
        serving = self.serving.champion  # one build per record, even if a deployment swaps it during an await
        try:
            prediction, pending = serving.score(record, message.topic, message.partition, message.offset,
                                                epoch_ms(record["event_time"]), arrived)
            value = self.codecs["predictions"].encode(prediction)
        except Exception as err:  # a record the model cannot take must not stop the stream
            await self.dead_letterer.send(message, PROCESSING_FAILED, f"{type(err).__name__}: {err}")
            return
        await self.predictions_topic.send(key=message.key, value=value)
        counters["predictions_out"] += 1
        self.web_views.observe_latency(prediction["latency_ms"])
        self.live.on_prediction(prediction["scored_at"], f"{serving.model.name} v{serving.model.version}",
                                prediction["predicted_label"], prediction["score"])
        if self.settings.prediction_metrics:
            self.track_prediction(serving, prediction)
        if self.serving.challenger is not None:
            pending["shadow"] = self.shadow_score(self.serving.challenger, record, message, arrived)
        early = self.early_labels.get(record["id"])
        if early is None:
            self.awaiting_label[record["id"]] = pending
        else:
            del self.early_labels[record["id"]]
            await self.judge(pending, early["label"], early["event_time"])

    async def learn(self, stream):
        async for message in self.skipped.messages(stream):
            await self.learn_one(message)

    async def learn_one(self, message) -> None:
        if self.seen_before(message):
            return
        self.counters["labels_in"] += 1
        label = await self.dead_letterer.decode(self.codecs["labels"], message)
        if label is None:
            return
        pending = self.awaiting_label.get(label["id"])
        if pending is None:
            self.counters["labels_before_record"] += 1
            self.early_labels[label["id"]] = {"label": label["label"], "event_time": epoch_ms(label["event_time"])}
            return
        del self.awaiting_label[label["id"]]
        await self.judge(pending, label["label"], epoch_ms(label["event_time"]))

    def shadow_score(self, challenger: StreamScorer, record: dict, message, arrived: float) -> dict:
        prediction, pending = challenger.score(record, message.topic, message.partition, message.offset,
                                               epoch_ms(record["event_time"]), arrived)
        if self.settings.prediction_metrics:
            self.track_prediction(challenger, prediction)
        return pending

    def track_prediction(self, which: StreamScorer, prediction: dict) -> None:
        """CML's per-prediction row: the prediction id is its uuid; the label is merged in later."""
        row = {"score": prediction["score"], "predicted_label": prediction["predicted_label"],
               "latency_ms": prediction["latency_ms"]}
        self.tracked(self.serving.tracker(which).track_prediction, prediction["prediction_id"],
                     {k: v for k, v in row.items() if v is not None},
                     min(prediction["record_time"], prediction["scored_at"]), prediction["scored_at"])

    def tracked(self, call, *args) -> None:
        """A value the metrics API refuses (a NaN label, say) is counted and logged; the stream goes on."""
        try:
            call(*args)
        except MetricValueError as err:
            self.counters["metrics_refused"] += 1
            log.warning("metric not tracked: %s", err)

    async def judge(self, pending: dict, label, label_time_ms: int) -> None:
        """A label met its prediction: learn, track the label, send any alerts; the same for the shadow."""
        for which, entry in ((self.serving.champion, pending), (self.serving.challenger, pending.get("shadow"))):
            if which is None or entry is None:
                continue
            for alert in which.learn(entry, label, label_time_ms):
                await self.send_alert(which, alert)
            if self.settings.prediction_metrics:
                self.tracked(self.serving.tracker(which).track_delayed_metrics, {"actual": label},
                             entry["prediction_id"])

    async def send_alert(self, which: StreamScorer, alert: Alert) -> None:
        model_crn, build_crn, deployment_crn = self.serving.tracker(which).crns
        raised_at = now_ms()
        value = {"alert_id": str(uuid.uuid4()), "model_crn": model_crn, "model_build_crn": build_crn,
                 "model_deployment_crn": deployment_crn, "raised_at": raised_at, **vars(alert)}
        await self.alerts_topic.send(key=deployment_crn.encode(), value=self.codecs["alerts"].encode(value))
        self.counters["alerts"] += 1
        self.live.on_alert(alert, raised_at, f"{which.model.name} v{which.model.version}")
        log.warning("alert %s: %s", alert.alert_type, alert.message)

    async def report(self) -> None:
        end_ms = now_ms()
        for which in self.serving.scorers():
            figures = which.monitor.figures() | {f"app_{name}": float(value) for name, value in self.counters.items()}
            self.serving.tracker(which).track_aggregate_metrics(figures, self.window_start_ms, end_ms)
            which.checkpoint()
        self.window_start_ms = end_ms

    async def sample_dashboard(self) -> None:
        self.live.sample(time.time(), self.counters, self.serving.monitors())

    async def materialize_metrics(self) -> None:
        """Keep the metrics store that `read_metrics` reads filled from the metrics topic.

        A child process, not a thread: decoding and storing every metric record under
        this process's GIL would slow scoring down by half.
        """
        self.materializer.append(await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tools", "metrics", "materialize", env=os.environ | self.settings.to_env(),
            stdout=asyncio.subprocess.DEVNULL, preexec_fn=stop_with_parent))

    async def get_ready(self) -> None:
        await warm_up(self.codecs.values())

    async def announce_lineage(self) -> None:
        # Blocking (registry look-ups, a producer flush): run it off the loop.
        await asyncio.get_running_loop().run_in_executor(None, self.lineage.poll)

    async def follow_lineage_config(self) -> None:
        """Report the lineage again when `mlstream config put lineage ...` stores a new version."""
        await asyncio.get_running_loop().run_in_executor(None, self.lineage.poll)

    async def save_model(self, app, **kwargs) -> None:
        for which in self.serving.scorers():
            if which.checkpoint():
                log.info("checkpointed %s v%s after %d labels", which.model.name, which.model.version,
                         which.model.n_learned)
        self.metrics_sink.flush()
        for child in self.materializer:
            child.send_signal(signal.SIGINT)  # like Ctrl-C: it commits what it stored and exits
            await child.wait()

    def stats(self) -> dict:
        champion = self.serving.champion
        return {
            "app_id": self.settings.app_id,
            "model": {"name": champion.model.name, "version": champion.model.version,
                      "n_learned": champion.model.n_learned},
            "counters": self.counters,
            "awaiting_label": len(self.awaiting_label),
            "figures": champion.monitor.figures(),
            "versions": {name: monitor.figures() for name, monitor in self.serving.monitors().items()},
        }


def stop_with_parent() -> None:
    """In the child: get SIGINT when the app dies, even by SIGKILL, so no materializer is orphaned."""
    if sys.platform == "linux":
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)
