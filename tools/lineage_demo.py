"""The demo's lineage: before the stream, a lineage service and config; after it, a build and the graph.

``make demo`` ends with the lineage of the predictions topic printed from the embedded
lineage service (left running, like Kafka): source dataset -> feed -> records and labels
-> the stream process (and the model build it runs) -> predictions.
"""

from __future__ import annotations

import time
from typing import Callable

from mlstream.config_store import ConfigNotFound, SchemaRegistryConfigStore
from mlstream.kafka.serde import registry_client
from mlstream.settings import Settings

Say = Callable[[str], None]


def demo_lineage_yaml(settings: Settings) -> str:
    return f"""# The demo model's lineage (config 'lineage'; see 'mlstream config history lineage').
# CML's lineage.yml keys (hive_table_qualified_names, metadata) work here too.
{settings.model}:
  owner: mlstream-demo
  team: ml-platform
  description: online model that learns from the records and labels topics as they stream
  metadata: {{training: "online, in the stream app"}}
  kafka_topics:
    - {{topic: {settings.topics.records}}}
    - {{topic: {settings.topics.labels}}}
  splits: {{train: 0.7, validation: 0.15, test: 0.15}}
  sampling: {{method: none}}
"""


def prepare(settings: Settings, dataset: str, say: Say = print) -> None:
    """Start the lineage service (unless an Atlas is configured), store a lineage config, report the feed."""
    from mlstream.lineage.feeds import FeedLineage
    from apps.lineage_service.service import ensure_running
    from producers.datasets import source_name

    if not settings.atlas_url:
        ensure_running(settings, say)
    store = SchemaRegistryConfigStore(registry_client(settings.schema_registry_url), settings.topics.prefix)
    try:
        current = store.get("lineage")
        say(f"lineage config: version {current.version} in the registry ({store.subject('lineage')})")
    except ConfigNotFound:
        version = store.put("lineage", demo_lineage_yaml(settings))
        say(f"lineage config: stored version {version} as {store.subject('lineage')}")
    FeedLineage(settings, source=source_name(dataset), seed=42, started_at_ms=time.time_ns() // 1_000_000,
                warn=say).start()


def finish(settings: Settings, say: Say = print) -> dict:
    """Train a reproducible build of the demo's model, then print the predictions topic's lineage."""
    from mlstream.registry import builds
    from tools.lineage_views import atlas_client, find_entity, show
    from apps.scorer.lineage import build_version

    version = build_version(settings) + 1
    manifest = builds.run_build(settings, model=settings.model, spec=settings.model, version=version, say=say)
    client = atlas_client(settings)
    deadline = time.monotonic() + 30
    while True:  # the service applies hook messages a moment after they are sent
        try:
            find_entity(client, f"{settings.model}/{version}", settings.atlas_namespace)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    say(show(client, settings.topics.predictions, settings.atlas_namespace))
    if not settings.atlas_url:  # the embedded service draws it too
        predictions = find_entity(client, settings.topics.predictions, settings.atlas_namespace)
        say(f"lineage graph: http://127.0.0.1:{settings.lineage_port}/lineage/?guid={predictions['guid']}")
    say(f"try: mlstream lineage build {settings.model}/{version}; mlstream lineage readers {settings.topics.records}; "
        f"mlstream lineage changes {settings.model}@{settings.app_id}; "
        f"mlstream lineage reproduce {settings.model}/{version} --out /tmp/{settings.model}-{version}")
    return {"lineage_build": f"{settings.model}/{version}", "lineage_build_examples":
            {s.name: s.examples for s in manifest.splits}}
