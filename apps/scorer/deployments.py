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
is one, so it keeps what it learned online, else the build's snapshot).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

import apps.scorer.app as serving
from mlstream.errors import UserError
from mlstream.identifiers import build_crn, deployment_crn, model_crn
from mlstream.metrics import MetricsTracker
from mlstream.registry.control import (APPLIED, REFUSED, ROLLBACK, check_deployable, deploy_command,
                                             outcome)
from mlstream.registry.metadata_log import KafkaMetadataLog, ensure_topics
from mlstream.registry.records import CHAMPION, SHADOW, Build
from mlstream.registry.registry import Registry
from mlstream.registry.snapshots import load_snapshot
from mlstream.scoring.monitoring import METRIC_BELOW_THRESHOLD, Alert, ModelMonitor
from mlstream.scoring.online_model import OnlineModel
from mlstream.kafka.reader import end_offsets, read_range
from apps.scorer.app import app, settings
from mlstream.scoring.scorer import StreamScorer, now_ms

log = logging.getLogger(__name__)

instance = f"{settings.app_id}-{uuid.uuid4().hex[:8]}"
topics = settings.topics
deployments_topic = app.topic(topics.deployments)
snapshot_store = serving.model_store  # checkpoints and snapshots: one store (MLSTREAM_MODEL_STORE)
ensure_topics(settings)
# Commands from now on are ours to apply; what came before is in the registry, read next.
commands_from = end_offsets(settings.bootstrap_servers, topics.deployments)
alerts_from = end_offsets(settings.bootstrap_servers, topics.alerts)
registry = Registry(KafkaMetadataLog(settings))
#: role -> the registry's deployment record of what this app serves in that role (None: the env's model)
serving_now: dict = {CHAMPION: None, SHADOW: None}


def scorer_for(build: Build, from_checkpoint: bool) -> StreamScorer:
    estimator, n_learned = load_snapshot(snapshot_store, build.snapshot_key, build.snapshot_sha256), 0
    checkpoint = serving.model_store.load(build.model, build.version) if from_checkpoint else None
    if checkpoint is not None:
        estimator, n_learned = checkpoint["estimator"], checkpoint["n_learned"]
    return StreamScorer(OnlineModel(estimator, build.model, build.version, n_learned), serving.model_store,
                        monitor=ModelMonitor(build.model, build.version,
                                             min_rolling_accuracy=serving.MIN_ROLLING_ACCURACY))


def install(role: str, scorer: StreamScorer) -> None:
    """The swap: one assignment on the event loop, between two records."""
    name = settings.app_id if role == CHAMPION else f"{settings.app_id}-shadow"
    serving.trackers[id(scorer)] = MetricsTracker(serving.metrics_sink, scorer.model.name, scorer.model.version, name)
    if role == CHAMPION:
        serving.scorer = scorer
    else:
        serving.challenger = scorer


def stream_features() -> set[str] | None:
    """The feature names of the newest record of each partition (None while the topic is empty)."""
    end = end_offsets(settings.bootstrap_servers, topics.records)
    newest = read_range(settings.bootstrap_servers, topics.records, {p: max(0, o - 1) for p, o in end.items()}, end,
                        timeout_s=10)
    names: set[str] = set()
    for message in newest:
        try:
            names |= set(serving.codecs["records"].decode(message.value())["features"])
        except Exception:  # an undecodable newest record says nothing about the features
            continue
    return names or None


def prepare(command: dict) -> tuple[Build, StreamScorer]:
    """Everything that can fail, done off the loop; raises UserError with the reason."""
    registry.refresh()
    build = registry.build(f"{command['model']}/{command['version']}")
    check_deployable(build.to_dict() | {"ref": build.ref}, stream_features())
    return build, scorer_for(build, from_checkpoint=False)


def restore_at_start() -> None:
    for role in (CHAMPION, SHADOW):
        deployment = registry.serving(settings.app_id, role)
        if deployment is None:
            continue
        try:
            install(role, scorer_for(registry.build(f"{deployment.model}/{deployment.build_version}"), True))
            serving_now[role] = deployment
            log.info("serving %s/%s as %s, as the registry recorded", deployment.model, deployment.build_version, role)
        except UserError as err:
            log.error("cannot serve %s/%s as %s (%s); serving %s v%s instead", deployment.model,
                      deployment.build_version, role, err, settings.model, settings.model_version)


async def publish(value: dict) -> None:
    await deployments_topic.send(key=value["app_id"].encode(), value=json.dumps(value).encode())


async def refuse(command: dict, reason: str) -> None:
    log.warning("deploy of %s/%s refused: %s", command["model"], command["version"], reason)
    await publish(outcome(command, REFUSED, instance, reason))
    current = serving.scorer
    alert = {"alert_id": str(uuid.uuid4()), "alert_type": "DEPLOY_REFUSED", "model_crn": model_crn(command["model"]),
             "model_build_crn": build_crn(command["model"], command["version"]),
             "model_deployment_crn": deployment_crn(command["model"], settings.app_id), "subject": "deployment",
             "detector": "mlstream.deployments", "value": 0.0, "threshold": None,
             "records_learned": current.model.n_learned,
             "message": f"{reason}; {current.model.name} v{current.model.version} keeps serving",
             "raised_at": now_ms()}
    await serving.alerts_topic.send(key=alert["model_deployment_crn"].encode(),
                                    value=serving.codecs["alerts"].encode(alert))
    serving.live.on_alert(Alert(alert["alert_type"], alert["subject"], alert["detector"], alert["value"], None,
                                alert["records_learned"], alert["message"]), alert["raised_at"],
                          f"{command['model']} v{command['version']}")


async def apply(command: dict) -> None:
    loop = asyncio.get_running_loop()
    try:
        build, scorer = await loop.run_in_executor(None, prepare, command)
    except UserError as err:
        await refuse(command, str(err))
        return
    except Exception as err:  # e.g. the registry topic unreadable: still refuse, still serve
        await refuse(command, f"{type(err).__name__}: {err}")
        return
    previous = serving.scorer if command["role"] == CHAMPION else serving.challenger
    install(command["role"], scorer)
    at = now_ms()
    # The dashboard's timeline marks each deploy (a rollback too, not only a version's first appearance).
    serving.live.deploys.append({"t": at / 1000, "version": f"{build.model} v{build.version}",
                                 "role": command["role"], "reason": command.get("reason", "")})
    log.info("now serving %s as %s (was %s)", build.ref, command["role"],
             f"{previous.model.name}/{previous.model.version}" if previous else "none")
    if previous is not None:
        await loop.run_in_executor(None, previous.checkpoint)
    serving_now[command["role"]] = await loop.run_in_executor(
        None, lambda: registry.record_deployment(build, settings.app_id, command["role"], at, command["command_id"],
                                                 command.get("auto_rollback", False),
                                                 rollback=command.get("reason", "").startswith(ROLLBACK)))
    await publish(outcome(command, APPLIED, instance, command.get("reason", ""), serving_since_ms=at,
                               previous=f"{previous.model.name}/{previous.model.version}" if previous else None))


async def consumer_from(topic: str, offsets: dict[int, int]) -> AIOKafkaConsumer:
    """A started consumer of ``topic``, without a group, at ``offsets`` (partition -> offset)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers.split(","), group_id=None,
                                enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, p) for p in offsets])
    await consumer.start()
    for p, offset in offsets.items():
        consumer.seek(TopicPartition(topic, p), offset)
    return consumer


@app.task
async def follow_deployment_commands():
    consumer = await consumer_from(topics.deployments, commands_from)
    try:
        async for message in consumer:
            value = json.loads(message.value)
            if value.get("type") == "command" and value.get("app_id") == settings.app_id:
                await apply(value)
    finally:
        await consumer.stop()


@app.task
async def roll_back_on_alerts():
    """An alert that the serving build fell below its threshold: deploy the build before it, when configured."""
    consumer = await consumer_from(topics.alerts, alerts_from)
    try:
        async for message in consumer:
            try:
                alert = serving.codecs["alerts"].decode(message.value)
            except Exception:
                continue
            current = serving_now[CHAMPION]
            if (alert["alert_type"] != METRIC_BELOW_THRESHOLD or current is None or not current.auto_rollback
                    or alert["model_build_crn"] != current.build_crn or current.previous_version() is None):
                continue
            command = deploy_command(settings.app_id, current.model, current.previous_version(), CHAMPION,
                                     reason=f"{ROLLBACK} (automatic): {alert['message']}")
            serving_now[CHAMPION] = None  # one rollback per alert crossing, until the command is applied
            log.warning("rolling back %s/%s to %s: %s", current.model, current.build_version,
                        current.previous_version(), alert["message"])
            await publish(command)
    finally:
        await consumer.stop()


restore_at_start()
