"""The Faust app settings both stream apps (scorer, linker) share, and how they open their clients on start.

Building an app contacts nothing: the broker, the registry and the model store are first
called from :func:`on_worker_start` work, when a worker starts the app. Their timers and
tasks are added with :func:`add_timer` and :func:`add_task`, which keep a failure from
crashing the worker.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, MutableMapping

import faust
from mode import Service

from mlstream.kafka import clients
from mlstream.kafka.topics import TopicSpec, create_topics, durable
from mlstream.redaction import install_log_masking
from mlstream.streaming.repeated_logs import fold_client_log_repeats
from mlstream.settings import Settings

log = logging.getLogger(__name__)


def new_app(settings: Settings, app_id: str, web_port: int, partitions: int, **options) -> faust.App:
    """A Faust app on the project's Kafka, with raw bytes on the wire.

    Its web server binds ``settings.web_bind`` (loopback unless MLSTREAM_WEB_BIND opens it), and
    Faust's ``/table/<name>/<key>/`` views are off: they served any table entry, a
    record's features included, to anyone who could reach the port. URL passwords are masked
    in every log line of the process (:func:`~mlstream.redaction.install_log_masking`), and the
    Kafka client's repeated lines folded (:mod:`mlstream.streaming.repeated_logs`).
    """
    install_log_masking()
    fold_client_log_repeats()  # a broker restart made aiokafka log each retry, ten a second
    datadir = settings.state_dir / "faust" / app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    app = faust.App(
        app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
        datadir=str(datadir),
        web_port=web_port,
        web_bind=settings.web_bind,  # localhost unless MLSTREAM_WEB_BIND says otherwise
        web_tables_enabled=False,
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        key_serializer="raw",
        value_serializer="raw",  # values are Confluent-framed Avro, decoded by our codecs
        consumer_auto_offset_reset="earliest",
        # A worker killed without leaving its group is noticed after this, not Faust's default 60 s:
        # until then its successor waits to join (and a static member of the data plane is not concerned).
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        **clients.faust_options(settings),
        **options,
    )
    # The one topic Faust makes itself (its leader election's, which every Faust consumer subscribes to),
    # made first with the profile's replication and min.insync.replicas, which Faust would leave out.
    leader = durable(TopicSpec(f"{app_id}-__assignor-__leader", 1, None), settings)
    on_worker_start(app, lambda: create_topics(clients.admin(settings), [leader], log.info))
    return app


class _WorkerStart(Service):
    def __init__(self, start: Callable[[], None]):
        super().__init__()
        self._start = start

    async def on_start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._start)


def on_worker_start(app: faust.App, start: Callable[[], None]) -> None:
    """Run ``start`` (blocking: off the loop) when a worker starts ``app``, before its producer, consumer and agents.

    So the first message finds done what ``start`` opens (clients, a model restored from
    the store), and a failure stops the worker before it reads anything. Call it while
    building the app: a dependency added before the app starts comes ahead of the ones
    Faust adds then, and mode starts them in order. (``app.task`` and ``app.service`` run
    after table recovery, when the agents may already have had messages.)
    """
    app.add_dependency(_WorkerStart(start))


#: The counter that :func:`guarded` timers and tasks count their failures in.
BACKGROUND_FAILURES = "background_failures"


def guarded(fun: Callable[[], Awaitable[None]], name: str, counters: MutableMapping[str, int]
            ) -> Callable[[], Awaitable[None]]:
    """``fun`` (a timer's or a task's coroutine function) made unable to crash the worker.

    Faust lets an exception out of a timer or task stop the whole app (an unguarded
    ``report`` timer took the scorer down on one NaN). Here it is logged with its
    traceback and counted in ``counters["background_failures"]``; a timer runs again
    at its next tick.

        >>> async def report():
        ...     raise ValueError("log_loss: nan")
        >>> counters = {}
        >>> asyncio.run(guarded(report, "report", counters)())
        >>> counters
        {'background_failures': 1}
    """

    @functools.wraps(fun)
    async def run() -> None:
        try:
            await fun()
        except Exception:
            counters[BACKGROUND_FAILURES] = counters.get(BACKGROUND_FAILURES, 0) + 1
            log.exception("%s failed; the app goes on (%d timer and task failures so far)", name,
                          counters[BACKGROUND_FAILURES])

    run.mlstream_guarded = True  # Faust's own wrappers copy it: tests find it on every task of an app
    return run


def add_timer(app: faust.App, interval_s: float, name: str, fun: Callable[[], Awaitable[None]],
              counters: MutableMapping[str, int]) -> None:
    """Run ``fun`` every ``interval_s`` seconds, :func:`guarded`."""
    app.timer(interval=interval_s, name=name)(guarded(fun, name, counters))


def add_task(app: faust.App, fun: Callable[[], Awaitable[None]], counters: MutableMapping[str, int]) -> None:
    """Run ``fun`` once the worker is ready, :func:`guarded`."""
    app.task(guarded(fun, fun.__name__, counters))
