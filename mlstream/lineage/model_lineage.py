"""A model's lineage YAML entry as Atlas entities: its datasets -> train process -> the model build.

Kafka topics are checked against the broker and their schema versions looked up in the
registry, so a reference to a topic or subject that does not exist is an error, not a
dangling entity. Hive, Spark and S3 names are reported as given: mlstream cannot see those
systems, and Atlas's own hooks fill in the rest of those entities.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

from confluent_kafka.schema_registry import RegisteredSchema
from confluent_kafka.schema_registry.error import SchemaRegistryError

from mlstream.identifiers import build_crn
from mlstream.lineage import entities as e
from mlstream.lineage.config import LineageConfigError, ModelLineage
from mlstream.lineage.hook import entity_create_v2

#: (subject, version or None for the latest) -> the registered schema
SchemaLookup = Callable[[str, int | None], RegisteredSchema]


def registry_lookup(registry) -> SchemaLookup:
    def lookup(subject: str, version: int | None) -> RegisteredSchema:
        try:
            return registry.get_version(subject, "latest" if version is None else version)
        except SchemaRegistryError as err:
            if err.http_status_code == 404:
                which = "any version" if version is None else f"version {version}"
                raise LineageConfigError(f"lineage names schema subject {subject} {which}, which the registry "
                                         f"does not have") from err
            raise
    return lookup


def dataset_entities(model: ModelLineage, namespace: str, *, bootstrap_servers: str, existing_topics: set[str],
                     schema_lookup: SchemaLookup, guids: Iterator[str]) -> tuple[list[dict], list[dict]]:
    """(the datasets the model was trained on, the entities they refer to such as schemas and buckets)."""
    datasets: list[dict[str, Any]] = []
    referred: list[dict[str, Any]] = []
    for qualified_name in model.hive_table_qualified_names:
        datasets.append(e.hive_table(qualified_name, guid=next(guids)))
    for db_table in model.hive_tables:
        datasets.append(e.hive_table(e.hive_table_qualified_name(db_table, namespace), guid=next(guids)))
    for ref in model.kafka_topics:
        if ref.topic not in existing_topics:
            raise LineageConfigError(f"lineage of {model.name!r} names Kafka topic {ref.topic!r}, which does not "
                                     f"exist on {bootstrap_servers}")
        registered = schema_lookup(ref.subject, ref.version)
        schema = e.avro_schema(ref.subject, registered.version, registered.schema.schema_str, namespace,
                               guid=next(guids))
        referred.append(schema)
        datasets.append(e.kafka_topic(ref.topic, namespace, bootstrap_servers=bootstrap_servers, guid=next(guids),
                                      avro_schemas=[schema]))
    for path in model.s3_paths:
        *containers, directory = e.s3_path_entities(path, namespace, guids=guids)
        referred += containers
        datasets.append(directory)
    datasets += [e.spark_table(t, namespace, guid=next(guids)) for t in model.spark_tables]
    datasets += [e.spark_table(v, namespace, guid=next(guids), view=True) for v in model.spark_views]
    return datasets, referred


def build_metadata(model: ModelLineage) -> dict[str, str]:
    """CML's free-form metadata plus the mlstream keys, flattened to strings (ml_model_build.metadata)."""
    metadata = dict(model.metadata)
    for key in ("owner", "team", "label"):
        if getattr(model, key):
            metadata[key] = getattr(model, key)
    if model.features:
        metadata["features"] = ",".join(model.features)
    metadata |= {f"sampling.{k}": str(v) for k, v in model.sampling.items()}
    metadata |= {f"splits.{k}": str(v) for k, v in model.splits.items()}
    return metadata


def model_build_notification(model: ModelLineage, build_version: int, namespace: str, *, bootstrap_servers: str,
                             existing_topics: set[str], schema_lookup: SchemaLookup, user: str,
                             extra_metadata: dict[str, str] | None = None, created_at_ms: int | None = None) -> dict:
    """One ENTITY_CREATE_V2: the model's datasets -> ml_model_train_build_process -> ml_model_build."""
    guids = e.negative_guids()
    datasets, referred = dataset_entities(model, namespace, bootstrap_servers=bootstrap_servers,
                                          existing_topics=existing_topics, schema_lookup=schema_lookup, guids=guids)
    build = e.ml_model_build(build_crn(model.name, str(build_version)), model.name, build_version,
                             guid=next(guids), metadata=build_metadata(model) | (extra_metadata or {}),
                             create_time_ms=created_at_ms)
    process = e.ml_train_build_process(build, datasets, user=user, guid=next(guids), owner=model.owner,
                                       description=model.description)
    return entity_create_v2([process], [build, *datasets, *referred], user=user)
