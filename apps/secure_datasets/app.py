"""The secure-dataset processor: a Faust worker hosting the secure-dataset job on the data plane.

Run it with ``mlstream security process --topic T``. The records go through
:class:`apps.secure_datasets.secure_job.SecureDatasetJob` on
:class:`mlstream.streaming.transactional_loop.TransactionalLoop`, as the scorer's and the
linker's do: batches on confluent-kafka, exactly once by Kafka's transactions. Faust runs the
worker and ``/stats/`` (the job's figures as of the last commit, and the data plane's).

It runs under the profile's principal, which needs READ on the raw topic, WRITE on the secure
topics, the dead-letter, alerts, audit and hook topics, and, for the data plane, its consumer
group and transactional ids: all named after the app id (``<app id>-secure-datasets-<topic>``),
as the project's ACLs grant them (``tools.local_services.secured.app_acls``).
"""

from __future__ import annotations

import logging
import socket

from apps.secure_datasets.secure_job import SecureDatasetJob
from mlstream.config_store import ConfigStore
from mlstream.kafka import clients
from mlstream.kafka.topics import TopicSpec, create_topics, durable
from mlstream.security.audit_topic import ensure_audit_topic
from mlstream.settings import Settings
from mlstream.streaming.dead_lettering import wait_for_registry
from mlstream.streaming.faust_app import new_app, on_worker_start
from mlstream.streaming.loop_service import DataPlaneService
from mlstream.streaming.transactional_loop import Job, TransactionalLoop

log = logging.getLogger(__name__)


def processor_app_id(settings: Settings, raw_topic: str) -> str:
    """The processor's app id: one per raw topic, under the profile's app id (its ACLs' prefix)."""
    return f"{settings.app_id}-secure-datasets-{raw_topic}"


def state_topic(settings: Settings, raw_topic: str) -> str:
    """The processor's state changelog (compacted): the policy versions in force, per input partition."""
    return f"{settings.topics.prefix}{processor_app_id(settings, raw_topic)}-state"


class SecureDatasetsApp:
    """The processor's Faust app (:attr:`app`) and its data plane, over one raw topic with ``partitions``."""

    def __init__(self, settings: Settings, raw_topic: str, partitions: int, store: ConfigStore, web_port: int,
                 reload_s: float = 5.0):
        self.settings, self.raw_topic, self.partitions = settings, raw_topic, partitions
        self.app_id = processor_app_id(settings, raw_topic)
        self.web_port = web_port
        self.app = app = new_app(settings, self.app_id, web_port, 1)
        self.job = SecureDatasetJob(settings, raw_topic, store, self.app_id, reload_s)
        self.data_plane = DataPlaneService(self.new_loop, self.job, prepare=lambda: wait_for_registry(self.job.codecs()))
        on_worker_start(app, self.start)
        app.add_dependency(self.data_plane)

        @app.page("/stats/")
        async def stats(web, request):
            return web.json(self.stats())

    def start(self) -> None:
        """The state topic, partitioned as the raw topic, and the audit topic, before the first assignment."""
        create_topics(clients.admin(self.settings), [durable(TopicSpec(
            state_topic(self.settings, self.raw_topic), self.partitions, None, {"cleanup.policy": "compact"}),
            self.settings)], log.info)
        ensure_audit_topic(self.settings)

    def new_loop(self, job: Job) -> TransactionalLoop:
        settings = self.settings
        worker_id = settings.worker_id or f"{socket.gethostname()}-{self.web_port}"
        return TransactionalLoop(settings, f"{self.app_id}-data-plane", worker_id, [self.raw_topic],
                                 state_topic(settings, self.raw_topic), job, batch_size=settings.batch_size,
                                 batch_wait_s=settings.batch_wait_ms / 1000)

    def stats(self) -> dict:
        loop = self.data_plane.plane
        return self.job.figures() | {
            "data_plane": {"crashes": self.data_plane.crashes, "joined": loop is not None and loop.stats.joined,
                           **({} if loop is None else {
                               "partitions": list(loop.stats.assigned), "batches": loop.stats.batches,
                               "messages": loop.stats.messages, "aborted_batches": loop.stats.aborted_batches,
                               "restarts": loop.stats.restarts, "restored_entries": loop.stats.restored_entries})}}
