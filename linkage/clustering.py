"""Entity clusters: every record belongs to one entity; a link joins two entities into one.

An entity id is fixed when its first record arrives and never changes while the entity
lives; when a link joins two entities, the larger one (the older one on a tie) absorbs
the other and the absorbed id is announced in a MERGED update, so consumers can follow
it. The clusters are a pure function of the sequence of ``add`` calls: the linker keeps
each record's links with the record and rebuilds the clusters from them after a restart.

>>> clusters = EntityClusters()
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
from collections.abc import Iterable


def new_entity_id(first_record_key: str) -> str:
    """A stable id from the entity's first record: the same feed replayed gives the same ids."""
    return "ent-" + hashlib.sha1(first_record_key.encode()).hexdigest()[:16]


class EntityClusters:
    def __init__(self):
        self._entity_of: dict[str, str] = {}  # record key -> entity id
        self._entities: dict[str, dict] = {}  # entity id -> {"records": [...], "created": seq}

    def __len__(self) -> int:
        return len(self._entities)

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
        survivor = min(targets, key=lambda t: (-len(self._entities[t]["records"]), self._entities[t]["created"]))
        records = self._entities[survivor]["records"]
        absorbed = [t for t in targets if t != survivor]
        for gone in absorbed:
            for moved in self._entities.pop(gone)["records"]:
                self._entity_of[moved] = survivor
                records.append(moved)
        records.append(record_key)
        self._entity_of[record_key] = survivor
        return [self._update(survivor, "MERGED" if absorbed else "EXTENDED", record_key, absorbed)]

    def _update(self, entity_id: str, change: str, record_key: str, merged_from: list[str]) -> dict:
        return {"entity_id": entity_id, "change": change, "record_key": record_key,
                "merged_from": merged_from, "record_keys": list(self._entities[entity_id]["records"])}
