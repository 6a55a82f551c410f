"""What the registry holds, as plain records that travel as JSON on the metadata topic.

    >>> b = Build(model="fraud", version="2", spec="logistic_regression", parent="1")
    >>> b.crn
    'crn:mlstream:ml:local:model/fraud/build/2'
    >>> Build.from_dict(b.to_dict()) == b
    True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mlstream.identifiers import build_crn, deployment_crn, model_crn

CHAMPION, SHADOW = "champion", "shadow"


@dataclass(frozen=True)
class ModelSpec:
    """A named model: a river pipeline from ``models/`` and the hyper-parameters it is built with."""

    name: str
    spec: str
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    created_at_ms: int = 0

    @property
    def crn(self) -> str:
        return model_crn(self.name)

    def to_dict(self) -> dict:
        return {"kind": "model", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        return cls(**{k: v for k, v in d.items() if k != "kind"})


@dataclass(frozen=True)
class Build:
    """A trained snapshot of a model: what it was trained on, how, by which code, and how well it did."""

    model: str
    version: str
    spec: str
    params: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None  # the version this build was derived from (a rebuild's original)
    status: str = "ready"  # ready | retired
    sampling: dict[str, Any] = field(default_factory=dict)  # {"method": none|under|over, "desired_dist", "seed"}
    class_weight: dict[str, float] = field(default_factory=dict)  # str(label) -> weight
    seed: int = 0
    features: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # the build manifest: offset ranges, digests, splits
    code_version: str = ""
    config: str = ""  # "<name> v<version>" of the config the build's settings came from, if any
    snapshot: str = ""  # location of the snapshot in the model store
    snapshot_key: str = ""
    snapshot_sha256: str = ""
    probe_sha256: str = ""  # predictions on the probe set, bit for bit
    examples_learned: int = 0
    train_seconds: float = 0.0
    created_at_ms: int = 0

    @property
    def crn(self) -> str:
        return build_crn(self.model, self.version)

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.version}"

    def to_dict(self) -> dict:
        return {"kind": "build", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "Build":
        return cls(**{k: v for k, v in d.items() if k != "kind"})


@dataclass(frozen=True)
class Deployment:
    """Which build serves an app (as champion, or in shadow), since when, and what served before."""

    model: str
    app_id: str
    role: str
    build_version: str
    since_ms: int
    command_id: str = ""
    auto_rollback: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier [{build_version, since_ms, until_ms}]

    @property
    def crn(self) -> str:
        return deployment_crn(self.model, self.app_id if self.role == CHAMPION else f"{self.app_id}-{self.role}")

    @property
    def build_crn(self) -> str:
        return build_crn(self.model, self.build_version)

    def to_dict(self) -> dict:
        return {"kind": "deployment", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "Deployment":
        return cls(**{k: v for k, v in d.items() if k != "kind"})

    def replaced_by(self, build_version: str, at_ms: int, command_id: str, auto_rollback: bool,
                    rollback: bool = False) -> "Deployment":
        earlier = {"build_version": self.build_version, "since_ms": self.since_ms, "until_ms": at_ms,
                   "rolled_back": rollback}
        return dataclasses.replace(self, build_version=build_version, since_ms=at_ms, command_id=command_id,
                                   auto_rollback=auto_rollback, history=[*self.history, earlier])

    def previous_version(self) -> str | None:
        """What a rollback goes back to: the latest earlier build that is not the current one and was not
        itself rolled back from (a second rollback must not bring the bad build back)."""
        return next((h["build_version"] for h in reversed(self.history)
                     if h["build_version"] != self.build_version and not h.get("rolled_back")), None)
