"""Deployment commands to the stream apps, and their outcomes, on the deployments topic (JSON).

A command names the app, the role (champion or shadow) and the build; every instance of
that app applies it between two records and answers with an outcome: ``applied`` (with
the time the new build took over) or ``refused`` (with the reason; the current build keeps
serving). The CLI sends a command and waits for its outcome.

    >>> check_deployable({"status": "ready", "features": ["a", "b"], "ref": "m/2"}, {"a", "b", "c"})
    >>> check_deployable({"status": "ready", "features": ["a", "z"], "ref": "m/2"}, {"a", "b"})
    Traceback (most recent call last):
    ...
    mlstream.registry.control.DeployRefused: build m/2 uses features the stream's records no longer carry: z (records have: a, b)
"""

from __future__ import annotations

import json
import time
import uuid

from confluent_kafka import TopicPartition

from mlstream.errors import UserError
from mlstream.kafka import clients
from mlstream.kafka.reader import end_offsets
from mlstream.registry.records import CHAMPION
from mlstream.settings import Settings

DEPLOY, APPLIED, REFUSED = "deploy", "applied", "refused"
ROLLBACK = "rollback"  # a command's reason starting with this marks the build it replaces as rolled back from


class DeployRefused(UserError):
    pass


def check_deployable(build: dict, stream_features: set[str] | None) -> None:
    """Refuse a retired build, or one whose features the records no longer carry (``None``: not known yet)."""
    if build["status"] != "ready":
        raise DeployRefused(f"build {build['ref']} is {build['status']}: build or pick another")
    if stream_features is not None:
        missing = sorted(set(build["features"]) - stream_features)
        if missing:
            raise DeployRefused(f"build {build['ref']} uses features the stream's records no longer carry: "
                                f"{', '.join(missing)} (records have: {', '.join(sorted(stream_features))})")


def deploy_command(app_id: str, model: str, version: str, role: str = CHAMPION, auto_rollback: bool = False,
                   reason: str = "") -> dict:
    return {"type": "command", "command_id": str(uuid.uuid4()), "action": DEPLOY, "app_id": app_id, "role": role,
            "model": model, "version": version, "auto_rollback": auto_rollback, "reason": reason,
            "requested_at_ms": time.time_ns() // 1_000_000}


def outcome(command: dict, result: str, instance: str, detail: str = "", **extra) -> dict:
    return {"type": "outcome", "command_id": command["command_id"], "result": result, "app_id": command["app_id"],
            "role": command["role"], "model": command["model"], "version": command["version"], "instance": instance,
            "detail": detail, "at_ms": time.time_ns() // 1_000_000, **extra}


class ControlChannel:
    """The CLI's side of the deployments topic."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.topic = settings.topics.deployments
        self.producer = clients.producer(settings, **{"enable.idempotence": True})

    def send(self, message: dict) -> None:
        self.producer.produce(self.topic, key=message["app_id"].encode(), value=json.dumps(message).encode())
        if self.producer.flush(30):
            raise UserError(f"could not write to {self.topic} on {self.settings.bootstrap_servers}: is Kafka up?")

    def request(self, command: dict, timeout_s: float = 60.0) -> dict:
        """Send ``command`` and return the first outcome an app instance gives it."""
        start = end_offsets(self.settings, self.topic)
        self.send(command)
        consumer = clients.consumer(self.settings, **{"group.id": f"mlstream-deploy-{uuid.uuid4().hex}",
                                                      "enable.auto.commit": False})
        consumer.assign([TopicPartition(self.topic, p, o) for p, o in start.items()])
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is None or message.error() is not None:
                    continue
                value = json.loads(message.value())
                if value.get("type") == "outcome" and value["command_id"] == command["command_id"]:
                    return value
        finally:
            consumer.close()
        raise UserError(f"no app {command['app_id']!r} answered the deploy of {command['model']}/{command['version']} "
                        f"within {timeout_s:.0f}s: is 'mlstream app' running with MLSTREAM_APP_ID={command['app_id']}? "
                        f"(the command stays on {self.topic}; a running app ignores commands older than its start)")
