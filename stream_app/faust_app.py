"""The Faust app settings both stream apps (scorer, linker) share."""

from __future__ import annotations

import faust

from mlstream.settings import Settings


def new_app(settings: Settings, app_id: str, web_port: int, partitions: int, **options) -> faust.App:
    """A Faust app on the project's Kafka, with raw bytes on the wire and tables in memory."""
    datadir = settings.state_dir / "faust" / app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    return faust.App(
        app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
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
