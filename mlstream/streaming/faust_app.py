"""The Faust app settings both stream apps (scorer, linker) share, and how they open their clients on start.

Building an app contacts nothing: the broker, the registry and the model store are first
called from :func:`on_worker_start` work, when a worker starts the app.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Iterable

import faust
from mode import Service

from mlstream.settings import Settings
from mlstream.streaming import kafka_transport

log = logging.getLogger(__name__)


def new_app(settings: Settings, app_id: str, web_port: int, partitions: int, **options) -> faust.App:
    """A Faust app on the project's Kafka, with raw bytes on the wire and tables in memory."""
    datadir = settings.state_dir / "faust" / app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    return faust.App(
        app_id,
        broker=[f"{kafka_transport.SCHEME}://{server}" for server in settings.bootstrap_servers.split(",")],
        store="memory://",  # tables are rebuilt from their changelog topics on restart
        datadir=str(datadir),
        web_port=web_port,
        topic_partitions=partitions,
        topic_replication_factor=1,
        key_serializer="raw",
        value_serializer="raw",  # values are Confluent-framed Avro, decoded by our codecs
        consumer_auto_offset_reset="earliest",
        **options,
    )


async def warm_up(codecs: Iterable) -> None:
    """Ready the app for its first message, from a start-up task.

    Each codec looks up and parses its schemas now (blocking registry calls: off the
    loop), instead of on the first message. Then the start-up heap (Faust, aiokafka,
    numpy, river...) is frozen out of the garbage collector's sight: a full collection
    over it stalls the event loop for about 100 ms, which every message queued behind
    it waits out.
    """
    loop = asyncio.get_running_loop()
    for codec in codecs:
        try:
            await loop.run_in_executor(None, codec.warm_up)
        except Exception as err:  # the first message will try again, and retry or dead-letter as usual
            log.warning("could not warm up the codec of %s: %s", codec.topic, err)
    gc.collect()
    gc.freeze()


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
