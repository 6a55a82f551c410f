"""The demo's lineage: before the stream, a lineage service and config; after it, a build and the graph.

``make demo`` ends with a registry build of its model trained on what the stream carried
(so it can be shown, deployed and rolled back like any other) and the lineage of the
predictions topic printed from the embedded lineage service (left running, like Kafka):
source dataset -> feed -> records and labels -> the stream process (and the model build it
runs) -> predictions.
"""

from __future__ import annotations

import time
from typing import Callable

from apps.lineage_service.service import ensure_running
from apps.scorer.lineage import build_version
from mlstream.config_store import ConfigNotFound, SchemaRegistryConfigStore
from mlstream.kafka.clients import registry_client
from mlstream.lineage.feeds import FeedLineage
from mlstream.registry.metadata_log import open_registry
from mlstream.registry.records import Build
from mlstream.registry.training import model_spec, train_build
from mlstream.scoring.model_store import open_model_store
from mlstream.settings import Settings
from producers.datasets import source_name
from tools.lineage_views import atlas_client, find_entity, show

Say = Callable[[str], None]


def demo_lineage_yaml(settings: Settings, records_topic: str | None = None) -> str:
    """The demo model's lineage config; ``records_topic``: the records its feature view reads (default: the
    project's records topic)."""
    return f"""# The demo model's lineage (config 'lineage'; see 'mlstream config history lineage').
# CML's lineage.yml keys (hive_table_qualified_names, metadata) work here too.
{settings.model}:
  owner: mlstream-demo
  team: ml-platform
  description: online model that learns from the records and labels topics as they stream
  metadata: {{training: "online, in the stream app"}}
  kafka_topics:
    - {{topic: {records_topic or settings.topics.records}}}
    - {{topic: {settings.topics.labels}}}
  splits: {{train: 0.7, validation: 0.15, test: 0.15}}
  sampling: {{method: none}}
"""


def prepare(settings: Settings, dataset: str | None, say: Say = print, records_topic: str | None = None) -> None:
    """Start the lineage service (unless an Atlas is configured), store a lineage config (unless one is stored), report
    the feed of ``dataset`` (None: a feed that reports its own, as a CSV's does, to ``records_topic``)."""
    if not settings.atlas_url:
        ensure_running(settings, say)
    store = SchemaRegistryConfigStore(registry_client(settings), settings.topics.prefix)
    try:
        current = store.get("lineage")
        say(f"lineage config: version {current.version} in the registry ({store.subject('lineage')})")
    except ConfigNotFound:
        version = store.put("lineage", demo_lineage_yaml(settings, records_topic))
        say(f"lineage config: stored version {version} as {store.subject('lineage')}")
    if dataset is not None:
        FeedLineage(settings, source=source_name(dataset), seed=42, started_at_ms=time.time_ns() // 1_000_000,
                    warn=say).start()


def train_demo_build(settings: Settings, say: Say = print) -> Build:
    """A registry build of the demo's model, the way ``mlstream models build`` makes one."""
    registry = open_registry(settings)
    store = open_model_store(settings.model_store, settings.state_dir / "models", settings.s3_endpoint_url)
    spec = model_spec(registry, settings.model, None, None, default_spec=settings.model)
    # The app's own online model goes by MLSTREAM_MODEL_VERSION, in its lineage and its checkpoints:
    # the build takes a later number, so neither is mistaken for the other.
    version = max(int(registry.next_version(settings.model)), build_version(settings) + 1)
    return train_build(settings, registry, store, model=settings.model, spec=spec.spec, params=spec.params,
                       version=str(version), say=say)


def finish(settings: Settings, say: Say = print, records_topic: str | None = None) -> dict:
    """Train the demo's build, then print the predictions topic's lineage."""
    build = train_demo_build(settings, say)
    client = atlas_client(settings)
    deadline = time.monotonic() + 30
    while True:  # the service applies hook messages a moment after they are sent
        try:
            find_entity(client, build.ref, settings.atlas_namespace)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    say(show(client, settings.topics.predictions, settings.atlas_namespace))
    if not settings.atlas_url:  # the embedded service draws it too
        predictions = find_entity(client, settings.topics.predictions, settings.atlas_namespace)
        say(f"lineage graph: http://127.0.0.1:{settings.lineage_port}/lineage/?guid={predictions['guid']}")
    say(f"try: mlstream models show {build.ref}; mlstream lineage build {build.ref}; "
        f"mlstream lineage readers {records_topic or settings.topics.records}; "
        f"mlstream lineage changes {settings.model}@{settings.app_id}; "
        f"mlstream lineage reproduce {build.ref} --out /tmp/{settings.model}-{build.version}")
    return {"build": build.ref, "build_examples": {s["name"]: s["examples"] for s in build.data["splits"]}}
