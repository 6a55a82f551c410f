"""The linkage app: link records arriving on live feeds, as they arrive (a Faust app of its own).

Run it with ``mlstream linkage app``; it runs beside the scorer under its own
application id. :class:`LinkerApp` builds it from its settings and its loaded config
(the command loads it, so a bad config is a clear error before any worker starts); building
it contacts nothing. One agent takes each record from the linkage records topic, hands it
to the Kafka-free :class:`linkage.linker.Linker`, and sends the link event and the
entity updates; ``/stats/`` shows the counters and latencies, ``/dashboard/`` draws
them live, with precision, recall and F1 when the config says how to tell a record's
true entity (``truth``: test data such as FEBRL). Those cover the records this worker
has linked since it started.

Co-partitioning. Records of one entity arrive under different keys (their own ids),
while the blocking index is keyed by blocking key: a record must meet every earlier
record sharing any of its keys. The linkage topics have one partition, so one worker
holds the whole index and sees every record in order. That is enough for the goal
(thousands of records/s on one worker); scaling out would repartition each record by
each blocking key through an internal topic, compare there, and gather the candidate
scores per record in a second stage.

State. Every record is kept once, with its blocking keys and the records it linked
to, in the changelog-backed table ``linkage-records``; the blocking index (key ->
records) and the entity clusters are rebuilt from that table when the worker starts
and updated in memory as records arrive, so a restart finds the same index and the
same entity ids. Each table write is a changelog message: keeping the index as a table
(one write per blocking key per record) halved throughput when measured, and keeping
the entities as one cost a sixth (2,190 against 2,640 records/s). The model is a table
too, written when it refits, and so is the optional classifier, which a second agent
teaches from reviewers' verdicts on the confirmed-pairs topic.
"""

from __future__ import annotations

import asyncio
import logging
import time

from apps.linker.dashboard import LinkageHistory
from apps.linker.lineage import emit_linkage_lineage
from apps.linker.settings import LinkageSettings
from apps.web import serve_dashboard
from linkage.config import LinkageConfig
from linkage.evaluation import LiveQuality
from linkage.keys import record_key, split_key
from linkage.linker import DUPLICATE_RECORD, Linker, LinkerState
from mlstream.kafka.dead_letters import PROCESSING_FAILED
from mlstream.kafka.serde import epoch_ms, registry_client
from mlstream.kafka.topics import topic_codec
from mlstream.settings import Settings
from mlstream.streaming.dead_lettering import DeadLetterer
from mlstream.streaming.faust_app import new_app, warm_up
from mlstream.streaming.skipped_records import SkippedRecords

log = logging.getLogger(__name__)


class LinkerApp:
    """The linkage app's Faust app (:attr:`app`) with its topics, tables and the linker they feed."""

    def __init__(self, settings: Settings, linkage: LinkageSettings, config: LinkageConfig, config_version: str):
        self.settings = settings
        self.linkage = linkage
        self.config = config
        self.config_version = config_version
        topics = settings.topics
        # One partition: see "Co-partitioning" above. Each record writes a changelog entry, a link
        # event and an entity update: a short linger lets them share produce requests.
        self.app = app = new_app(settings, linkage.app_id, linkage.web_port, 1, producer_linger_ms=5)
        # aiokafka and Faust log every send at debug level; building those records costs more than the send.
        for noisy in ("aiokafka", "faust"):
            logging.getLogger(noisy).setLevel(logging.INFO)

        self.records_topic = app.topic(topics.linkage_records)
        self.links_topic = app.topic(topics.links)
        self.entities_topic = app.topic(topics.entity_updates)
        self.dead_letters_topic = app.topic(topics.dead_letters)
        self.confirmed_topic = app.topic(topics.confirmed_pairs)
        self.state = LinkerState(
            records=self._table("linkage-records",
                                "record key -> normalized fields, blocking keys, links (index and entities)"),
            model=self._table("linkage-model", "config name -> Fellegi-Sunter parameters and vector counts; "
                              "<config name>/classifier -> the classifier"),
        )

        # The registry client and the codecs call the registry on first use.
        self.registry = registry_client(settings.schema_registry_url)
        self.codecs = {name: topic_codec(self.registry, settings, topic) for name, topic in (
            ("records", topics.linkage_records), ("links", topics.links), ("entities", topics.entity_updates),
            ("confirmed", topics.confirmed_pairs), ("dead_letters", topics.dead_letters))}
        self.counters = {"records_in": 0, "links_out": 0, "entity_updates_out": 0, "dead_letters": 0,
                         "skipped_offsets_read_back": 0, "confirmed_pairs_in": 0}
        self.dead_letterer = DeadLetterer(self.dead_letters_topic, self.codecs["dead_letters"], linkage.app_id,
                                          self.counters)
        self.skipped = SkippedRecords(settings.bootstrap_servers, {}, self.counters)
        self.history = LinkageHistory()
        self.live_quality = LiveQuality(config.mode) if config.truth else None
        self._linker: Linker | None = None

        app.agent(self.records_topic, name="link")(self.link)
        app.agent(self.confirmed_topic, name="learn_confirmed")(self.learn_confirmed)
        app.timer(interval=1.0, name="sample_dashboard")(self.sample_dashboard)
        app.task(self.get_ready)
        app.task(self.announce_lineage)
        serve_dashboard(app, "linkage", self.dashboard_data)

        @app.page("/stats/")
        async def stats(web, request):
            return web.json(self.stats())

    def _table(self, name: str, help_text: str):
        return self.app.Table(name, default=None, partitions=1, key_type=str, help=help_text)

    def linker(self) -> Linker:
        # Built on the first record, when the tables have been recovered from their changelogs.
        if self._linker is None:
            self._linker = Linker(self.config, self.config_version, self.state)
            self.skipped.last_processed.update({f"{self.settings.topics.linkage_records}:{partition}": offset
                                                for partition, offset in self._linker.last_offsets.items()})
            log.info("linker ready: config %s %s, %d records indexed, model fitted %d times",
                     self.config.name, self.config_version, len(self.state.records), self._linker.model.n_fits)
        return self._linker

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

    async def link(self, stream):
        async for message in self.skipped.messages(stream, prepare=self.linker):
            await self.link_one(message)

    async def link_one(self, message) -> None:
        arrived = time.perf_counter()
        counters, codecs, config = self.counters, self.codecs, self.config
        counters["records_in"] += 1
        self.skipped.processed(message)
        record = await self.dead_letterer.decode(codecs["records"], message)
        if record is None:
            return
        try:
            outcome = self.linker().process(record["source"], record["record_id"], record["fields"],
                                            (message.partition, message.offset))
            if outcome.rejected == DUPLICATE_RECORD:
                return  # a replay (at-least-once delivery, or a feed sent twice): already linked
            if outcome.rejected is not None:
                await self.dead_letterer.send(message, outcome.rejected,
                                              f"{outcome.rejected}: source {record['source']!r}, record "
                                              f"{record['record_id']!r} (config {config.name} {self.config_version})")
                return
            link_event = outcome.event | {
                "input_topic": message.topic,
                "input_partition": message.partition,
                "input_offset": message.offset,
                "event_time": epoch_ms(record["event_time"]),
                "processing_ms": 0.0,
            }
            updates = [codecs["entities"].encode(self.entity_update(u, link_event["linked_at"]))
                       for u in outcome.entity_updates]
            link_event["processing_ms"] = (time.perf_counter() - arrived) * 1000
            value = codecs["links"].encode(link_event)
        except Exception as err:  # a record the linker cannot take must not stop the stream
            log.exception("linking %s[%s]@%s failed", message.topic, message.partition, message.offset)
            await self.dead_letterer.send(message, PROCESSING_FAILED, f"{type(err).__name__}: {err}")
            return
        await self.links_topic.send(key=message.key, value=value)
        for update, encoded in zip(outcome.entity_updates, updates):
            await self.entities_topic.send(key=update["entity_id"].encode(), value=encoded)
        counters["links_out"] += 1
        counters["entity_updates_out"] += len(updates)
        self.history.on_linked(link_event["processing_ms"], link_event["linked_at"] - link_event["event_time"])
        for update in outcome.entity_updates:
            if update["merged_from"]:
                self.history.on_merge(link_event["linked_at"], update["entity_id"], update["merged_from"],
                                      len(update["record_keys"]))
        if self.live_quality is not None:
            self.live_quality.add(outcome.event, config.truth.entity(record["record_id"], record["fields"]))

    async def learn_confirmed(self, stream):
        """Reviewers' verdicts on pairs, for the classifier (configs with a classifier key)."""
        async for event in stream.events():
            message = event.message
            self.counters["confirmed_pairs_in"] += 1
            pair = await self.dead_letterer.decode(self.codecs["confirmed"], message)
            if pair is None:
                continue
            rejected = self.linker().confirm(record_key(pair["source"], pair["record_id"]),
                                             record_key(pair["other_source"], pair["other_record_id"]), pair["match"])
            if rejected is not None:
                await self.dead_letterer.send(message, rejected, f"{rejected}: confirmed pair {pair['source']}|"
                                              f"{pair['record_id']} ~ {pair['other_source']}|"
                                              f"{pair['other_record_id']} "
                                              f"(config {self.config.name} {self.config_version})")

    async def sample_dashboard(self) -> None:
        current = self._linker
        self.history.sample(time.time(), self.counters, current.counters if current else {},
                            entities=len(current.clusters) if current else 0,
                            model_fits=current.model.n_fits if current else 0,
                            quality=self.live_quality.figures() if self.live_quality else None)

    def classifier_figures(self) -> dict | None:
        current = self._linker
        if current is None or current.classifier is None:
            return None
        return {"learned": current.classifier.n_learned, "ready": current.classifier.ready,
                "prequential_accuracy": current.classifier.accuracy.get()}

    def dashboard_data(self) -> dict:
        config = self.config
        return self.history.snapshot(time.time_ns() // 1_000_000) | {
            "config": {"name": config.name, "version": self.config_version, "mode": config.mode,
                       "truth": config.truth is not None},
            "classifier": self.classifier_figures()}

    async def get_ready(self) -> None:
        await warm_up(self.codecs.values())

    async def announce_lineage(self) -> None:
        # Blocking (registry look-ups, a producer flush) but once, at start: run it off the loop.
        await asyncio.get_running_loop().run_in_executor(
            None, emit_linkage_lineage, self.settings, self.linkage.app_id, self.registry, self.config,
            self.config_version)

    def stats(self) -> dict:
        current = self._linker
        return {
            "app_id": self.linkage.app_id,
            "config": {"name": self.config.name, "version": self.config_version, "source": self.linkage.config},
            "counters": self.counters,
            "linker": dict(current.counters) if current else {},
            "classifier": self.classifier_figures(),
            "model": {"fits": current.model.n_fits, "prior_match": current.model.prior_match,
                      "pairs_observed": current.model.n_observed} if current else None,
            "records_indexed": len(self.state.records),
            "entities": len(current.clusters) if current else 0,
            "quality": self.live_quality.figures() if self.live_quality else None,
        } | self.history.latency()
