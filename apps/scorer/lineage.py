"""The lineage the stream app reports: its topics, their schemas, itself, and its model's build.

At start, and whenever a new version of the ``lineage`` config appears in the config store
(the Schema Registry; ``mlstream config put lineage lineage.yml``), the app sends:

1. if the config has an entry for the app's model: its training datasets ->
   ml_model_train_build_process -> ml_model_build (see mlstream.lineage.model_lineage), and
   that build -> ml_model_deploy_process -> ml_model_deployment (this app serving it);
2. records and labels topics (and that build) -> the scoring process -> predictions,
   metrics and dead-letter topics, each topic linked to its registered Avro schema version.

Notifications that cannot be sent are spooled under the state dir and sent first next time.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka.schema_registry import SchemaRegistryClient

from mlstream.config_store import ConfigNotFound, ConfigStore, ConfigVersion, SchemaRegistryConfigStore
from mlstream.kafka import clients
from mlstream.lineage import entities as e
from mlstream.lineage import lifecycle
from mlstream.lineage.config import LineageConfigError, load_lineage_yaml
from mlstream.lineage.emitter import LineageDeliveryError, LineageEmitter
from mlstream.lineage.hook import entity_create_v2
from mlstream.lineage.registered import topics_with_schemas
from mlstream.lineage.model_lineage import model_build_notification, registry_lookup
from mlstream.lineage.spool import lineage_emitter
from mlstream.settings import Settings

log = logging.getLogger(__name__)

LINEAGE_USER = "mlstream"
LINEAGE_CONFIG = "lineage"


def build_version(settings: Settings) -> int:
    """ml_model_build.version is an int; MLSTREAM_MODEL_VERSION may be any text ("1", "2024-06")."""
    return int(settings.model_version) if settings.model_version.isdigit() else 1


def startup_notification(settings: Settings, registry: SchemaRegistryClient, started_at_ms: int,
                         model_build: dict | None = None, inputs: tuple[str, str] | None = None) -> dict:
    """``inputs``: the records and labels topics the app's feature view reads (default: the project's)."""
    topics = settings.topics
    records, labels = inputs or (topics.records, topics.labels)
    ns = settings.atlas_namespace
    guids = e.negative_guids()
    topic_entities, schemas = topics_with_schemas(
        settings, registry, (records, labels, topics.predictions, topics.metrics, topics.dead_letters), guids)
    sources = [topic_entities[records], topic_entities[labels]]
    if model_build is not None:
        sources.append(e.object_id(e.ML_MODEL_BUILD, model_build["attributes"]["qualifiedName"]))
    process = e.stream_process(
        settings.app_id,
        inputs=sources,
        outputs=[topic_entities[t] for t in (topics.predictions, topics.metrics, topics.dead_letters)],
        namespace=ns,
        model_name=settings.model,
        model_version=settings.model_version,
        guid=next(guids),
        started_at_ms=started_at_ms,
        description="Scores records with an online river model and learns from delayed labels.",
    )
    return entity_create_v2([process], [*topic_entities.values(), *schemas], user=LINEAGE_USER)


class LineageReporter:
    """Reports the app's lineage, and again whenever the lineage config gets a new version."""

    def __init__(self, settings: Settings, registry: SchemaRegistryClient, *, store: ConfigStore | None = None,
                 emitter: LineageEmitter | None = None, inputs: tuple[str, str] | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.inputs = inputs  # the records and labels topics, if not the project's
        self.store = store if store is not None else SchemaRegistryConfigStore(registry, settings.topics.prefix)
        self.emitter = emitter if emitter is not None else lineage_emitter(settings, key=settings.app_id)
        self.started_at_ms = time.time_ns() // 1_000_000
        self.config_version: int | None = None
        self.reports = 0
        self._lock = threading.Lock()  # the start-up task and the poll timer may overlap

    def latest_config(self) -> ConfigVersion | None:
        try:
            return self.store.get(LINEAGE_CONFIG)
        except ConfigNotFound:
            return None

    def poll(self) -> bool:
        """Report if the lineage config changed since the last report (or nothing was reported yet).

        Never raises: a registry or broker that is down must not stop scoring. The next poll
        tries again, and notifications already built wait in the spool.
        """
        with self._lock:
            try:
                return self._poll()
            except Exception as err:  # registry down, broker down, ...: say so, retry on the next poll
                log.warning("lineage not reported this time (%s: %s); retrying in the next poll",
                            type(err).__name__, err)
                return False

    def _poll(self) -> bool:
        config = self.latest_config()
        version = config.version if config else None
        if self.reports and version == self.config_version:
            if getattr(self.emitter, "spooled", list)():
                self._flush()  # what an earlier report could not send
            return False
        self.report(config)
        return True

    def report(self, config: ConfigVersion | None) -> None:
        notes = []
        model_build = None
        if config is not None:
            try:
                lineage = load_lineage_yaml(config.text, f"config {LINEAGE_CONFIG} v{config.version}")
                model = lineage.get(self.settings.model)
                if model is not None:
                    topics = set(clients.admin(self.settings)
                                 .list_topics(timeout=10).topics)
                    build_note = model_build_notification(
                        model, build_version(self.settings), self.settings.atlas_namespace,
                        bootstrap_servers=self.settings.bootstrap_servers, existing_topics=topics,
                        schema_lookup=registry_lookup(self.registry), user=LINEAGE_USER)
                    notes.append(build_note)
                    model_build = next(x for x in build_note["entities"]["referredEntities"].values()
                                       if x["typeName"] == e.ML_MODEL_BUILD)
                    # This app serves that build: its deployment (created, or updated on a restart).
                    notes += lifecycle.deploy(self.settings.model, build_version(self.settings), self.settings.app_id,
                                              deployed_at_ms=self.started_at_ms, user=LINEAGE_USER)
            except LineageConfigError as err:
                # A broken config must not stop scoring: report the app's own lineage, say what is wrong.
                log.error("lineage config %s v%s ignored: %s", LINEAGE_CONFIG, config.version, err)
        notes.append(startup_notification(self.settings, self.registry, self.started_at_ms, model_build, self.inputs))
        for note in notes:
            self.emitter.emit(note)
        self.config_version = config.version if config else None
        self.reports += 1
        self._flush()
        log.info("lineage reported (config %s version %s)", LINEAGE_CONFIG, self.config_version)

    def _flush(self) -> None:
        try:
            self.emitter.flush()
        except LineageDeliveryError as err:
            log.warning("lineage not delivered yet, kept for the next attempt: %s", err)
