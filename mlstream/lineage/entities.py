"""Builders for the Atlas entities mlstream reports: Kafka topics, Avro schemas, the stream app.

Each builder returns an AtlasEntity as a JSON-ready dict (``typeName``, ``guid``,
``attributes``, ``relationshipAttributes``). qualifiedNames follow Atlas's own bridges, so
the entities merge with what Atlas's Kafka bridge or other hooks report for the same topics.

Entities created in one hook message get negative guids, and references between them
use those guids (Atlas replaces them with real ones on create):

>>> guids = negative_guids()
>>> records = kafka_topic("mlstream.Records", bootstrap_servers="localhost:9092", guid=next(guids))
>>> records["attributes"]["qualifiedName"], records["guid"]
('mlstream.records@primary', '-1')
>>> app = stream_process("mlstream-scorer", inputs=[records], outputs=[], model_name="logistic_regression",
...                      model_version="1", guid=next(guids))
>>> app["relationshipAttributes"]["inputs"]
[{'guid': '-1', 'typeName': 'kafka_topic', 'uniqueAttributes': {'qualifiedName': 'mlstream.records@primary'}, 'relationshipType': 'dataset_process_inputs'}]
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

#: Atlas's default ``atlas.metadata.namespace`` (formerly ``atlas.cluster.name``).
DEFAULT_NAMESPACE = "primary"

KAFKA_TOPIC = "kafka_topic"
AVRO_SCHEMA = "avro_schema"
STREAM_PROCESS = "mlstream_stream_process"

#: relationshipDef names (0010-base_model.json, 1070-kafka_model.json).
PROCESS_INPUTS = "dataset_process_inputs"
PROCESS_OUTPUTS = "process_dataset_outputs"
TOPIC_AVRO_SCHEMA = "kafka_topic_avroSchema"

Entity = dict[str, Any]
ObjectId = dict[str, Any]


def negative_guids() -> Iterator[str]:
    """"-1", "-2", ...: placeholder guids for the entities created in one message.

    Atlas only needs them to be negative and unique within the message; a fresh counter
    per message keeps messages reproducible (same input, same JSON).
    """
    return (f"-{n}" for n in itertools.count(1))


def kafka_topic_qualified_name(topic: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """``<topic lower-cased>@<namespace>`` (KafkaBridge.getTopicQualifiedName)."""
    return f"{topic.lower()}@{namespace}"


def avro_schema_qualified_name(subject: str, version: int, namespace: str = DEFAULT_NAMESPACE) -> str:
    """``<subject lower-cased>@v<version>@<namespace>`` (KafkaBridge.getSchemaQualifiedName).

    The bridge's subjects are ``<topic>-value`` (TopicNameStrategy); it lower-cases them.
    """
    return f"{subject.lower()}@v{version}@{namespace}"


def stream_process_qualified_name(app_id: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """``<application id>@<namespace>``: one process entity per stream app, whatever model it runs.

    The model name and version are attributes, so a model change or rollback updates the
    process (Atlas keeps the old values in the entity's audit) instead of leaving stale
    processes in the lineage graph.
    """
    return f"{app_id}@{namespace}"


def object_id(type_name: str, qualified_name: str) -> ObjectId:
    """A reference to an entity Atlas already has (or will get from another message).

    Used for ENTITY_PARTIAL_UPDATE_V2's ``entityId`` and ENTITY_DELETE_V2, which Atlas
    resolves by typeName + uniqueAttributes.
    """
    return {"typeName": type_name, "uniqueAttributes": {"qualifiedName": qualified_name}}


def reference_to(target: Mapping[str, Any], relationship_type: str | None = None) -> ObjectId:
    """A reference to ``target``, an entity built here or an :func:`object_id`.

    Like Atlas's AtlasTypeUtil.getAtlasRelatedObjectId: guid (if any), typeName and the
    qualifiedName, plus the relationshipType when used in relationshipAttributes.
    """
    if "attributes" in target:
        reference: ObjectId = {"guid": target["guid"], "typeName": target["typeName"],
                               "uniqueAttributes": {"qualifiedName": target["attributes"]["qualifiedName"]}}
    else:
        reference = {key: target[key] for key in ("guid", "typeName", "uniqueAttributes") if key in target}
    if relationship_type is not None:
        reference["relationshipType"] = relationship_type
    return reference


def kafka_topic(
    topic: str,
    namespace: str = DEFAULT_NAMESPACE,
    *,
    bootstrap_servers: str,
    guid: str,
    partition_count: int | None = None,
    replication_factor: int | None = None,
    avro_schemas: Sequence[Mapping[str, Any]] = (),
) -> Entity:
    """A ``kafka_topic`` entity.

    ``uri`` is the bootstrap servers, as Atlas's Storm hook sets it for the topics a
    streaming job reads (Atlas's Kafka bridge puts the topic name there instead; both are
    accepted, the topic is identified by its qualifiedName). ``avro_schemas`` (entities
    or object ids of ``avro_schema``) link through the ``avroSchema`` relationship
    attribute; the plain attribute of that name was removed by Atlas's patch 013.
    """
    attributes: dict[str, Any] = {
        "qualifiedName": kafka_topic_qualified_name(topic, namespace),
        "name": topic,
        "topic": topic,
        "uri": bootstrap_servers,
    }
    if partition_count is not None:
        attributes["partitionCount"] = partition_count
    if replication_factor is not None:
        attributes["replicationFactor"] = replication_factor
    entity: Entity = {"typeName": KAFKA_TOPIC, "guid": guid, "attributes": attributes}
    if avro_schemas:
        entity["relationshipAttributes"] = {
            "avroSchema": [reference_to(schema, TOPIC_AVRO_SCHEMA) for schema in avro_schemas]}
    return entity


def avro_schema(
    subject: str,
    version: int,
    schema_json: str,
    namespace: str = DEFAULT_NAMESPACE,
    *,
    guid: str,
) -> Entity:
    """An ``avro_schema`` entity for one registered version of a record schema.

    Attributes as Atlas's Kafka bridge sets them: ``name`` is ``<record name>(v<version>)``,
    ``type`` the Avro type in upper case (the bridge writes Java's Schema.Type), ``namespace``
    the record's Avro namespace ("" for the null namespace) and ``versionId`` the registry
    version; ``avro_notation`` holds the schema text itself.

    >>> avro_schema("mlstream.records-value", 3, '{"type": "record", "name": "x.y.Record", "fields": []}',
    ...             guid="-1")["attributes"]["namespace"]
    'x.y'
    """
    schema = json.loads(schema_json)
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ValueError(f"{subject} v{version}: avro_schema describes record schemas, got {schema_json[:80]!r}")
    # A dotted name carries its namespace and overrides the "namespace" field (Avro spec).
    avro_namespace, _, name = schema["name"].rpartition(".")
    if not avro_namespace:
        avro_namespace = schema.get("namespace") or ""
    return {
        "typeName": AVRO_SCHEMA,
        "guid": guid,
        "attributes": {
            "qualifiedName": avro_schema_qualified_name(subject, version, namespace),
            "name": f"{name}(v{version})",
            "type": schema["type"].upper(),
            "namespace": avro_namespace,
            "versionId": version,
            "avro_notation": schema_json,
        },
    }


def stream_process(
    app_id: str,
    inputs: Sequence[Mapping[str, Any]],
    outputs: Sequence[Mapping[str, Any]],
    namespace: str = DEFAULT_NAMESPACE,
    *,
    model_name: str,
    model_version: str | int,
    guid: str,
    started_at_ms: int | None = None,
    description: str | None = None,
) -> Entity:
    """An ``mlstream_stream_process``: the scoring app, reading ``inputs`` and writing ``outputs``.

    ``inputs`` and ``outputs`` are DataSet entities of the same message (referenced by
    their negative guid) or :func:`object_id` references to existing ones. They go in
    relationshipAttributes with the relationship types of Atlas's lineage, as Atlas's own
    hooks (Hive, Storm) set them.
    """
    attributes: dict[str, Any] = {
        "qualifiedName": stream_process_qualified_name(app_id, namespace),
        "name": app_id,
        "applicationId": app_id,
        "modelName": model_name,
        "modelVersion": str(model_version),
    }
    if started_at_ms is not None:
        attributes["startedAt"] = started_at_ms
    if description is not None:
        attributes["description"] = description
    return {
        "typeName": STREAM_PROCESS,
        "guid": guid,
        "attributes": attributes,
        "relationshipAttributes": {
            "inputs": [reference_to(dataset, PROCESS_INPUTS) for dataset in inputs],
            "outputs": [reference_to(dataset, PROCESS_OUTPUTS) for dataset in outputs],
        },
    }


# ----- datasets a model is trained on: Hive, Spark, S3 --------------------------------------

HIVE_TABLE = "hive_table"
SPARK_TABLE = "spark_table"
S3_BUCKET = "aws_s3_v2_bucket"
S3_DIRECTORY = "aws_s3_v2_directory"
S3_CONTAINED = "aws_s3_v2_container_contained"


def hive_table_qualified_name(db_table: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """``<db>.<table>@<namespace>`` lower-cased (HiveMetaStoreBridge.getTableQualifiedName)."""
    return f"{db_table}@{namespace}".lower()


def hive_table(qualified_name: str, *, guid: str) -> Entity:
    """A ``hive_table`` known by its qualifiedName ``<db>.<table>@<namespace>`` (as in CML's lineage.yml).

    Only the name attributes are set: Atlas's Hive hook owns the rest (columns, db, storage)
    and a create from us merges into its entity by qualifiedName.
    """
    db_table, _, _ = qualified_name.rpartition("@")
    return {"typeName": HIVE_TABLE, "guid": guid,
            "attributes": {"qualifiedName": qualified_name.lower(), "name": db_table.split(".", 1)[1].lower()}}


HIVE_DB = "hive_db"
HIVE_COLUMN = "hive_column"
HIVE_STORAGEDESC = "hive_storagedesc"
HIVE_PROCESS = "hive_process"
HIVE_COLUMN_LINEAGE = "hive_column_lineage"


def metastore_table(db_table: str, namespace: str = DEFAULT_NAMESPACE, *, guids: Iterator[str],
                    columns: Sequence[tuple[str, str, str]], partition_keys: Sequence[str] = (), location: str = "",
                    view_text: str = "", comment: str = "") -> list[Entity]:
    """A table of a Hive metastore as Atlas's Hive hook reports it: its ``hive_db``, the ``hive_table``,
    a ``hive_column`` per (name, type, comment) and, with a location, its ``hive_storagedesc``; table first.

    qualifiedNames are HiveMetaStoreBridge's: ``db@ns``, ``db.table@ns``, ``db.table.column@ns``,
    ``db.table@ns_storage``. A view (``view_text``) is tableType VIRTUAL_VIEW, as Hive has it.

    >>> made = metastore_table("Sales.Orders", "cm", guids=negative_guids(), columns=[("id", "string", "order id"),
    ...                        ("day", "date", "")], partition_keys=["day"], location="s3a://lake/sales.db/orders")
    >>> [(e["typeName"], e["attributes"]["qualifiedName"]) for e in made][:4]
    [('hive_table', 'sales.orders@cm'), ('hive_db', 'sales@cm'), ('hive_column', 'sales.orders.id@cm'), ('hive_column', 'sales.orders.day@cm')]
    >>> [r["uniqueAttributes"]["qualifiedName"] for r in made[0]["relationshipAttributes"]["partitionKeys"]]
    ['sales.orders.day@cm']
    """
    db_table = db_table.lower()
    db, _, table = db_table.partition(".")
    qualified = f"{db_table}@{namespace}"
    table_entity: Entity = {"typeName": HIVE_TABLE, "guid": next(guids), "attributes": {
        "qualifiedName": qualified, "name": table, "tableType": "VIRTUAL_VIEW" if view_text else "MANAGED_TABLE",
        "temporary": False, **({"comment": comment} if comment else {}),
        **({"viewOriginalText": view_text, "viewExpandedText": view_text} if view_text else {})}}
    database = {"typeName": HIVE_DB, "guid": next(guids),
                "attributes": {"qualifiedName": f"{db}@{namespace}", "name": db, "clusterName": namespace}}
    made = [table_entity, database]
    keys, plain = [], []
    for position, (name, type_name, column_comment) in enumerate(columns):
        column = {"typeName": HIVE_COLUMN, "guid": next(guids), "attributes": {
            "qualifiedName": f"{db_table}.{name.lower()}@{namespace}", "name": name.lower(), "type": type_name,
            "position": position, **({"comment": column_comment} if column_comment else {})}}
        made.append(column)
        (keys if name in partition_keys else plain).append(column)
    relations: dict[str, Any] = {"db": reference_to(database, "hive_table_db"),
                                 "columns": [reference_to(c, "hive_table_columns") for c in plain],
                                 "partitionKeys": [reference_to(c, "hive_table_partitionkeys") for c in keys]}
    if location:
        storage = {"typeName": HIVE_STORAGEDESC, "guid": next(guids), "attributes": {
            "qualifiedName": f"{qualified}_storage", "location": location, "compressed": False}}
        made.append(storage)
        relations["sd"] = reference_to(storage, "hive_table_storagedesc")
    table_entity["relationshipAttributes"] = relations
    return made


def hive_process(qualified_name: str, inputs: Sequence[Mapping[str, Any]], outputs: Sequence[Mapping[str, Any]], *,
                 guid: str, user: str, operation: str, query_text: str, time_ms: int) -> Entity:
    """A ``hive_process``: a statement that made ``outputs`` from ``inputs`` (every attribute Atlas requires)."""
    return {"typeName": HIVE_PROCESS, "guid": guid, "attributes": {
        "qualifiedName": qualified_name, "name": qualified_name, "startTime": time_ms, "endTime": time_ms,
        "userName": user, "operationType": operation, "queryText": query_text, "queryPlan": "Not Supported",
        "queryId": qualified_name}, "relationshipAttributes": {
        "inputs": [reference_to(d, PROCESS_INPUTS) for d in inputs],
        "outputs": [reference_to(d, PROCESS_OUTPUTS) for d in outputs]}}


def hive_column_lineage(process: Mapping[str, Any], inputs: Sequence[Mapping[str, Any]], column: Mapping[str, Any],
                        expression: str, *, guid: str) -> Entity:
    """How one column of a process's output came about: ``hive_column_lineage`` (SIMPLE: copied as is)."""
    name = column["attributes"]["qualifiedName"]
    return {"typeName": HIVE_COLUMN_LINEAGE, "guid": guid, "attributes": {
        "qualifiedName": f"{process['attributes']['qualifiedName']}:{name}", "name": name,
        "depenendencyType": "SIMPLE", "expression": expression}, "relationshipAttributes": {
        "query": reference_to(process, "hive_process_column_lineage"),
        "inputs": [reference_to(d, PROCESS_INPUTS) for d in inputs],
        "outputs": [reference_to(column, PROCESS_OUTPUTS)]}}


def spark_table_qualified_name(db_table: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """``<db>.<table>@<namespace>`` lower-cased: the Hive bridge's form, used for spark_table too.

    The Spark Atlas Connector itself names a spark_table ``<catalog prefix><db>.<table>``, the
    prefix being the metastore URI, its JDBC URL or the Spark application id: something known
    only inside the Spark session, not to a lineage file. Spark tables in a Hive metastore are
    reported by the connector as hive_table, which is what ``hive_tables`` is for.
    """
    return f"{db_table}@{namespace}".lower()


def spark_table(db_table: str, namespace: str = DEFAULT_NAMESPACE, *, guid: str, view: bool = False) -> Entity:
    """A ``spark_table``; a view is a spark_table whose tableType is VIEW (Spark's CatalogTableType)."""
    return {"typeName": SPARK_TABLE, "guid": guid, "attributes": {
        "qualifiedName": spark_table_qualified_name(db_table, namespace),
        "name": db_table.split(".", 1)[1].lower(),
        "tableType": "VIEW" if view else "MANAGED"}}


def s3_path_entities(path: str, namespace: str = DEFAULT_NAMESPACE, *, guids: Iterator[str]) -> list[Entity]:
    """The ``aws_s3_v2_bucket`` and ``aws_s3_v2_directory`` entities of an ``s3a://`` path, bucket first.

    Named as Atlas's AtlasPathExtractorUtil.addS3PathEntityV2 names them, keeping the path's
    scheme: bucket ``<scheme>://<bucket>@<ns>``, directory ``<scheme>://<bucket>/<prefix>/@<ns>``
    with objectPrefix ``/<prefix>/``, each directory contained in its parent. The path's last
    entity is the dataset itself.

    >>> [e["attributes"]["qualifiedName"] for e in s3_path_entities("s3://data/churn/2024", guids=negative_guids())]
    ['s3://data@primary', 's3://data/churn/@primary', 's3://data/churn/2024/@primary']
    """
    scheme, _, rest = path.partition("://")
    scheme = scheme.lower()
    if scheme not in ("s3", "s3a") or not rest:
        raise ValueError(f"{path!r} is not an s3:// or s3a:// path")
    bucket, _, key = rest.partition("/")
    bucket_url = f"{scheme}://{bucket.lower()}"
    parent = {"typeName": S3_BUCKET, "guid": next(guids),
              "attributes": {"qualifiedName": f"{bucket_url}@{namespace}", "name": bucket}}
    result, prefix = [parent], "/"
    for part in [p for p in key.split("/") if p]:
        prefix += part + "/"
        directory = {"typeName": S3_DIRECTORY, "guid": next(guids), "attributes": {
            "qualifiedName": f"{bucket_url}{prefix}@{namespace}", "name": part, "objectPrefix": prefix,
            "bucketName": bucket}, "relationshipAttributes": {"container": reference_to(parent, S3_CONTAINED)}}
        result.append(directory)
        parent = directory
    return result


# ----- CML's model types (4010-ml_model.json) ------------------------------------------------

ML_MODEL_BUILD = "ml_model_build"
ML_TRAIN_BUILD_PROCESS = "ml_model_train_build_process"
ML_MODEL_DEPLOYMENT = "ml_model_deployment"
ML_DEPLOY_PROCESS = "ml_model_deploy_process"
BUILD_DEPLOYMENT = "ml_build_deployment"


def ml_model_build(build_crn: str, model_name: str, version: int, *, guid: str,
                   metadata: Mapping[str, str] | None = None, create_time_ms: int | None = None) -> Entity:
    """An ``ml_model_build``: one trained build of a model. Its qualifiedName is the build's CRN.

    CML names its builds by CRN as well; the CRN is unique without a namespace suffix.
    """
    attributes: dict[str, Any] = {"qualifiedName": build_crn, "name": f"{model_name} build {version}",
                                  "version": int(version)}
    if metadata:
        attributes["metadata"] = {str(k): str(v) for k, v in metadata.items()}
    if create_time_ms is not None:
        attributes["createTime"] = create_time_ms
    return {"typeName": ML_MODEL_BUILD, "guid": guid, "attributes": attributes}


def ml_train_build_process(build: Mapping[str, Any], inputs: Sequence[Mapping[str, Any]], *, user: str,
                           guid: str, owner: str | None = None, description: str | None = None) -> Entity:
    """The ``ml_model_train_build_process`` from training datasets to a build: ``<build crn>/train``."""
    attributes: dict[str, Any] = {"qualifiedName": f"{build['attributes']['qualifiedName']}/train",
                                  "name": f"train {build['attributes']['name']}", "userName": user}
    if owner:
        attributes["owner"] = owner
    if description:
        attributes["description"] = description
    return {"typeName": ML_TRAIN_BUILD_PROCESS, "guid": guid, "attributes": attributes,
            "relationshipAttributes": {"inputs": [reference_to(d, PROCESS_INPUTS) for d in inputs],
                                       "outputs": [reference_to(build, PROCESS_OUTPUTS)]}}


# ----- feeds: a source dataset played into topics (mlstream_typedefs.json) -------------------

SOURCE_DATASET = "mlstream_source_dataset"
FEED_PROCESS = "mlstream_feed_process"


def source_dataset(source: str, namespace: str = DEFAULT_NAMESPACE, *, guid: str, seed: int | None = None) -> Entity:
    """A ``mlstream_source_dataset``: ``<source>@<namespace>``, e.g. ``river/phishing@primary``."""
    attributes: dict[str, Any] = {"qualifiedName": f"{source}@{namespace}", "name": source, "source": source}
    if seed is not None:
        attributes["seed"] = seed
    return {"typeName": SOURCE_DATASET, "guid": guid, "attributes": attributes}


def feed_process(source: Mapping[str, Any], outputs: Sequence[Mapping[str, Any]], records_topic: str,
                 namespace: str = DEFAULT_NAMESPACE, *, guid: str, started_at_ms: int | None = None,
                 records_sent: int | None = None) -> Entity:
    """A ``mlstream_feed_process``: ``<source>-><records topic>@<namespace>``, one per source and topic."""
    name = f"{source['attributes']['source']}->{records_topic}"
    attributes: dict[str, Any] = {"qualifiedName": f"{name}@{namespace}", "name": name}
    if started_at_ms is not None:
        attributes["startedAt"] = started_at_ms
    if records_sent is not None:
        attributes["recordsSent"] = records_sent
    return {"typeName": FEED_PROCESS, "guid": guid, "attributes": attributes, "relationshipAttributes": {
        "inputs": [reference_to(source, PROCESS_INPUTS)],
        "outputs": [reference_to(dataset, PROCESS_OUTPUTS) for dataset in outputs]}}
