"""The linkage app: link records arriving on live feeds, as they arrive (a Faust app of its own).

Run it with ``mlstream linkage app``; it runs beside the scorer under its own
application id. :class:`LinkerApp` builds it from its settings and its loaded config
(the command loads it, so a bad config is a clear error before any worker starts); building
it contacts nothing. Faust runs the worker, the web views (``/stats/``, ``/dashboard/``,
Prometheus) and the timers. The records and the reviewers' verdicts go through the data plane
(:class:`apps.linker.linkage_job.LinkageJob` on
:class:`mlstream.streaming.transactional_loop.TransactionalLoop`, as the scorer's): batches on
confluent-kafka, exactly once by Kafka's transactions, the linker's records and model in a
compacted state topic written in each batch's transaction. Each batch hands every record to the
Kafka-free :class:`linkage.linker.Linker` and sends the link events and entity updates. The
dashboard shows precision, recall and F1 when the config says how to tell a record's true
entity (``truth``: test data such as FEBRL), over the records this worker has linked since it
started.

Co-partitioning. Records of one entity arrive under different keys (their own ids),
while the blocking index is keyed by blocking key: a record must meet every earlier
record sharing any of its keys. The linkage topics have one partition, so one worker
holds the whole index and sees every record in order (docs/data-plane.md says why, and
what scaling out would take).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time

from apps.history import ms_ago, read_reports
from apps.linker.dashboard import LinkageHistory, report_of, sample_from_report
from apps.linker.lineage import emit_linkage_lineage
from apps.linker.linkage_job import LinkageJob
from apps.linker.settings import LinkageSettings
from apps.linker.web import prometheus_registry
from apps.web import WINDOWS, serve_dashboard, serve_prometheus
from linkage.config import LinkageConfig
from linkage.evaluation import LiveQuality
from mlstream.kafka import clients
from mlstream.kafka.topics import TopicSpec, create_topics, durable, topic_codec
from mlstream.metrics import KafkaMetricsSink, MetricsTracker
from mlstream.metrics.records import plain_ms
from mlstream.settings import Settings
from mlstream.streaming.dead_lettering import wait_for_registry
from mlstream.streaming.faust_app import BACKGROUND_FAILURES, add_task, add_timer, new_app, on_worker_start
from mlstream.streaming.loop_service import DataPlaneService
from mlstream.streaming.transactional_loop import Job, TransactionalLoop

log = logging.getLogger(__name__)

REPORT_INTERVAL_S = 5.0


def state_topic(settings: Settings, linkage: LinkageSettings) -> str:
    """The linker's state changelog (compacted): every record linked and the model, per input partition."""
    return f"{settings.topics.prefix}{linkage.app_id}-state"


class LinkerApp:
    """The linkage app's Faust app (:attr:`app`) with its codecs, figures and data plane."""

    def __init__(self, settings: Settings, linkage: LinkageSettings, config: LinkageConfig, config_version: str):
        self.settings = settings
        self.linkage = linkage
        self.config = config
        self.config_version = config_version
        topics = settings.topics
        self.app = app = new_app(settings, linkage.app_id, linkage.web_port, 1)
        # The registry client and the codecs call the registry on first use; the data plane readies
        # them before its first batch (wait_for_registry), and decoding waits while it is down.
        self.registry = clients.registry_client(settings, retries=False)
        self.codecs = {name: topic_codec(self.registry, settings, topic) for name, topic in (
            ("records", topics.linkage_records), ("links", topics.links), ("entities", topics.entity_updates),
            ("confirmed", topics.confirmed_pairs), ("dead_letters", topics.dead_letters))}
        self.counters = {"records_in": 0, "links_out": 0, "entity_updates_out": 0, "dead_letters": 0,
                         "confirmed_pairs_in": 0, "reports_failed": 0, BACKGROUND_FAILURES: 0}
        self.history = LinkageHistory()
        # The dashboard's figures go to the metrics topic too, so a restarted app can draw what came before.
        self.metrics_sink = KafkaMetricsSink(settings)
        self.tracker = MetricsTracker(self.metrics_sink, f"linkage-{config.name}", config_version, linkage.app_id)
        self.reported_up_to_ms = ms_ago(0)
        self.live_quality = LiveQuality(config.mode) if config.truth else None
        self.job = LinkageJob(settings, linkage.app_id, config, config_version, self.codecs, self.counters,
                              self.history, self.live_quality)
        self.data_plane = DataPlaneService(self.new_loop, self.job,
                                           prepare=lambda: wait_for_registry(self.codecs.values()))

        on_worker_start(app, self.start)
        app.add_dependency(self.data_plane)
        add_timer(app, 1.0, "sample_dashboard", self.sample_dashboard, self.counters)
        add_timer(app, REPORT_INTERVAL_S, "report", self.report, self.counters)
        add_task(app, self.announce_lineage, self.counters)
        add_task(app, self.read_back_dashboard, self.counters)
        app.on_before_shutdown.connect(self.flush_reports)
        serve_dashboard(app, "linkage", self.dashboard_data)
        serve_prometheus(app, prometheus_registry(
            lambda: self.counters, lambda: dict(self.job.linker_counters),
            lambda: {"entities": self.job.entities(), "records_indexed": self.job.records_indexed()},
            lambda: self.live_quality.figures() if self.live_quality else {}))

        @app.page("/stats/")
        async def stats(web, request):
            return web.json(self.stats())

    def start(self) -> None:
        """The state topic, partitioned as the records topic, before the data plane's first assignment
        (blocking, at the worker's start)."""
        admin = clients.admin(self.settings)
        # All topics, not the one by name: a metadata request for one may create it (auto-creation).
        records = admin.list_topics(timeout=30).topics.get(self.settings.topics.linkage_records)
        partitions = len(records.partitions) if records is not None and records.error is None else 1
        create_topics(admin, [durable(TopicSpec(state_topic(self.settings, self.linkage), partitions, None,
                                                {"cleanup.policy": "compact"}), self.settings)], log.info)

    def new_loop(self, job: Job) -> TransactionalLoop:
        settings, topics = self.settings, self.settings.topics
        worker_id = settings.worker_id or f"{socket.gethostname()}-{self.linkage.web_port}"
        return TransactionalLoop(settings, f"{self.linkage.app_id}-data-plane", worker_id,
                                 [topics.linkage_records, topics.confirmed_pairs],
                                 state_topic(settings, self.linkage), job, batch_size=settings.batch_size,
                                 batch_wait_s=settings.batch_wait_ms / 1000)

    async def sample_dashboard(self) -> None:
        current = self.job.linker()
        self.history.sample(time.time(), self.counters, self.job.linker_counters, entities=self.job.entities(),
                            model_fits=current.model.n_fits if current else 0,
                            quality=self.live_quality.figures() if self.live_quality else None)

    async def report(self) -> None:
        latest = self.history.history.latest()
        if latest is None:
            return
        end_ms = ms_ago(0)
        try:
            self.tracker.track_aggregate_metrics(report_of(latest), self.reported_up_to_ms, end_ms)
        except Exception as err:  # the dashboard's history is not worth stopping the linking for
            self.counters["reports_failed"] += 1
            log.warning("dashboard report not sent to %s: %s", self.settings.topics.metrics, err)
        self.reported_up_to_ms = end_ms

    async def flush_reports(self, app, **kwargs) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.metrics_sink.flush)
        except Exception as err:
            log.warning("dashboard reports not all delivered: %s", err)

    async def read_back_dashboard(self) -> None:
        """The dashboard's last day from the metrics topic, so a restart does not blank it (off the loop)."""
        def read() -> list[dict]:
            reports = read_reports(self.settings, self.registry, self.linkage.app_id, ms_ago(max(WINDOWS)))
            return [sample_from_report(plain_ms(r["end_timestamp_ms"]) / 1000, r["metrics"]) for r in reports]

        try:
            samples = await asyncio.get_running_loop().run_in_executor(None, read)
        except Exception as err:  # the dashboard starts empty; linking is not held up
            log.warning("dashboard history not read back: %s", err)
            self.history.restore_failed(f"{type(err).__name__}: {err}")
            return
        self.history.restore(samples)
        log.info("dashboard history read back: %d samples", len(samples))

    def classifier_figures(self) -> dict | None:
        current = self.job.linker()
        if current is None or current.classifier is None:
            return None
        return {"learned": current.classifier.n_learned, "ready": current.classifier.ready,
                "prequential_accuracy": current.classifier.accuracy.get()}

    def dashboard_data(self, window_s: int) -> dict:
        config = self.config
        return self.history.snapshot(time.time_ns() // 1_000_000, window_s) | {
            "config": {"name": config.name, "version": self.config_version, "mode": config.mode,
                       "truth": config.truth is not None},
            "classifier": self.classifier_figures()}

    async def announce_lineage(self) -> None:
        # Blocking (registry look-ups, a producer flush) but once, at start: run it off the loop.
        await asyncio.get_running_loop().run_in_executor(
            None, emit_linkage_lineage, self.settings, self.linkage.app_id, self.registry, self.config,
            self.config_version)

    def stats(self) -> dict:
        current = self.job.linker()
        loop = self.data_plane.plane
        return {
            "app_id": self.linkage.app_id,
            "config": {"name": self.config.name, "version": self.config_version, "source": self.linkage.config},
            "counters": self.counters,
            "linker": dict(self.job.linker_counters),
            "classifier": self.classifier_figures(),
            "model": {"fits": current.model.n_fits, "prior_match": current.model.prior_match,
                      "pairs_observed": current.model.n_observed} if current else None,
            "records_indexed": self.job.records_indexed(),
            "entities": self.job.entities(),
            "quality": self.live_quality.figures() if self.live_quality else None,
            "data_plane": {"crashes": self.data_plane.crashes, "joined": loop is not None and loop.stats.joined,
                           **({} if loop is None else {
                               "partitions": list(loop.stats.assigned), "batches": loop.stats.batches,
                               "messages": loop.stats.messages, "aborted_batches": loop.stats.aborted_batches,
                               "restarts": loop.stats.restarts, "restored_entries": loop.stats.restored_entries,
                               "last_restore_s": round(loop.stats.last_restore_s, 3)})},
        } | self.history.latency()
