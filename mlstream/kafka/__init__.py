"""Kafka plumbing: Avro serde through the registry, the topics and their schemas, offset-range reads, producing, dead letters."""
