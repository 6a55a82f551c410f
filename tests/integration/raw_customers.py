"""A raw customers dataset for the secure-dataset tests: its topic, its schema and the example policies."""

from __future__ import annotations

from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import Schema

from mlstream.config_store import open_config_store
from mlstream.kafka import clients
from mlstream.kafka.serde import value_subject
from mlstream.security import EXAMPLES, configs
from producers import pii_customers


def prepare_raw_customers(settings) -> str:
    """``<prefix>customers`` made (2 partitions) with its schema registered, and the example directory and
    hive policies stored, their database renamed to the prefix's; the raw topic's name."""
    prefix = settings.topics.prefix
    raw = f"{prefix}customers"
    admin = clients.admin(settings)  # kept: a client collected before its futures resolve fails them
    for future in admin.create_topics([NewTopic(raw, 2, 1)]).values():
        future.result(timeout=30)
    store = open_config_store(settings)
    for name, file in ((configs.DIRECTORY, "directory.yaml"), ("security.hive", "hive-policies.json")):
        text = (EXAMPLES / file).read_text().replace('"database": {"values": ["mlstream"]}',
                                                     f'"database": {{"values": ["{prefix.rstrip(".")}"]}}')
        configs.check(store, name, text, file)
        store.put(name, text)
    clients.registry_client(settings).register_schema(value_subject(raw), Schema(pii_customers.schema_json(), "AVRO"))
    return raw
