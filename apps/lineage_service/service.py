"""The embedded lineage service (``mlstream lineage serve``), for when there is no Atlas.

Two parts beside one :class:`~apps.lineage_service.graph.LineageGraph` (SQLite):

* ``HookConsumer`` reads the ATLAS_HOOK topic from where it stopped, reassembles split and
  gzipped messages with :class:`~mlstream.lineage.hook.HookMessageAssembler` and applies each
  notification; the topic position is stored in the same transaction as the change, and
  only between whole messages, so a restart neither skips nor repeats a notification.
* :func:`~apps.lineage_service.rest.atlas_app` serves Atlas REST v2 under ``/api/atlas`` (what
  the official ``apache-atlas`` client calls: entities, search, lineage, relationships,
  typedefs, classifications, glossary) and the graph page ``/lineage/``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
from aiohttp import web
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from apps.lineage_service.graph import LineageGraph
from apps.lineage_service.rest import API, atlas_app
from mlstream.kafka import clients
from mlstream.lineage.hook import HookMessageAssembler, HookMessageError
from mlstream.settings import Settings

log = logging.getLogger(__name__)

# ----- the hook topic -----------------------------------------------------------------------

class HookConsumer:
    """Applies the notifications of one hook topic to the graph, resuming where it stopped."""

    def __init__(self, graph: LineageGraph, settings: Settings, topic: str, group_id: str) -> None:
        self.graph, self.topic = graph, topic
        self.consumer = clients.consumer(settings, **{"group.id": group_id, "enable.auto.commit": False,
                                                      "auto.offset.reset": "earliest"})
        self.assemblers: dict[int, HookMessageAssembler] = {}
        self.applied = 0
        self.rejected = 0
        self._stop = threading.Event()

    def _position_key(self, partition: int) -> str:
        return f"{self.topic}:{partition}"

    def assign(self) -> None:
        metadata = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic]
        if metadata.error is not None:
            raise RuntimeError(f"hook topic {self.topic}: {metadata.error}; create it with 'mlstream init'")
        partitions = []
        for partition in metadata.partitions:
            stored = self.graph.next_offset(self._position_key(partition))
            partitions.append(TopicPartition(self.topic, partition, OFFSET_BEGINNING if stored is None else stored))
        self.consumer.assign(partitions)

    def poll_once(self, timeout: float = 1.0) -> int:
        """Consume what is there; return the number of notifications applied."""
        applied = 0
        for message in self.consumer.consume(500, timeout):
            if message.error() is not None:
                if message.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("hook topic %s: %s", self.topic, message.error())
                continue
            assembler = self.assemblers.setdefault(message.partition(), HookMessageAssembler())
            position = (self._position_key(message.partition()), message.offset() + 1)
            try:
                envelopes = assembler.add(message.value())
            except HookMessageError as err:
                self.rejected += 1
                raw = (message.value() or b"").decode("utf-8", "replace")
                self.graph.reject(f"offset {message.offset()}: {err}", raw,
                                  consumed=None if assembler.pending_message_ids else position)
                continue
            for envelope in envelopes:
                # Between whole messages only: a restart re-reads a split message from its first chunk.
                done = not assembler.pending_message_ids
                result = self.graph.apply(envelope["message"], consumed=position if done else None)
                if "rejected" in result:
                    self.rejected += 1
                else:
                    applied += 1
        self.applied += applied
        return applied

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.assign()
                break
            except Exception as err:  # the topic may not exist yet; the broker may be starting
                log.warning("lineage service waits for the hook topic: %s", err)
                self._stop.wait(2.0)
        while not self._stop.is_set():
            self.poll_once()
        self.consumer.close()

    def stop(self) -> None:
        self._stop.set()


class LineageService:
    """The REST app and the hook consumer together, in background threads (``start`` / ``stop``)."""

    def __init__(self, settings, *, database: str | None = None, host: str = "127.0.0.1",
                 port: int | None = None) -> None:
        database = database or str(settings.state_dir / "lineage" / "lineage.db")
        if database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        self.graph = LineageGraph(database)
        self.host, self.port = host, port or settings.lineage_port
        self.consumer = HookConsumer(self.graph, settings, settings.topics.atlas_hook,
                                     group_id=f"mlstream-lineage-{settings.app_id}")
        self.url = f"http://{host}:{self.port}"
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    def start(self) -> "LineageService":
        started = threading.Event()

        def serve():
            self._loop = asyncio.new_event_loop()
            self._runner = web.AppRunner(atlas_app(self.graph), access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.TCPSite(self._runner, self.host, self.port).start())
            started.set()
            self._loop.run_forever()

        self._threads = [threading.Thread(target=serve, name="lineage-rest", daemon=True),
                         threading.Thread(target=self.consumer.run, name="lineage-hook", daemon=True)]
        for thread in self._threads:
            thread.start()
        if not started.wait(15):
            raise RuntimeError(f"lineage service did not start on {self.url}")
        return self

    def stop(self) -> None:
        self.consumer.stop()
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        for thread in self._threads:
            thread.join(10)

    def status(self) -> Mapping[str, Any]:
        return {"url": self.url + API, "applied": self.consumer.applied, "rejected": self.consumer.rejected}



# ----- running it in the background (the demo leaves it up, like Kafka) ---------------------

def answering(url: str) -> bool:
    try:
        return requests.get(f"{url}{API}/admin/version", timeout=2).ok
    except requests.RequestException:
        return False


def ensure_running(settings, say=print) -> str:
    """The embedded service's URL; started as a background process (``mlstream lineage serve``) if not up."""
    url = f"http://127.0.0.1:{settings.lineage_port}"
    if answering(url):
        return url
    log_path = settings.state_dir / "logs" / "lineage.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "tools", "lineage", "serve"], stdout=log,
                                   stderr=subprocess.STDOUT, env=os.environ | settings.to_env(),
                                   start_new_session=True)
    pid_path(settings).write_text(str(process.pid))
    deadline = time.monotonic() + 60
    while not answering(url):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"lineage service did not start; see {log_path}")
        time.sleep(0.3)
    say(f"lineage service: {url}{API} (pid {process.pid}, log {log_path}); stop it with 'mlstream lineage stop'")
    return url


def pid_path(settings):
    path = settings.state_dir / "lineage" / "serve.pid"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def stop_background(settings) -> bool:
    """Stop the service ``ensure_running`` started; False if none was running."""
    path = pid_path(settings)
    if not path.exists():
        return False
    pid = int(path.read_text())
    path.unlink()
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True
