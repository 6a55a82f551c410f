"""Apache Atlas lineage: entities for our topics and stream app, sent as Atlas hook notifications.

- ``typesystem``: Atlas's typedefs (``schemas/atlas/``) and a validator for entities;
- ``entities``: builders for kafka_topic, avro_schema and mlstream_stream_process entities;
- ``hook``: hook notifications, their envelope, compression and splitting, and reassembly;
- ``emitter``: the ``LineageEmitter`` protocol and ``KafkaHookEmitter`` (the ATLAS_HOOK topic).
"""
