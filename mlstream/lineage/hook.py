"""Atlas hook notifications: build them, wrap them, encode them for Kafka, and decode them back.

The wire format is Atlas's (org.apache.atlas.model.notification.*,
notification/AbstractNotification and AtlasNotificationMessageDeserializer):

* a notification (``{"type": "ENTITY_CREATE_V2", "user": ..., ...}``) travels inside an
  envelope (AtlasNotificationMessage) with the message version and metadata;
* an envelope whose JSON is over ``MAX_MESSAGE_BYTES`` is gzipped and base64-encoded into
  an AtlasNotificationStringMessage (``msgCompressionKind: GZIP`` and a ``msgId``);
* if the base64 text is still too big, it is cut into chunks ``msgSplitIdx`` 0..n-1 of
  ``msgSplitCount`` n that must be consumed in order.

>>> note = entity_delete_v2([{"typeName": "kafka_topic",
...                           "uniqueAttributes": {"qualifiedName": "old@primary"}}], user="mlstream")
>>> [value] = encode(envelope(note, created_at_ms=0, source_ip="10.0.0.1"))
>>> [received] = HookMessageAssembler().add(value)
>>> received["message"] == note
True
"""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import itertools
import json
import math
import socket
import time
import uuid
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

#: AbstractNotification.CURRENT_MESSAGE_VERSION; Atlas rejects messages with a newer version.
MESSAGE_VERSION = "1.0.0"

#: AtlasNotificationBaseMessage.MESSAGE_MAX_LENGTH_BYTES with Atlas's default
#: atlas.notification.message.max.length.bytes (1,000,000) minus 512 bytes for the envelope.
MAX_MESSAGE_BYTES = 1_000_000 - 512

Notification = dict[str, Any]
Envelope = dict[str, Any]

# AbstractNotification.getNextMessageId: "<uuid of this process>_<counter>".
_MESSAGE_ID_PREFIX = str(uuid.uuid4())
_message_counter = itertools.count()


class HookMessageError(ValueError):
    """A value read from the hook topic cannot be turned into a notification."""


# ----- notifications (HookNotification.*RequestV2) -----------------------------------------

def entity_create_v2(
    entities: Sequence[Mapping[str, Any]],
    referred_entities: Sequence[Mapping[str, Any]] = (),
    *,
    user: str,
) -> Notification:
    """ENTITY_CREATE_V2: create or update (matched by qualifiedName) ``entities``.

    ``referred_entities`` are entities the main ones refer to; Atlas creates or updates them
    too. They are keyed by guid in the message, as AtlasEntitiesWithExtInfo wants.
    """
    return {
        "type": "ENTITY_CREATE_V2",
        "user": user,
        "entities": {
            "entities": [dict(entity) for entity in entities],
            "referredEntities": _by_guid(referred_entities),
        },
    }


def entity_partial_update_v2(
    entity_id: Mapping[str, Any],
    entity: Mapping[str, Any],
    referred_entities: Sequence[Mapping[str, Any]] = (),
    *,
    user: str,
) -> Notification:
    """ENTITY_PARTIAL_UPDATE_V2: change only the attributes given in ``entity``.

    ``entity_id`` is ``{"typeName", "uniqueAttributes": {"qualifiedName": ...}}`` (see
    entities.object_id); Atlas looks the entity up by it and ignores ``entity``'s guid.
    """
    return {
        "type": "ENTITY_PARTIAL_UPDATE_V2",
        "user": user,
        "entityId": dict(entity_id),
        "entity": {"entity": dict(entity), "referredEntities": _by_guid(referred_entities)},
    }


def entity_delete_v2(entity_ids: Sequence[Mapping[str, Any]], *, user: str) -> Notification:
    """ENTITY_DELETE_V2: delete entities, each given by typeName + uniqueAttributes."""
    return {"type": "ENTITY_DELETE_V2", "user": user, "entities": [dict(e) for e in entity_ids]}


def _by_guid(entities: Sequence[Mapping[str, Any]]) -> dict[str, dict]:
    result: dict[str, dict] = {}
    for entity in entities:
        if entity["guid"] in result:
            raise ValueError(f"two referred entities have guid {entity['guid']}")
        result[entity["guid"]] = dict(entity)
    return result


# ----- envelope (AtlasNotificationMessage) ------------------------------------------------

def envelope(
    notification: Mapping[str, Any],
    *,
    created_by: str | None = None,
    source_ip: str | None = None,
    created_at_ms: int | None = None,
) -> Envelope:
    """Wrap a notification as Atlas's hooks do.

    ``created_by`` defaults to the notification's user, ``source_ip`` to this host's IPv4
    address (like Atlas, "" if it cannot be found), ``created_at_ms`` to now. A whole
    message has ``msgSplitIdx`` 1 and ``msgSplitCount`` 1 (the Java defaults); only chunks
    count from 0.
    """
    return {
        "version": {"version": MESSAGE_VERSION},
        "msgCompressionKind": "NONE",
        "msgSplitIdx": 1,
        "msgSplitCount": 1,
        "msgSourceIP": _host_address() if source_ip is None else source_ip,
        "msgCreatedBy": notification["user"] if created_by is None else created_by,
        "msgCreationTime": int(time.time() * 1000) if created_at_ms is None else created_at_ms,
        "spooled": False,
        "message": dict(notification),
    }


@functools.cache
def _host_address() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return ""


# ----- encoding (AbstractNotification.createNotificationMessages) -------------------------

def encode(envelope: Mapping[str, Any], max_bytes: int = MAX_MESSAGE_BYTES) -> list[bytes]:
    """The Kafka values for one envelope: itself, or compressed, or compressed and split.

    Send them in order, to one partition (same key): a consumer drops chunks whose
    chunk 0 it has not seen.
    """
    raw = _json_bytes(envelope)
    if len(raw) <= max_bytes:
        return [raw]
    msg_id = f"{_MESSAGE_ID_PREFIX}_{next(_message_counter)}"
    # gzip's header timestamp is zeroed (as Java's GZIPOutputStream writes it) so equal
    # envelopes encode to equal bytes.
    text = base64.b64encode(gzip.compress(raw, mtime=0)).decode("ascii")
    if len(text) <= max_bytes:
        return [_json_bytes(_string_message(text, msg_id, split_idx=1, split_count=1))]
    count = math.ceil(len(text) / max_bytes)
    return [_json_bytes(_string_message(text[i * max_bytes:(i + 1) * max_bytes], msg_id,
                                        split_idx=i, split_count=count))
            for i in range(count)]


def _string_message(text: str, msg_id: str, *, split_idx: int, split_count: int) -> dict[str, Any]:
    """An AtlasNotificationStringMessage: base64 gzip text of (part of) an envelope."""
    return {
        "version": {"version": MESSAGE_VERSION},
        "msgId": msg_id,
        "msgCompressionKind": "GZIP",
        "msgSplitIdx": split_idx,
        "msgSplitCount": split_count,
        "message": text,
    }


def _json_bytes(value: Mapping[str, Any]) -> bytes:
    # Compact like Jackson; NaN/Infinity are refused because Atlas's JSON parser refuses them.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


# ----- decoding (AtlasNotificationMessageDeserializer) ------------------------------------

class HookMessageAssembler:
    """Turns the values of a hook topic partition, in order, back into whole envelopes.

    ``add`` returns the envelopes a value completes: one for a whole message or a last
    chunk, none for other chunks. Values that cannot be used raise HookMessageError
    instead of being dropped with a log line as Atlas does: a chunk whose first chunk was
    not seen, a chunk index out of range, a missing chunk, a newer message version.

    Use one assembler per partition: chunks of one message are only ordered within one.
    """

    def __init__(self) -> None:
        self._chunks: dict[str, list[str | None]] = {}

    @property
    def pending_message_ids(self) -> list[str]:
        """msgIds of split messages whose last chunk has not arrived yet."""
        return list(self._chunks)

    def add(self, value: bytes | str) -> list[Envelope]:
        message = _parse(value)
        if message.get("msgSplitCount", 1) > 1:
            joined = self._add_chunk(message)
            if joined is None:
                return []
            # Split text is base64 of the envelope, gzipped first unless compression was off.
            message = _parse(_decode(joined, gzipped=message.get("msgCompressionKind") == "GZIP"))
        if message.get("msgCompressionKind") == "GZIP":
            message = _parse(_decode(message["message"], gzipped=True))
        if "message" not in message or not isinstance(message["message"], Mapping):
            raise HookMessageError(f"envelope without a notification: {sorted(message)}")
        return [message]

    def _add_chunk(self, chunk: Mapping[str, Any]) -> str | None:
        msg_id, index, count = chunk.get("msgId"), chunk["msgSplitIdx"], chunk["msgSplitCount"]
        if not msg_id:
            raise HookMessageError("split message without msgId")
        if index == 0:
            self._chunks[msg_id] = [None] * count
        elif msg_id not in self._chunks:
            raise HookMessageError(f"msgId {msg_id}: chunk {index + 1} of {count} arrived without chunk 1")
        chunks = self._chunks[msg_id]
        if not 0 <= index < len(chunks):
            raise HookMessageError(f"msgId {msg_id}: chunk index {index} out of range 0..{len(chunks) - 1}")
        chunks[index] = chunk["message"]
        if index != count - 1:
            return None
        del self._chunks[msg_id]
        missing = [i + 1 for i, text in enumerate(chunks) if text is None]
        if missing:
            raise HookMessageError(f"msgId {msg_id}: chunks {missing} of {count} are missing")
        return "".join(chunks)  # type: ignore[arg-type]  # no None left


def _decode(text: str, *, gzipped: bool) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
        return gzip.decompress(data) if gzipped else data
    except (binascii.Error, OSError, EOFError, zlib.error) as error:
        raise HookMessageError(f"cannot decode message text: {error}") from error


def _parse(value: bytes | str) -> dict[str, Any]:
    try:
        message = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HookMessageError(f"not JSON: {error}") from error
    if not isinstance(message, dict) or not isinstance(message.get("version"), Mapping):
        raise HookMessageError("not an Atlas notification envelope (no version)")
    version = message["version"].get("version", "")
    if _version_parts(version) > _version_parts(MESSAGE_VERSION):
        raise HookMessageError(f"message version {version} is newer than {MESSAGE_VERSION}")
    return message


def _version_parts(version: str) -> tuple[int, ...]:
    """MessageVersion.getVersionParts: "1.0.0" == "1"; trailing zeros do not count."""
    try:
        parts = [int(part) for part in version.split(".")]
    except ValueError as error:
        raise HookMessageError(f"invalid message version {version!r}") from error
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)
