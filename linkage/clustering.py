"""Entity clusters: every record belongs to one entity; a link joins two entities into one.

State lives in two mutable mappings (dicts in tests, Faust tables in the app): record
key -> entity id, and entity id -> its record keys and creation order. An entity id is
fixed when its first record arrives and never changes while the entity lives; when a
link joins two entities, the larger one (the older one on a tie) absorbs the other and
the absorbed id is announced in a MERGED update, so consumers can follow it.

>>> clusters = EntityClusters({}, {})
>>> [u["change"] for u in clusters.add("a", [])]
['CREATED']
>>> [u["change"] for u in clusters.add("b", ["a"])]
['EXTENDED']
>>> clusters.add("c", [])[0]["entity_id"] == clusters.entity_of("c")
True
>>> update, = clusters.add("d", ["c", "b"])
>>> update["change"], update["entity_id"] == clusters.entity_of("a"), len(update["record_keys"])
('MERGED', True, 4)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, MutableMapping


def new_entity_id(first_record_key: str) -> str:
    """A stable id from the entity's first record: the same feed replayed gives the same ids."""
    return "ent-" + hashlib.sha1(first_record_key.encode()).hexdigest()[:16]


class EntityClusters:
    def __init__(self, entity_of: MutableMapping[str, str], entities: MutableMapping[str, dict]):
        self._entity_of = entity_of
        self._entities = entities  # entity id -> {"records": [...], "created": seq}

    def entity_of(self, record_key: str) -> str | None:
        return self._entity_of.get(record_key)

    def records_of(self, entity_id: str) -> list[str]:
        entity = self._entities.get(entity_id)
        return list(entity["records"]) if entity else []

    def add(self, record_key: str, linked: Iterable[str]) -> list[dict]:
        """Place a new record with the records it links to; return the entity updates."""
        targets = []
        for other in linked:
            entity_id = self._entity_of.get(other)
            if entity_id is not None and entity_id not in targets:
                targets.append(entity_id)
        if not targets:
            entity_id = new_entity_id(record_key)
            self._entities[entity_id] = {"records": [record_key], "created": len(self._entity_of)}
            self._entity_of[record_key] = entity_id
            return [self._update(entity_id, "CREATED", record_key, [])]
        entities = {t: self._entities[t] for t in targets}
        survivor = min(targets, key=lambda t: (-len(entities[t]["records"]), entities[t]["created"]))
        records = list(entities[survivor]["records"])
        absorbed = [t for t in targets if t != survivor]
        for gone in absorbed:
            for moved in entities[gone]["records"]:
                self._entity_of[moved] = survivor
                records.append(moved)
            del self._entities[gone]
        records.append(record_key)
        self._entity_of[record_key] = survivor
        self._entities[survivor] = {"records": records, "created": entities[survivor]["created"]}
        return [self._update(survivor, "MERGED" if absorbed else "EXTENDED", record_key, absorbed)]

    def _update(self, entity_id: str, change: str, record_key: str, merged_from: list[str]) -> dict:
        return {"entity_id": entity_id, "change": change, "record_key": record_key,
                "merged_from": merged_from, "record_keys": list(self._entities[entity_id]["records"])}
