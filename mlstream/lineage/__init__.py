"""Apache Atlas lineage for every dataset, model and process mlstream touches.

- ``typesystem``: Atlas's typedefs (``mlstream/schemas/atlas/``) and a validator for entities;
- ``entities``: builders for Atlas's entity types (kafka_topic, avro_schema, hive_table,
  spark_table, aws_s3_v2_*, CML's ml_*) and ours (stream process, feed, source dataset);
- ``hook``: hook notifications, their envelope, compression and splitting, and reassembly;
- ``emitter``: the ``LineageEmitter`` protocol, ``KafkaHookEmitter`` (ATLAS_HOOK) and
  ``AtlasRestEmitter`` (REST v2 with the apache-atlas client); ``spool``: keep what cannot be sent;
- ``config``: lineage YAML (CML's lineage.yml plus mlstream's keys) and its validation;
- ``model_lineage``: a model's YAML entry as datasets -> train process -> ml_model_build;
- ``feeds``, ``lifecycle``: feed lineage; deploy, redeploy, roll back, retire.

The rest is not the library's: the embedded lineage service (SQLite graph, Atlas REST v2
subset) is a process of its own, ``apps/lineage_service``; ``mlstream lineage show | who``
over the Atlas client is ``tools/lineage_views.py``, and the demo's lineage ``tools/lineage_demo.py``.
"""
