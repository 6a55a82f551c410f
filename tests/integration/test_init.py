"""``mlstream init`` against the real broker: creating topics that appeared meanwhile is no error."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient

from mlstream.kafka import clients
from mlstream.kafka.topics import TopicSpec, create_topics

pytestmark = pytest.mark.integration


class StaleMetadata:
    """The broker's admin client, whose topic list was read before another client created a topic.

    That is what a second ``create_topics`` right after a first one can see: the broker's
    metadata does not always show a topic created a moment ago.
    """

    def __init__(self, admin: AdminClient):
        self.admin = admin
        self.before = admin.list_topics(timeout=15)

    def list_topics(self, timeout: float):
        return self.before

    def create_topics(self, new_topics):
        return self.admin.create_topics(new_topics)


def test_a_topic_made_meanwhile_counts_as_existing(isolated):
    admin = clients.admin(isolated)
    spec = TopicSpec(isolated.topics.records, 2, "record")
    stale = StaleMetadata(admin)
    assert create_topics(admin, [spec], say=lambda _: None) == [spec.name]
    assert create_topics(stale, [spec], say=lambda _: None) == []  # not created by this call, and no error
    assert len(admin.list_topics(spec.name, timeout=15).topics[spec.name].partitions) == 2
