"""mlstream: online machine learning on live Kafka streams.

The shared library behind the producers, the stream app and the Spark jobs:
settings, topics, Avro serialization through a Schema Registry, dead letters,
metrics and Atlas lineage, and the local services used by the demo and tests.
"""

__version__ = "0.1.0"
