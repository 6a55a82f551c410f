"""The Faust app: score records as they arrive, learn when their labels come.

Run it with ``mlstream app`` (a Faust worker). :class:`ScorerApp` builds the app from its
settings. Faust runs the worker, its web views (``/stats/``, the dashboard, Prometheus), the
timers that report metrics and follow the lineage config, and the deployments part that swaps
the build it serves. The records and labels themselves go through the data plane
(:class:`apps.scorer.scoring_job.ScoringJob` on
:class:`mlstream.streaming.transactional_loop.TransactionalLoop`): batches on confluent-kafka,
exactly once by Kafka's transactions, in a thread of the worker. Building it contacts nothing:
the registry and the model store are first read when a worker starts the app
(:meth:`ScorerApp.start`), before the first record.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time


import models
from apps.scorer.dashboard import LiveHistory
from apps.scorer.deployments import Deployments
from apps.scorer.history import read_history
from apps.scorer.lineage import LineageReporter
from apps.scorer.scoring_job import ScoringJob
from apps.scorer.serving import Serving, monitor_options
from apps.scorer.web import WebViews
from mlstream.features.view import FeatureView, default_view
from mlstream.kafka import clients
from mlstream.kafka.topics import TopicSpec, create_topics, durable, input_codec, topic_codec
from mlstream.metrics import KafkaMetricsSink
from mlstream.registry.records import CHAMPION, SHADOW
from mlstream.scoring.model_store import open_model_store
from mlstream.scoring.scorer import StreamScorer, now_ms
from mlstream.settings import Settings
from mlstream.streaming.dead_lettering import wait_for_registry
from mlstream.streaming.faust_app import BACKGROUND_FAILURES, add_task, add_timer, new_app, on_worker_start
from mlstream.streaming.loop_service import DataPlaneService
from mlstream.streaming.transactional_loop import Job, TransactionalLoop

log = logging.getLogger(__name__)

METRICS_INTERVAL_S = 5.0
LINEAGE_POLL_S = 10.0


def state_topic(settings: Settings) -> str:
    """The scorer's state changelog (compacted): join entries and each partition's model, per partition."""
    return f"{settings.topics.prefix}{settings.app_id}-state"


def data_plane_group(settings: Settings) -> str:
    """The data plane's consumer group: not the app id, which Faust's own consumer joins with its own assignor."""
    return f"{settings.app_id}-data-plane"


def worker_id(settings: Settings) -> str:
    """This worker's stable name: its static group membership and transactional id survive a restart."""
    return settings.worker_id or f"{socket.gethostname()}-{settings.web_port}"
#: Seconds before a materializer that died is started again: doubling from the first, up to the last.
MATERIALIZER_BACKOFF_S = (1.0, 30.0)
#: A materializer that ran this long before it died starts again after the shortest wait.
MATERIALIZER_HEALTHY_S = 60.0
#: On shutdown: seconds the metrics still buffered get to reach Kafka, and the materializer to commit and exit.
SHUTDOWN_FLUSH_S = 3.0
SHUTDOWN_CHILD_S = 3.0


class ScorerApp:
    """The scorer's Faust app (:attr:`app`) with its topics, clients, serving state and data plane.

    ``view`` reads the records and labels (:func:`mlstream.features.view.load_feature_view`
    loads the one the settings name); the default is the project's own ``Record`` shape.
    """

    def __init__(self, settings: Settings, view: FeatureView | None = None):
        self.settings = settings
        self.view = view = view or default_view(settings.topics)
        topics = settings.topics
        self.monitoring = monitor_options(settings)
        self.app = app = new_app(settings, settings.app_id, settings.web_port, settings.partitions)
        self.alerts_topic = app.topic(topics.alerts)

        # The registry client and the codecs call the registry on first use; the sink opens its producer so.
        self.registry = clients.registry_client(settings)
        self.codecs = {name: input_codec(self.registry, settings, topic) for name, topic in (
            ("records", view.records_topic), ("labels", view.labels_topic))}
        self.codecs |= {name: topic_codec(self.registry, settings, topic) for name, topic in (
            ("predictions", topics.predictions), ("dead_letters", topics.dead_letters), ("alerts", topics.alerts))}
        self.metrics_sink = KafkaMetricsSink(settings)
        self.serving = Serving(settings.app_id, self.metrics_sink)
        self.counters = {"records_in": 0, "labels_in": 0, "predictions_out": 0, "dead_letters": 0,
                         "labels_before_record": 0, "alerts": 0, "metrics_refused": 0,
                         "expired_awaiting_label": 0, "expired_early_labels": 0, "view_mismatches": 0,
                         "invalid_values": 0, BACKGROUND_FAILURES: 0, "materializer_restarts": 0}
        self.live = LiveHistory(settings.drift_features)
        self.web_views = WebViews(app, self.live, self.counters, self.serving.monitors, self.consumer_lag, now_ms)
        self.job = ScoringJob(settings, view, self.serving, self.codecs, self.counters, self.live,
                              self.web_views.observe_latency)
        self.data_plane = DataPlaneService(self.new_loop, self.job,
                                           prepare=lambda: wait_for_registry(self.codecs.values()))
        self.deployments = Deployments(app, settings, self.serving, self.live, self.alerts_topic, self.codecs, view,
                                       self.counters)
        self.lineage: LineageReporter | None = None  # opened by start()
        self.materializer: asyncio.subprocess.Process | None = None  # the metrics materializer's child process
        self.stopping = False
        self.window_start_ms = now_ms()

        on_worker_start(app, self.start)
        app.add_dependency(self.data_plane)  # after the start-up work: it needs the models restored
        add_timer(app, METRICS_INTERVAL_S, "report", self.report, self.counters)
        add_timer(app, 1.0, "sample_dashboard", self.sample_dashboard, self.counters)
        add_timer(app, LINEAGE_POLL_S, "follow_lineage_config", self.follow_lineage_config, self.counters)
        add_task(app, self.materialize_metrics, self.counters)
        add_task(app, self.announce_lineage, self.counters)
        add_task(app, self.announce_ready, self.counters)
        add_task(app, self.read_back_dashboard, self.counters)
        app.on_before_shutdown.connect(self.save_model)

        @app.page("/stats/")
        async def stats(web, request):
            return web.json(self.stats())

    def start(self) -> None:
        """Restore the models from the store, then serve what the registry recorded (blocking, before the first record)."""
        settings = self.settings
        store = open_model_store(settings.model_store, settings.state_dir / "models", settings.s3_endpoint_url)
        self.serving.install(CHAMPION, StreamScorer.restore(lambda: models.build(settings.model), settings.model,
                                                            settings.model_version, store,
                                                            max_abs_value=settings.max_abs_value, **self.monitoring))
        if settings.challenger_model:
            # The challenger is scored in shadow: its predictions are judged and tracked, never sent.
            self.serving.install(SHADOW, StreamScorer.restore(
                lambda: models.build(settings.challenger_model), settings.challenger_model,
                settings.challenger_version, store, max_abs_value=settings.max_abs_value, **self.monitoring))
        self.deployments.start(store)
        create_topics(clients.admin(settings), [durable(TopicSpec(state_topic(settings), settings.partitions, None,
                                                                  {"cleanup.policy": "compact"}), settings)], log.info)
        self.lineage = LineageReporter(settings, self.registry,
                                       inputs=(self.view.records_topic, self.view.labels_topic))

    def new_loop(self, job: Job) -> TransactionalLoop:
        settings = self.settings
        return TransactionalLoop(settings, data_plane_group(settings),
                                 worker_id(settings), [self.view.records_topic, self.view.labels_topic],
                                 state_topic(settings), job, batch_size=settings.batch_size,
                                 batch_wait_s=settings.batch_wait_ms / 1000)

    def consumer_lag(self) -> dict[str, int]:
        loop = self.data_plane.plane
        return dict(loop.stats.lag) if loop is not None else {}

    async def report(self) -> None:
        end_ms = now_ms()
        for which in self.serving.scorers():
            figures = which.monitor.figures() | {f"app_{name}": float(value) for name, value in self.counters.items()}
            self.job.tracked(self.serving.tracker(which).track_aggregate_metrics, figures, self.window_start_ms,
                             end_ms)
        self.window_start_ms = end_ms

    async def sample_dashboard(self) -> None:
        self.live.sample(time.time(), self.counters, self.serving.monitors())

    async def read_back_dashboard(self) -> None:
        """The dashboard's last day from the topics, so a restart does not blank it (blocking reads: off the loop)."""
        try:
            history = await asyncio.get_running_loop().run_in_executor(None, read_history, self.settings,
                                                                       self.registry)
        except Exception as err:  # the dashboard starts empty; scoring is not held up
            log.warning("dashboard history not read back: %s", err)
            self.live.restore_failed(f"{type(err).__name__}: {err}")
            return
        self.live.restore(**history)
        log.info("dashboard history read back: %d samples, %d deploys, %d alerts", len(history["samples"]),
                 len(history["markers"]), len(history["alerts"]))

    async def materialize_metrics(self) -> None:
        """Keep the metrics store that `read_metrics` reads filled from the metrics topic.

        A child process, not a thread: decoding and storing every metric record under
        this process's GIL would slow scoring down by half. A child that dies is started
        again, after a wait that doubles while it keeps dying (MATERIALIZER_BACKOFF_S).
        """
        backoff_s = MATERIALIZER_BACKOFF_S[0]
        while not self.stopping:
            started = time.monotonic()
            self.materializer = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tools", "metrics", "materialize", env=os.environ | self.settings.to_env(),
                stdout=asyncio.subprocess.DEVNULL, preexec_fn=stop_with_parent)
            code = await self.materializer.wait()
            if self.stopping:
                return
            if time.monotonic() - started > MATERIALIZER_HEALTHY_S:
                backoff_s = MATERIALIZER_BACKOFF_S[0]
            self.counters["materializer_restarts"] += 1
            log.warning("the metrics materializer exited with code %s; starting it again in %.0fs", code, backoff_s)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, MATERIALIZER_BACKOFF_S[1])

    async def announce_ready(self) -> None:
        base = f"http://localhost:{self.settings.web_port}"
        log.info("mlstream app ready (profile %s, Kafka %s): stats %s/stats/, dashboard %s/dashboard/, "
                 "Prometheus %s/metrics", self.settings.profile, self.settings.bootstrap_servers, base, base, base)

    async def announce_lineage(self) -> None:
        # Blocking (registry look-ups, a producer flush): run it off the loop.
        await asyncio.get_running_loop().run_in_executor(None, self.lineage.poll)

    async def follow_lineage_config(self) -> None:
        """Report the lineage again when `mlstream config put lineage ...` stores a new version."""
        await asyncio.get_running_loop().run_in_executor(None, self.lineage.poll)

    async def save_model(self, app, **kwargs) -> None:
        """On shutdown: the metrics and the materializer get a few seconds each.

        The models themselves are in the state changelog, committed with every batch; the data
        plane exports partition 0's model to the store as it stops. Each step is bounded and its
        failure logged, so a broker or registry that is down never keeps the app from stopping.
        """
        self.stopping = True
        try:
            self.metrics_sink.flush(SHUTDOWN_FLUSH_S)
        except Exception as err:
            log.warning("metrics not all delivered on shutdown: %s", err)
        await stop_child(self.materializer, SHUTDOWN_CHILD_S)

    def stats(self) -> dict:
        loop = self.data_plane.plane
        champion = self.serving.champion
        return {
            "app_id": self.settings.app_id,
            "model": {"name": champion.model.name, "version": champion.model.version,
                      "n_learned": champion.n_learned, "checkpoints_refused": champion.checkpoints_refused},
            "counters": dict(self.counters),
            "awaiting_label": self.job.waiting(),
            "figures": champion.monitor.figures(),
            "versions": {name: monitor.figures() for name, monitor in self.serving.monitors().items()},
            "data_plane": {"worker_id": worker_id(self.settings), "crashes": self.data_plane.crashes,
                           "joined": loop is not None and loop.stats.joined,
                           **({} if loop is None else {
                               "partitions": list(loop.stats.assigned), "batches": loop.stats.batches,
                               "messages": loop.stats.messages, "aborted_batches": loop.stats.aborted_batches,
                               "restarts": loop.stats.restarts, "restored_entries": loop.stats.restored_entries,
                               "last_restore_s": round(loop.stats.last_restore_s, 3)})},
        }


async def stop_child(child: asyncio.subprocess.Process | None, timeout_s: float) -> None:
    """SIGINT (like Ctrl-C: the materializer commits what it stored and exits), SIGKILL after ``timeout_s``.

    A child that already exited is left alone: signalling it raised ProcessLookupError,
    which kept the app from stopping.
    """
    if child is None or child.returncode is not None:
        return
    try:
        child.send_signal(signal.SIGINT)
        await asyncio.wait_for(child.wait(), timeout_s)
    except ProcessLookupError:
        return
    except asyncio.TimeoutError:
        log.warning("the metrics materializer (pid %s) did not exit within %.0fs; killing it", child.pid, timeout_s)
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()


def stop_with_parent() -> None:
    """In the child: get SIGINT when the app dies, even by SIGKILL, so no materializer is orphaned."""
    if sys.platform == "linux":
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)
