"""Hot deploy: the stream app takes deployment commands from the deployments topic and swaps builds live.

Every instance of the app reads the whole deployments topic (no consumer group: each must
apply each command). A command is prepared off the event loop (registry look-up, snapshot
read and checked, features checked against the newest records) and then installed with one
assignment on the loop, which the ``score`` agent reads once per record: the swap falls
between two records, nothing is restarted, no record is lost or scored twice, and each
prediction names the build that made it. A refused command (unknown or retired build,
missing or corrupt snapshot, features the records no longer carry) leaves the current
build serving and is answered on the deployments topic and raised on the alerts topic.

With ``auto_rollback`` in the deployment, an alert on the alerts topic that a metric of the
serving build fell below its threshold sends a deploy of the previous build.

At start the app serves what the registry says it served last (its checkpoint when there
is one, so it keeps what it learned online, else the build's snapshot): :meth:`Deployments.start`,
before the app reads its first record. What is served lives in the app's :class:`Serving`,
handed to :class:`Deployments` when the app is built.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import faust
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from apps.scorer.dashboard import LiveHistory
from apps.scorer.history import training_window
from apps.scorer.serving import Serving, monitor_options
from mlstream.errors import UserError
from mlstream.features.view import FeatureView
from mlstream.identifiers import build_crn, deployment_crn, model_crn
from mlstream.kafka.clients import aiokafka_options
from mlstream.kafka.reader import end_offsets, read_range
from mlstream.kafka.serde import TopicCodec
from mlstream.registry.control import APPLIED, REFUSED, ROLLBACK, check_deployable, deploy_command, outcome
from mlstream.registry.metadata_log import KafkaMetadataLog, ensure_topics
from mlstream.registry.records import CHAMPION, SHADOW, Build
from mlstream.registry.registry import Registry
from mlstream.registry.snapshots import load_snapshot
from mlstream.scoring.model_store import ModelStore
from mlstream.scoring.monitoring import METRIC_BELOW_THRESHOLD, Alert, ModelMonitor
from mlstream.scoring.online_model import OnlineModel
from mlstream.scoring.scorer import StreamScorer, now_ms
from mlstream.settings import Settings
from mlstream.streaming.dead_lettering import when_registry_reachable
from mlstream.streaming.faust_app import add_task

log = logging.getLogger(__name__)


class Deployments:
    """Applies the deployment commands for this app to ``serving``; rolls back on alerts when configured.

    Building it declares the deployments topic and the two tasks that follow the commands
    and the alerts; :meth:`start` opens the registry.
    """

    def __init__(self, app: faust.App, settings: Settings, serving: Serving, live: LiveHistory,
                 alerts_topic, codecs: dict[str, TopicCodec], view: FeatureView, counters: dict[str, int]):
        self.settings = settings
        self.serving = serving
        self.live = live
        self.alerts_topic = alerts_topic
        self.codecs = codecs
        self.view = view  # reads the records whose features a build must find
        self.instance = f"{settings.app_id}-{uuid.uuid4().hex[:8]}"
        self.deployments_topic = app.topic(settings.topics.deployments)
        #: role -> the registry's deployment record of what this app serves in that role (None: the env's model)
        self.serving_now: dict = {CHAMPION: None, SHADOW: None}
        # opened by start()
        self.store: ModelStore | None = None  # checkpoints and snapshots: one store (MLSTREAM_MODEL_STORE)
        self.registry: Registry | None = None
        self.commands_from: dict[int, int] = {}
        self.alerts_from: dict[int, int] = {}
        add_task(app, self.follow_deployment_commands, counters)
        add_task(app, self.roll_back_on_alerts, counters)

    def start(self, store: ModelStore) -> None:
        """Open the registry and serve what it says this app served last (blocking; before the first record)."""
        topics = self.settings.topics
        self.store = store
        ensure_topics(self.settings)
        # Commands from now on are ours to apply; what came before is in the registry, read next.
        self.commands_from = end_offsets(self.settings, topics.deployments)
        self.alerts_from = end_offsets(self.settings, topics.alerts)
        self.registry = Registry(KafkaMetadataLog(self.settings))
        self.restore()

    def restore(self) -> None:
        settings = self.settings
        for role in (CHAMPION, SHADOW):
            deployment = self.registry.serving(settings.app_id, role)
            if deployment is None:
                continue
            try:
                self.serving.install(role, self.scorer_for(
                    self.registry.build(f"{deployment.model}/{deployment.build_version}"), from_checkpoint=True))
                self.serving_now[role] = deployment
                log.info("serving %s/%s as %s, as the registry recorded", deployment.model, deployment.build_version,
                         role)
            except UserError as err:
                log.error("cannot serve %s/%s as %s (%s); serving %s v%s instead", deployment.model,
                          deployment.build_version, role, err, settings.model, settings.model_version)

    def scorer_for(self, build: Build, from_checkpoint: bool) -> StreamScorer:
        estimator, n_learned = load_snapshot(self.store, build.snapshot_key, build.snapshot_sha256), 0
        checkpoint = self.store.load(build.model, build.version) if from_checkpoint else None
        if checkpoint is not None:
            estimator, n_learned = checkpoint["estimator"], checkpoint["n_learned"]
        self.show_training_window(build)
        return StreamScorer(OnlineModel(estimator, build.model, build.version, n_learned), self.store,
                            monitor=ModelMonitor(build.model, build.version, **monitor_options(self.settings)),
                            max_abs_value=self.settings.max_abs_value)

    def show_training_window(self, build: Build) -> None:
        """The dashboard's drift panel compares the live features with the build's training records."""
        if not self.live.drift_features:
            return
        version = f"{build.model} v{build.version}"
        try:
            reference = training_window(self.settings, build, self.live.drift_features, self.features_of)
        except Exception as err:  # the panel falls back on the first records scored; the deploy goes on
            log.warning("training window of %s not read for the dashboard: %s", build.ref, err)
            return
        self.live.set_reference(version, reference["source"], reference["values"])

    def features_of(self, message) -> dict:
        """A records-topic message's features, as the feature view reads them."""
        return self.view.record_from(self.codecs["records"].decode(message.value()), message.key())["features"]

    def stream_features(self) -> set[str] | None:
        """The feature names of the newest record of each partition (None while the topic is empty)."""
        records = self.view.records_topic
        end = end_offsets(self.settings, records)
        newest = read_range(self.settings, records, {p: max(0, o - 1) for p, o in end.items()}, end, timeout_s=10)
        names: set[str] = set()
        for message in newest:
            try:
                names |= set(self.features_of(message))
            except Exception:  # an undecodable newest record says nothing about the features
                continue
        return names or None

    def prepare(self, command: dict) -> tuple[Build, StreamScorer]:
        """Everything that can fail, done off the loop; raises UserError with the reason."""
        self.registry.refresh()
        build = self.registry.build(f"{command['model']}/{command['version']}")
        check_deployable(build.to_dict() | {"ref": build.ref}, self.stream_features())
        return build, self.scorer_for(build, from_checkpoint=False)

    async def publish(self, value: dict) -> None:
        await self.deployments_topic.send(key=value["app_id"].encode(), value=json.dumps(value).encode())

    async def refuse(self, command: dict, reason: str) -> None:
        log.warning("deploy of %s/%s refused: %s", command["model"], command["version"], reason)
        await self.publish(outcome(command, REFUSED, self.instance, reason))
        current = self.serving.champion
        alert = {"alert_id": str(uuid.uuid4()), "alert_type": "DEPLOY_REFUSED",
                 "model_crn": model_crn(command["model"]),
                 "model_build_crn": build_crn(command["model"], command["version"]),
                 "model_deployment_crn": deployment_crn(command["model"], self.settings.app_id),
                 "subject": "deployment", "detector": "mlstream.deployments", "value": 0.0, "threshold": None,
                 "records_learned": current.n_learned,
                 "message": f"{reason}; {current.model.name} v{current.model.version} keeps serving",
                 "labels_judged": 0, "raised_at": now_ms()}
        encoded = await when_registry_reachable(lambda: self.codecs["alerts"].encode(alert), "encoding an alert")
        await self.alerts_topic.send(key=alert["model_deployment_crn"].encode(), value=encoded)
        self.live.on_alert(Alert(alert["alert_type"], alert["subject"], alert["detector"], alert["value"], None,
                                 alert["records_learned"], alert["message"]), alert["raised_at"],
                           f"{command['model']} v{command['version']}")

    async def apply(self, command: dict) -> None:
        loop = asyncio.get_running_loop()
        try:
            build, scorer = await loop.run_in_executor(None, self.prepare, command)
        except UserError as err:
            await self.refuse(command, str(err))
            return
        except Exception as err:  # e.g. the registry topic unreadable: still refuse, still serve
            await self.refuse(command, f"{type(err).__name__}: {err}")
            return
        previous = self.serving.install(command["role"], scorer)  # the swap: between two records
        at = now_ms()
        # The dashboard's timeline marks each deploy (a rollback too, not only a version's first appearance).
        self.live.on_deploy(at, f"{build.model} v{build.version}", command["role"], command.get("reason", ""))
        log.info("now serving %s as %s (was %s)", build.ref, command["role"],
                 f"{previous.model.name}/{previous.model.version}" if previous else "none")
        self.serving_now[command["role"]] = await loop.run_in_executor(
            None, lambda: self.registry.record_deployment(
                build, self.settings.app_id, command["role"], at, command["command_id"],
                command.get("auto_rollback", False), rollback=command.get("reason", "").startswith(ROLLBACK)))
        await self.publish(outcome(command, APPLIED, self.instance, command.get("reason", ""), serving_since_ms=at,
                                   previous=f"{previous.model.name}/{previous.model.version}" if previous else None))

    async def consumer_from(self, topic: str, offsets: dict[int, int]) -> AIOKafkaConsumer:
        """A started consumer of ``topic``, without a group, at ``offsets`` (partition -> offset)."""
        consumer = AIOKafkaConsumer(**aiokafka_options(self.settings), group_id=None, enable_auto_commit=False)
        consumer.assign([TopicPartition(topic, p) for p in offsets])
        await consumer.start()
        for p, offset in offsets.items():
            consumer.seek(TopicPartition(topic, p), offset)
        return consumer

    async def follow_deployment_commands(self) -> None:
        consumer = await self.consumer_from(self.settings.topics.deployments, self.commands_from)
        try:
            async for message in consumer:
                value = json.loads(message.value)
                if value.get("type") == "command" and value.get("app_id") == self.settings.app_id:
                    await self.apply(value)
        finally:
            await consumer.stop()

    async def roll_back_on_alerts(self) -> None:
        """An alert that the serving build fell below its threshold: deploy the build before it, when configured."""
        app_id = self.settings.app_id
        consumer = await self.consumer_from(self.settings.topics.alerts, self.alerts_from)
        try:
            async for message in consumer:
                try:
                    alert = self.codecs["alerts"].decode(message.value)
                except Exception:
                    continue
                current = self.serving_now[CHAMPION]
                if (alert["alert_type"] != METRIC_BELOW_THRESHOLD or current is None or not current.auto_rollback
                        or alert["model_build_crn"] != current.build_crn or current.previous_version() is None):
                    continue
                command = deploy_command(app_id, current.model, current.previous_version(), CHAMPION,
                                         reason=f"{ROLLBACK} (automatic): {alert['message']}")
                self.serving_now[CHAMPION] = None  # one rollback per alert crossing, until the command is applied
                log.warning("rolling back %s/%s to %s: %s", current.model, current.build_version,
                            current.previous_version(), alert["message"])
                await self.publish(command)
        finally:
            await consumer.stop()
