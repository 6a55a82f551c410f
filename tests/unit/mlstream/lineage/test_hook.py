"""Hook notifications in Atlas's wire format: envelope, compression, splitting and reassembly."""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import random
import re
import string
import time

import pytest

from mlstream.lineage import entities as e
from mlstream.lineage.hook import (
    MAX_MESSAGE_BYTES,
    HookMessageAssembler,
    HookMessageError,
    encode,
    entity_create_v2,
    entity_delete_v2,
    entity_partial_update_v2,
    envelope,
)

ATLAS_LIMIT = 1_000_000  # atlas.notification.message.max.length.bytes; no value may exceed it


def topics_notification(count: int, description_chars: int = 0, seed: int = 0) -> dict:
    """ENTITY_CREATE_V2 for ``count`` topics; random descriptions make it hard to compress."""
    rng = random.Random(seed)
    guids = e.negative_guids()
    topics = []
    for i in range(count):
        topic = e.kafka_topic(f"topic-{i}", bootstrap_servers="localhost:9092", guid=next(guids))
        if description_chars:
            topic["attributes"]["description"] = "".join(rng.choices(string.ascii_letters + string.digits,
                                                                      k=description_chars))
        topics.append(topic)
    return entity_create_v2(topics, user="mlstream")


# ----- notifications --------------------------------------------------------------------

def test_create_notification_shape() -> None:
    topic = e.kafka_topic("t", bootstrap_servers="b:9092", guid="-1")
    process = e.stream_process("app", [topic], [], model_name="m", model_version="1", guid="-2")
    assert entity_create_v2([process], [topic], user="alice") == {
        "type": "ENTITY_CREATE_V2",
        "user": "alice",
        "entities": {"entities": [process], "referredEntities": {"-1": topic}},
    }


def test_partial_update_and_delete_shapes() -> None:
    process_id = e.object_id("mlstream_stream_process", "app@primary")
    change = {"typeName": "mlstream_stream_process", "attributes": {"modelVersion": "2"}}
    assert entity_partial_update_v2(process_id, change, user="alice") == {
        "type": "ENTITY_PARTIAL_UPDATE_V2", "user": "alice", "entityId": process_id,
        "entity": {"entity": change, "referredEntities": {}}}
    assert entity_delete_v2([process_id], user="alice") == {
        "type": "ENTITY_DELETE_V2", "user": "alice", "entities": [process_id]}


def test_referred_entities_need_distinct_guids() -> None:
    topic = e.kafka_topic("t", bootstrap_servers="b:9092", guid="-1")
    with pytest.raises(ValueError, match="guid -1"):
        entity_create_v2([], [topic, topic], user="alice")


# ----- envelope -------------------------------------------------------------------------

def test_envelope_fields() -> None:
    note = entity_delete_v2([e.object_id("kafka_topic", "t@primary")], user="alice")
    before = int(time.time() * 1000)
    wrapped = envelope(note)
    assert list(wrapped) == ["version", "msgCompressionKind", "msgSplitIdx", "msgSplitCount", "msgSourceIP",
                             "msgCreatedBy", "msgCreationTime", "spooled", "message"]
    assert wrapped["version"] == {"version": "1.0.0"}
    assert (wrapped["msgCompressionKind"], wrapped["msgSplitIdx"], wrapped["msgSplitCount"]) == ("NONE", 1, 1)
    assert isinstance(wrapped["msgSourceIP"], str)
    assert wrapped["msgCreatedBy"] == "alice"
    assert before <= wrapped["msgCreationTime"] <= int(time.time() * 1000)
    assert wrapped["spooled"] is False
    assert wrapped["message"] == note


def test_small_envelope_is_sent_as_compact_json() -> None:
    wrapped = envelope(topics_notification(2), source_ip="10.1.2.3", created_at_ms=5)
    [value] = encode(wrapped)
    assert value == json.dumps(wrapped, separators=(",", ":")).encode()
    assert "msgId" not in json.loads(value)


def test_nan_is_refused_because_atlas_cannot_parse_it() -> None:
    note = topics_notification(1)
    note["entities"]["entities"][0]["attributes"]["description"] = float("nan")
    with pytest.raises(ValueError):
        encode(envelope(note))


def test_size_limit_counts_utf8_bytes_not_characters() -> None:
    note = topics_notification(1)
    note["entities"]["entities"][0]["attributes"]["description"] = "ü" * 600  # 600 chars, 1200 bytes
    wrapped = envelope(note)
    [uncompressed] = encode(wrapped)
    limit = len(uncompressed) - 100
    assert len(uncompressed.decode()) < limit < len(uncompressed)
    [value] = encode(wrapped, max_bytes=limit)
    assert json.loads(value)["msgCompressionKind"] == "GZIP"


# ----- compression and splitting ------------------------------------------------------

def test_big_compressible_message_is_gzipped_whole() -> None:
    wrapped = envelope(topics_notification(10_000))
    raw_size = len(json.dumps(wrapped, separators=(",", ":")))
    [value] = encode(wrapped)
    compressed = json.loads(value)
    assert raw_size > ATLAS_LIMIT > len(value)
    assert set(compressed) == {"version", "msgId", "msgCompressionKind", "msgSplitIdx", "msgSplitCount", "message"}
    assert compressed["version"] == {"version": "1.0.0"}
    assert (compressed["msgCompressionKind"], compressed["msgSplitIdx"], compressed["msgSplitCount"]) == ("GZIP", 1, 1)
    assert re.fullmatch(r"[0-9a-f-]{36}_\d+", compressed["msgId"])
    # The layout Atlas's deserializer expects: base64 of the gzipped envelope JSON.
    assert json.loads(gzip.decompress(base64.b64decode(compressed["message"]))) == wrapped
    assert HookMessageAssembler().add(value) == [wrapped]


def test_big_incompressible_message_is_split_and_reassembled() -> None:
    wrapped = envelope(topics_notification(300, description_chars=10_000))  # ~3 MB of random text
    values = encode(wrapped)
    chunks = [json.loads(v) for v in values]
    assert len(json.dumps(wrapped)) > 2 * ATLAS_LIMIT
    assert len(values) >= 3 and all(len(v) <= ATLAS_LIMIT for v in values)
    assert [c["msgSplitIdx"] for c in chunks] == list(range(len(chunks)))
    assert {c["msgSplitCount"] for c in chunks} == {len(chunks)}
    assert len({c["msgId"] for c in chunks}) == 1
    assert {c["msgCompressionKind"] for c in chunks} == {"GZIP"}
    assert all(len(c["message"]) == MAX_MESSAGE_BYTES for c in chunks[:-1])
    joined = "".join(c["message"] for c in chunks)
    assert json.loads(gzip.decompress(base64.b64decode(joined))) == wrapped

    assembler = HookMessageAssembler()
    results = [assembler.add(v) for v in values]
    assert results == [[]] * (len(values) - 1) + [[wrapped]]
    assert assembler.pending_message_ids == []


def test_each_message_gets_its_own_msg_id() -> None:
    wrapped = envelope(topics_notification(10_000))
    assert json.loads(encode(wrapped)[0])["msgId"] != json.loads(encode(wrapped)[0])["msgId"]


# ----- reassembly -----------------------------------------------------------------------

def split_envelope(seed: int) -> tuple[dict, list[bytes]]:
    """An envelope and its values with a small size limit, so that it splits into several chunks."""
    wrapped = envelope(topics_notification(20, description_chars=1000, seed=seed))
    return wrapped, encode(wrapped, max_bytes=5000)


def test_interleaved_split_messages_are_kept_apart() -> None:
    (first, first_values), (second, second_values) = split_envelope(1), split_envelope(2)
    assert min(len(first_values), len(second_values)) > 2
    interleaved = [v for pair in itertools.zip_longest(first_values, second_values) for v in pair if v is not None]
    assembler = HookMessageAssembler()
    done = [m for value in interleaved for m in assembler.add(value)]
    assert len(done) == 2 and first in done and second in done


def test_uncompressed_split_message_as_java_sends_with_compression_off() -> None:
    wrapped = envelope(topics_notification(3))
    text = base64.b64encode(json.dumps(wrapped).encode()).decode()
    values = [json.dumps({"version": {"version": "1.0.0"}, "msgId": "m_1", "msgCompressionKind": "NONE",
                          "msgSplitIdx": i, "msgSplitCount": 2, "message": part})
              for i, part in enumerate((text[:100], text[100:]))]
    assembler = HookMessageAssembler()
    assert assembler.add(values[0]) == []
    assert assembler.add(values[1]) == [wrapped]


def test_chunk_without_its_first_chunk_is_an_error() -> None:
    _, values = split_envelope(1)
    with pytest.raises(HookMessageError, match="arrived without chunk 1"):
        HookMessageAssembler().add(values[1])


def test_missing_chunk_is_an_error() -> None:
    _, values = split_envelope(1)
    assembler = HookMessageAssembler()
    for value in values[:-2]:
        assembler.add(value)
    with pytest.raises(HookMessageError, match=rf"chunks \[{len(values) - 1}\] of {len(values)} are missing"):
        assembler.add(values[-1])


def test_newer_message_version_is_refused_older_accepted() -> None:
    wrapped = envelope(topics_notification(1))
    for older_or_same in ("0.9", "1.0", "1"):
        value = json.dumps({**wrapped, "version": {"version": older_or_same}})
        assert HookMessageAssembler().add(value)[0]["message"] == wrapped["message"]
    with pytest.raises(HookMessageError, match="newer"):
        HookMessageAssembler().add(json.dumps({**wrapped, "version": {"version": "1.0.1"}}))


CORRUPT_GZIP = json.dumps({"version": {"version": "1.0.0"}, "msgId": "m_1", "msgCompressionKind": "GZIP",
                           "msgSplitIdx": 1, "msgSplitCount": 1, "message": base64.b64encode(b"no gzip").decode()})


@pytest.mark.parametrize("value", [b"not json", b'{"message": {}}', b"[1, 2]", CORRUPT_GZIP])
def test_values_that_are_not_envelopes_are_errors(value: bytes) -> None:
    with pytest.raises(HookMessageError):
        HookMessageAssembler().add(value)
