"""The linkage app's job on the data plane: link records, learn reviewers' verdicts; state per partition.

Run by :class:`mlstream.streaming.transactional_loop.TransactionalLoop`, one batch per
transaction, over the linkage records and the confirmed pairs (co-partitioned: one partition
each, see docs/data-plane.md for why). Per input partition a :class:`linkage.linker.Linker`
holds the records indexed and their entity clusters; its state goes to the state changelog in
the batch's transaction: each record linked once (``r:<record key>``: normalized fields,
blocking keys, the records it linked to), and after the batch the Fellegi-Sunter model with
every pair observed so far and the classifier with every verdict learned
(``m:<config name>``, ``m:<config name>/classifier``). A partition assigned is rebuilt from
those entries in changelog order, so the index, the entity ids and the model are exactly where
the last committed batch left them: no record linked twice or lost, no verdict learned twice.

The counters and the dashboard's figures (latency, merges, live quality against the config's
truth) are applied when the batch commits (:meth:`LinkageJob.committed`): ``/stats/`` never
shows a record whose link event a reader of the links topic cannot see yet, and a batch that
did not commit leaves no trace in them. (Taking them back instead, as the scorer does its
monitors, would mean copying the live quality's union-find of every record, per batch.)
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass

from apps.linker.dashboard import LinkageHistory
from linkage.config import LinkageConfig
from linkage.evaluation import LiveQuality
from linkage.keys import record_key, split_key
from linkage.linker import DUPLICATE_RECORD, Linker, LinkerState
from mlstream.kafka.dead_letters import PROCESSING_FAILED
from mlstream.kafka.serde import TopicCodec, epoch_ms
from mlstream.settings import Settings
from mlstream.streaming.dead_lettering import DeadLetters
from mlstream.streaming.transactional_loop import Output

log = logging.getLogger(__name__)

RECORD, MODEL = b"r:", b"m:"


@dataclass
class Linked:
    """A link event of the batch, kept for the figures until the batch commits."""

    event: dict
    entity_updates: list[dict]
    truth: str | None


class LinkageJob:
    def __init__(self, settings: Settings, app_id: str, config: LinkageConfig, config_version: str,
                 codecs: dict[str, TopicCodec], counters: dict, history: LinkageHistory,
                 live_quality: LiveQuality | None):
        self.topics = settings.topics
        self.config = config
        self.config_version = config_version
        self.codecs = codecs
        self.counters = counters
        self.history = history
        self.live_quality = live_quality
        #: what the batch in flight counted (the app's counters, the linkers' events): added when it commits
        self.batch_counters: Counter[str] = Counter()
        self.batch_linker_counters: Counter[str] = Counter()
        self.letters = DeadLetters(settings.topics.dead_letters, codecs["dead_letters"], app_id, self.batch_counters)
        #: partition -> its linker (the linkage topics have one partition: one linker sees every record)
        self.linkers: dict[int, Linker] = {}
        #: the linkers' event counts since this worker started, kept across rebalances
        self.linker_counters: Counter[str] = Counter()
        #: partition -> (pairs observed, fits, verdicts learned) as last written to the changelog
        self.saved: dict[int, tuple[int, int, int]] = {}
        self.uncommitted: list[Linked] = []

    # -- state -----------------------------------------------------------------------------------

    def assigned(self, partitions: dict[int, dict[bytes, bytes]]) -> None:
        for partition, entries in partitions.items():
            records, models = {}, {}
            for key, value in entries.items():  # in changelog order: the order the records were linked
                (records if key[:2] == RECORD else models)[key[2:].decode()] = json.loads(value)
            linker = Linker(self.config, self.config_version, LinkerState(records, models))
            linker.counters = self.batch_linker_counters
            self.linkers[partition] = linker
            self.saved[partition] = self.position(linker)
            log.info("linker of partition %d ready: config %s %s, %d records indexed, model fitted %d times",
                     partition, self.config.name, self.config_version, len(records), linker.model.n_fits)

    def revoked(self, partitions: list[int]) -> None:
        for partition in partitions:
            self.linkers.pop(partition, None)
            self.saved.pop(partition, None)

    @staticmethod
    def position(linker: Linker) -> tuple[int, int, int]:
        classifier = linker.classifier
        return linker.model.n_observed, linker.model.n_fits, classifier.n_learned if classifier else 0

    # -- batches ---------------------------------------------------------------------------------

    def prepare(self, messages: list, out: Output) -> list[dict | None]:
        """Decode the batch (in the loop's thread: decoding may wait for the registry); None where dead-lettered."""
        self.forget_batch()
        decoded = []
        for message in messages:
            is_record = message.topic() == self.topics.linkage_records
            self.batch_counters["records_in" if is_record else "confirmed_pairs_in"] += 1
            decoded.append(self.letters.decode(message, self.codecs["records" if is_record else "confirmed"], out))
        return decoded

    def process(self, messages: list, decoded: list[dict | None], out: Output) -> None:
        for message, value in zip(messages, decoded):  # in time order: a verdict after the records it names
            if value is None:
                continue
            linker = self.linkers[message.partition()]
            try:
                if message.topic() == self.topics.linkage_records:
                    self.link(linker, message, value, out)
                else:
                    self.confirm(linker, message, value, out)
            except Exception as err:  # a record the linker cannot take must not fail its batch again and again
                log.exception("linking %s[%s]@%s failed", message.topic(), message.partition(), message.offset())
                self.letters.send(message, PROCESSING_FAILED, f"{type(err).__name__}: {err}", out)
        for partition, linker in self.linkers.items():
            if (position := self.position(linker)) != self.saved[partition]:
                for name in linker.save_models():
                    out.state(partition, MODEL + name.encode(), json.dumps(linker.state.model[name]).encode())
                self.saved[partition] = position

    def committed(self) -> None:
        """The batch committed: its counts and link events go into the figures."""
        for name, count in self.batch_counters.items():
            self.counters[name] = self.counters.get(name, 0) + count
        self.linker_counters.update(self.batch_linker_counters)
        for linked in self.uncommitted:
            event = linked.event
            self.history.on_linked(event["processing_ms"], event["linked_at"] - event["event_time"])
            for update in linked.entity_updates:
                if update["merged_from"]:
                    self.history.on_merge(event["linked_at"], update["entity_id"], update["merged_from"],
                                          len(update["record_keys"]))
            if self.live_quality is not None:
                self.live_quality.add(event, linked.truth)
        self.forget_batch()

    def discard(self) -> None:
        """The batch did not commit: its counts go, as its outputs did (the linkers come back by the changelog)."""
        self.forget_batch()

    def forget_batch(self) -> None:
        self.batch_counters.clear()
        self.batch_linker_counters.clear()
        self.uncommitted = []

    def link(self, linker: Linker, message, record: dict, out: Output) -> None:
        arrived = time.perf_counter()
        config, codecs = self.config, self.codecs
        outcome = linker.process(record["source"], record["record_id"], record["fields"])
        if outcome.rejected == DUPLICATE_RECORD:
            return  # a feed sent twice: already linked
        if outcome.rejected is not None:
            self.letters.send(message, outcome.rejected, f"{outcome.rejected}: source {record['source']!r}, record "
                              f"{record['record_id']!r} (config {config.name} {self.config_version})", out)
            return
        key = record_key(record["source"], record["record_id"])
        out.state(message.partition(), RECORD + key.encode(), json.dumps(linker.state.records[key]).encode())
        link_event = outcome.event | {
            "input_topic": message.topic(),
            "input_partition": message.partition(),
            "input_offset": message.offset(),
            "event_time": epoch_ms(record["event_time"]),
            "processing_ms": 0.0,
        }
        updates = [codecs["entities"].encode(self.entity_update(u, link_event["linked_at"]))
                   for u in outcome.entity_updates]
        link_event["processing_ms"] = (time.perf_counter() - arrived) * 1000
        out.produce(self.topics.links, codecs["links"].encode(link_event), key=message.key())
        for update, encoded in zip(outcome.entity_updates, updates):
            out.produce(self.topics.entity_updates, encoded, key=update["entity_id"].encode())
        self.batch_counters["links_out"] += 1
        self.batch_counters["entity_updates_out"] += len(updates)
        truth = config.truth.entity(record["record_id"], record["fields"]) if self.live_quality else None
        self.uncommitted.append(Linked(link_event, outcome.entity_updates, truth))

    def confirm(self, linker: Linker, message, pair: dict, out: Output) -> None:
        """A reviewer's verdict on a pair, for the classifier (configs with a classifier key)."""
        rejected = linker.confirm(record_key(pair["source"], pair["record_id"]),
                                  record_key(pair["other_source"], pair["other_record_id"]), pair["match"])
        if rejected is not None:
            self.letters.send(message, rejected, f"{rejected}: confirmed pair {pair['source']}|{pair['record_id']} ~ "
                              f"{pair['other_source']}|{pair['other_record_id']} "
                              f"(config {self.config.name} {self.config_version})", out)

    def entity_update(self, update: dict, now_ms: int) -> dict:
        source, record_id = split_key(update["record_key"])
        return {
            "entity_id": update["entity_id"],
            "change": update["change"],
            "source": source,
            "record_id": record_id,
            "merged_from": update["merged_from"],
            "records": [dict(zip(("source", "record_id"), split_key(k))) for k in update["record_keys"]],
            "config_name": self.config.name,
            "updated_at": now_ms,
        }

    # -- figures ---------------------------------------------------------------------------------

    def records_indexed(self) -> int:
        return sum(len(linker.state.records) for linker in list(self.linkers.values()))

    def entities(self) -> int:
        return sum(len(linker.clusters) for linker in list(self.linkers.values()))

    def linker(self) -> Linker | None:
        """Partition 0's linker, the only one on the project's one-partition topics (None until assigned)."""
        return self.linkers.get(0)
