"""The secure-dataset job on the data plane: a raw dataset topic in, ``<topic>.secure.<team>`` out, exactly once.

Run by :class:`mlstream.streaming.transactional_loop.TransactionalLoop`, one batch per
transaction (:mod:`apps.secure_datasets.app` hosts it in a Faust worker). For each team the
hive-type policies (``security.hive``) grant ``select`` on the raw topic it writes the team's
view of each record (:mod:`mlstream.security.secure_datasets`): its columns, masked, the rows
its filter keeps, each with the header ``mlstream.policy`` naming the policy version that
produced it, to the record's partition of the team's topic. The secure records, the dead
letters, the alerts and the batch's audit records are all written in the batch's transaction
with its input offsets: a worker killed at any point leaves nothing a ``read_committed``
reader sees twice or never.

* **Policy changes** take effect without a restart: before a batch (``prepare``, at most every
  ``reload_s``) the stored ``security.hive``, ``security.directory`` and the raw topic's schema
  are looked up; a new version's views replace the old ones from that batch on. (An idle raw
  topic has nothing to mask: a policy that cannot be applied is alerted on with the first
  batch after it was stored.)
* **A policy that cannot be applied** (a column the dataset does not have, a filter that cannot
  be evaluated on a record, team members with different ``${{USER.attr}}`` values) stops that
  team's topic (fail closed) and raises an alert on the alerts topic; if an earlier version of
  that team's view was good, that one keeps being enforced. The other teams go on.
* **A record missing a masked field** is dead-lettered with the reason, never passed on.
* **State**: which versions each team's view is built from, or why its topic is stopped, and
  the versions last looked at, in the compacted state topic (every owned partition holds the
  same entries, written in the transaction of the batch that changed them). A restarted
  worker rebuilds the views in force from those versions, so a stopped team stays stopped and
  a kept earlier version stays kept across a restart, as without one.
* **Figures** (``counters``, records per secure topic, rows filtered per team) count a batch
  when it commits (:meth:`SecureDatasetJob.committed`): they never show what a reader cannot see.
* **Lineage**: each team view it starts writing is an Atlas process from the raw topic to the
  team's topic, naming the policy version (:mod:`apps.secure_datasets.lineage`).
* **Audit**: per team and batch, a Ranger-format record on the audit topic says which policy
  version masked which fields and kept which rows, and how many records went to which topic.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import Schema

from apps.secure_datasets.lineage import emit_secure_dataset_lineage
from mlstream.config_store import ConfigStore
from mlstream.kafka import clients
from mlstream.kafka.serde import TopicCodec, value_subject
from mlstream.security import audit, configs, expressions
from mlstream.security.audit_topic import SCHEMA_NAME as AUDIT_SCHEMA
from mlstream.security.audit_topic import audit_topic
from mlstream.security.secure_datasets import POLICY_HEADER, RecordRefused, TeamView, ViewError, team_views
from mlstream.settings import Settings
from mlstream.streaming.dead_lettering import DeadLetters
from mlstream.streaming.transactional_loop import Output

log = logging.getLogger(__name__)

#: The dead-letter reason of a record missing a field the team's policy masks.
MISSING_MASKED_FIELD = "MISSING_MASKED_FIELD"
#: The alert type of a team whose secure topic stopped: its policy cannot be applied.
POLICY_NOT_APPLIED = "POLICY_NOT_APPLIED"
#: State keys: the versions last looked at, and per team what is in force.
LOADED, TEAM = b"loaded", b"team:"


@dataclass
class Running:
    view: TeamView
    codec: TopicCodec
    versions: tuple[int, int, int]  # (directory, security.hive, raw schema) it was built from


@dataclass
class Policies:
    """What is enforced: the versions last looked at, each team's view in force, the teams stopped and why."""

    loaded: tuple[int, int | None, int] | None = None
    running: dict[str, Running] = field(default_factory=dict)
    halted: dict[str, str] = field(default_factory=dict)

    def copy(self) -> "Policies":
        return Policies(self.loaded, dict(self.running), dict(self.halted))

    def state(self) -> dict[bytes, bytes]:
        """These policies as state entries (key -> value), the same on every partition.

        >>> Policies((1, 2, 3), {}, {"churn": "no security.hive is stored"}).state()
        {b'loaded': b'[1, 2, 3]', b'team:churn': b'{"versions": null, "halted": "no security.hive is stored"}'}
        """
        entries = {LOADED: json.dumps(list(self.loaded)).encode()} if self.loaded else {}
        for team in sorted(set(self.running) | set(self.halted)):
            running = self.running.get(team)
            entries[TEAM + team.encode()] = json.dumps({"versions": list(running.versions) if running else None,
                                                        "halted": self.halted.get(team)}).encode()
        return entries


class SecureDatasetJob:
    """The job :class:`~mlstream.streaming.transactional_loop.TransactionalLoop` runs over one raw topic."""

    def __init__(self, settings: Settings, raw_topic: str, store: ConfigStore, name: str, reload_s: float = 5.0,
                 say: Callable[[str], None] = log.info):
        self.settings, self.raw_topic, self.store, self.name, self.reload_s, self.say = \
            settings, raw_topic, store, name, reload_s, say
        self.registry = clients.registry_client(settings, retries=False)
        topics = settings.topics
        self.decoder = TopicCodec.decoder(self.registry, raw_topic)
        self.alerts = TopicCodec.for_topic(self.registry, topics.alerts, "alert")
        self.audit = TopicCodec.for_topic(self.registry, audit_topic(settings), AUDIT_SCHEMA)
        dead_letters = TopicCodec.for_topic(self.registry, topics.dead_letters, "dead_letter")
        self.user = dict(settings.kafka_security).get("sasl.username") or "ANONYMOUS"
        #: the figures, counted when a batch commits
        self.counters = {"records_in": 0, "records_out": 0, "rows_filtered": 0, "dead_letters": 0, "alerts": 0}
        self.per_topic: Counter[str] = Counter()  # secure topic -> records written
        self.filtered_per_team: Counter[str] = Counter()  # team -> rows its filter left out
        #: the batch in flight's figures
        self.batch_counters: Counter[str] = Counter()
        self.batch_per_topic: Counter[str] = Counter()
        self.batch_filtered: Counter[str] = Counter()
        self.letters = DeadLetters(topics.dead_letters, dead_letters, name, self.batch_counters)
        self.policies = Policies()  # as of the last commit
        self.pending: Policies | None = None  # the batch in flight's
        self.restored: dict[bytes, bytes] | None = None  # state to rebuild the policies from, before the next batch
        self.saved: dict[int, dict[bytes, bytes]] = {}  # partition -> its state entries as committed
        self.next_reload = 0.0

    def codecs(self) -> list[TopicCodec]:
        return [self.decoder, self.alerts, self.audit, self.letters.codec]

    # -- state -----------------------------------------------------------------------------------

    def assigned(self, partitions: dict[int, dict[bytes, bytes]]) -> None:
        for partition, entries in partitions.items():
            self.saved[partition] = dict(entries)
        # Every partition holds the same entries unless workers differed: the newest versions win.
        newest = max(self.saved.values(), key=lambda e: json.loads(e.get(LOADED, b"[]")), default={})
        self.restored = dict(newest)
        self.next_reload = 0.0

    def revoked(self, partitions: list[int]) -> None:
        for partition in partitions:
            self.saved.pop(partition, None)
        if not self.saved:
            self.policies, self.restored = Policies(), None

    # -- batches ---------------------------------------------------------------------------------

    def prepare(self, messages: list, out: Output) -> list[dict | None]:
        """Look up the policies if due (in the loop's thread: registry and admin calls block), decode the batch."""
        self.forget_batch()
        policies = self.policies.copy()
        if self.restored is not None:
            policies = self.rebuild(self.restored)
        if time.monotonic() >= self.next_reload:
            self.reload(policies, out)
            self.next_reload = time.monotonic() + self.reload_s
        self.pending = policies
        self.batch_counters["records_in"] += len(messages)
        return [self.letters.decode(message, self.decoder, out) for message in messages]

    def process(self, messages: list, decoded: list[dict | None], out: Output) -> None:
        policies = self.pending
        started_ms = int(time.time() * 1000)
        written: Counter[str] = Counter()
        for message, record in zip(messages, decoded):
            if record is not None:
                self.secure(message, record, policies, written, out)
        ended_ms = int(time.time() * 1000)
        for team, running in sorted(policies.running.items()):
            if written[team]:
                record = audit.processor_record(self.user, self.raw_topic, running.view.topic, team,
                                                running.view.version, running.versions[1], written[team],
                                                sorted(running.view.masks), running.view.row_filter_text,
                                                started_ms, ended_ms)
                out.produce(audit_topic(self.settings), self.audit.encode(record), key=self.user.encode())
        entries = policies.state()
        for partition, saved in self.saved.items():
            for key in set(saved) | set(entries):
                if saved.get(key) != entries.get(key):
                    out.state(partition, key, entries.get(key))

    def committed(self) -> None:
        for name, count in self.batch_counters.items():
            self.counters[name] += count
        self.per_topic.update(self.batch_per_topic)
        self.filtered_per_team.update(self.batch_filtered)
        self.policies, self.restored = self.pending, None
        entries = self.policies.state()
        self.saved = {partition: dict(entries) for partition in self.saved}
        self.forget_batch()

    def discard(self) -> None:
        """The batch did not commit: its figures and policy changes go with it (they are looked up again)."""
        self.next_reload = 0.0
        self.forget_batch()

    def forget_batch(self) -> None:
        self.batch_counters.clear()
        self.batch_per_topic.clear()
        self.batch_filtered.clear()
        self.pending = None

    def secure(self, message, record: dict, policies: Policies, written: Counter, out: Output) -> None:
        """The record's view for every team written to, out of the team's topic where its policy says so."""
        for team, running in list(policies.running.items()):
            try:
                view = running.view.apply(record)
                value = None if view is None else running.codec.encode(view)
            except RecordRefused as err:
                self.letters.send(message, MISSING_MASKED_FIELD, f"team {team}: {err}", out)
                continue
            except (expressions.ExpressionError, ValueError, TypeError) as err:
                # a filter or CUSTOM mask that fails on the record, or a masked value the team's schema cannot hold
                del policies.running[team]  # fail closed: nothing more for this team until a policy that works
                policies.halted[team] = str(err)
                self.alert(team, f"{running.view.version} cannot be applied to {self.raw_topic}"
                                 f"[{message.partition()}]@{message.offset()}: {err}; {running.view.topic} is no "
                                 f"longer written", out)
                continue
            if view is None:
                self.batch_counters["rows_filtered"] += 1
                self.batch_filtered[team] += 1
                continue
            out.produce(running.view.topic, value, key=message.key(), partition=message.partition(),
                        headers=[(POLICY_HEADER, running.view.version.encode())])
            self.batch_counters["records_out"] += 1
            self.batch_per_topic[running.view.topic] += 1
            written[team] += 1

    # -- policies --------------------------------------------------------------------------------

    def rebuild(self, entries: dict[bytes, bytes]) -> Policies:
        """The policies the state says were in force: each team's view rebuilt from the versions it names."""
        policies = Policies(tuple(json.loads(entries[LOADED])) if LOADED in entries else None)
        for key, value in entries.items():
            if not key.startswith(TEAM):
                continue
            team, entry = key[len(TEAM):].decode(), json.loads(value)
            if entry["halted"] is not None:
                policies.halted[team] = entry["halted"]
            if entry["versions"] is not None:
                view = self.view_of(team, tuple(entry["versions"]))
                if view is not None:
                    policies.running[team] = Running(view, self.open_topic(view), tuple(entry["versions"]))
        return policies

    def view_of(self, team: str, versions: tuple[int, int, int]) -> TeamView | None:
        directory_version, hive_version, raw_version = versions
        directory = configs.load_directory(self.store, directory_version)
        policies = configs.load_policies(self.store, "security.hive", directory.value, hive_version)
        raw = self.registry.get_version(value_subject(self.raw_topic), raw_version)
        view = team_views(policies.value, directory.value, self.raw_topic, json.loads(raw.schema.schema_str),
                          policies.version).get(team)
        return view if isinstance(view, TeamView) else None

    def reload(self, policies: Policies, out: Output) -> None:
        """Build the views of the stored policy versions into ``policies``, if they changed since the last look."""
        directory = configs.load_directory(self.store)
        if directory is None:
            self.halt_all(policies, "no security.directory is stored", out)
            return
        hive = configs.load_policies(self.store, "security.hive", directory.value)
        raw = self.registry.get_version(value_subject(self.raw_topic), "latest")
        versions = (directory.version, hive.version if hive else None, raw.version)
        if versions == policies.loaded:
            return
        policies.loaded = versions
        if hive is None:
            self.halt_all(policies, "no security.hive is stored", out)
            return
        views = team_views(hive.value, directory.value, self.raw_topic, json.loads(raw.schema.schema_str),
                           hive.version)
        for team in set(policies.running) - set(views):
            self.say(f"team {team}: no longer granted select on {self.raw_topic}; its secure topic is no longer "
                     f"written")
            del policies.running[team]
        for team, view in sorted(views.items()):
            if isinstance(view, ViewError):
                kept = policies.running.get(team)
                self.alert(team, f"{view}" + (f"; {kept.view.version} stays in force" if kept else
                                              "; its secure topic is not written"), out)
                if kept is None:
                    policies.halted[team] = str(view)
                continue
            if team in policies.running and policies.running[team].view == view:
                continue
            policies.running[team] = Running(view, self.open_topic(view), versions)
            policies.halted.pop(team, None)
            emit_secure_dataset_lineage(self.settings, self.registry, view)
            self.say(f"team {team}: {view.topic} by {view.version}")

    def halt_all(self, policies: Policies, reason: str, out: Output) -> None:
        for team in list(policies.running):
            self.alert(team, f"{reason}: {policies.running.pop(team).view.topic} is no longer written", out)
            policies.halted[team] = reason

    def open_topic(self, view: TeamView) -> TopicCodec:
        """The team's topic, partitioned as the raw topic (a record goes to its raw partition), and its schema."""
        admin = clients.admin(self.settings)
        partitions = len(admin.list_topics(timeout=15).topics[self.raw_topic].partitions)
        topic = NewTopic(view.topic, partitions, self.settings.replication_factor)
        for future in admin.create_topics([topic]).values():
            try:
                future.result(timeout=30)
            except KafkaException as err:
                if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        subject = value_subject(view.topic)
        self.registry.set_compatibility(subject, "NONE")  # a policy change may change a field's type
        self.registry.register_schema(subject, Schema(view.schema_str, "AVRO"))
        codec = TopicCodec.for_schema(self.registry, view.topic, view.schema_str)
        codec.warm_up()  # the schema id looked up now, not in process() on the event loop
        return codec

    def alert(self, team: str, message: str, out: Output) -> None:
        log.error("secure dataset of team %s: %s", team, message)
        self.batch_counters["alerts"] += 1
        alert = {"alert_id": str(uuid.uuid4()), "alert_type": POLICY_NOT_APPLIED, "model_crn": self.raw_topic,
                 "model_build_crn": "", "model_deployment_crn": self.name, "subject": team,
                 "detector": "mlstream.security", "value": 0.0, "threshold": None, "records_learned": 0,
                 "message": message, "labels_judged": 0, "raised_at": int(time.time() * 1000)}
        out.produce(self.settings.topics.alerts, self.alerts.encode(alert), key=team.encode())

    # -- figures ---------------------------------------------------------------------------------

    def figures(self) -> dict:
        """What /stats/ shows: as of the last commit."""
        policies = self.policies
        return {
            "raw_topic": self.raw_topic,
            "counters": dict(self.counters),
            "records_per_secure_topic": dict(self.per_topic),
            "rows_filtered_per_team": dict(self.filtered_per_team),
            "loaded": {"directory": policies.loaded[0], "hive": policies.loaded[1], "raw_schema": policies.loaded[2]}
            if policies.loaded else None,
            "teams": {team: {"topic": r.view.topic, "version": r.view.version, "masked": sorted(r.view.masks),
                             "columns": list(r.view.columns)} for team, r in sorted(policies.running.items())},
            "halted": dict(policies.halted),
        }

