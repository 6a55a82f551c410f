"""The registry's rules over its metadata log: look-ups, versions, retiring, recording deployments.

The registry needs of its log only :class:`MetadataLog`: the log on a compacted Kafka topic
is an adapter of it (:mod:`mlstream.registry.metadata_log`), the one in memory is here.

    >>> registry = Registry(MemoryMetadataLog())
    >>> registry.add_build(Build(model="fraud", version="1", spec="logistic_regression")).ref
    'fraud/1'
    >>> registry.next_version("fraud")
    '2'
    >>> registry.build("fraud/9")
    Traceback (most recent call last):
    ...
    mlstream.registry.registry.RegistryError: unknown build fraud/9; known builds of fraud: 1
"""

from __future__ import annotations

import dataclasses
import json
from typing import Protocol

from mlstream.errors import UserError
from mlstream.identifiers import build_crn
from mlstream.registry.records import CHAMPION, Build, Deployment, ModelSpec


class MetadataLog(Protocol):
    """Where registry metadata is kept: key (a CRN) -> latest JSON value."""

    def append(self, key: str, value: dict) -> None: ...

    def read(self) -> dict[str, dict]: ...


class MemoryMetadataLog:
    """The embedded implementation, for tests and one-process use."""

    def __init__(self):
        self.entries: dict[str, dict] = {}

    def append(self, key: str, value: dict) -> None:
        self.entries[key] = json.loads(json.dumps(value))

    def read(self) -> dict[str, dict]:
        return dict(self.entries)


class RegistryError(UserError):
    pass


def parse_ref(ref: str) -> tuple[str, str]:
    """``model/version`` or a build CRN -> (model, version)."""
    if ref.startswith("crn:"):
        head, _, version = ref.rpartition("/build/")
        return head.rpartition("model/")[2], version
    model, sep, version = ref.rpartition("/")
    if not sep or not model or not version:
        raise RegistryError(f"{ref!r} names no build: use MODEL/VERSION (e.g. fraud/2) or a build CRN")
    return model, version


class Registry:
    def __init__(self, log: MetadataLog):
        self.log = log
        self.entries: dict[str, dict] = {}
        self.refresh()

    def refresh(self) -> "Registry":
        self.entries = self.log.read()
        return self

    def _of_kind(self, kind: str) -> list[dict]:
        return [v for v in self.entries.values() if v.get("kind") == kind]

    # ----- specs and builds

    def specs(self) -> list[ModelSpec]:
        return sorted((ModelSpec.from_dict(v) for v in self._of_kind("model")), key=lambda s: s.name)

    def spec(self, name: str) -> ModelSpec | None:
        found = self.entries.get(ModelSpec(name, "").crn)
        return ModelSpec.from_dict(found) if found else None

    def add_spec(self, spec: ModelSpec) -> ModelSpec:
        self.log.append(spec.crn, spec.to_dict())
        self.entries[spec.crn] = spec.to_dict()
        return spec

    def builds(self, model: str | None = None) -> list[Build]:
        found = [Build.from_dict(v) for v in self._of_kind("build")]
        return sorted((b for b in found if model in (None, b.model)), key=lambda b: (b.model, int(b.version)))

    def build(self, ref: str) -> Build:
        model, version = parse_ref(ref)
        found = self.entries.get(build_crn(model, version))
        if found is None:
            known = ", ".join(b.version for b in self.builds(model)) or "none"
            raise RegistryError(f"unknown build {model}/{version}; known builds of {model}: {known}")
        return Build.from_dict(found)

    def next_version(self, model: str) -> str:
        return str(max((int(b.version) for b in self.builds(model)), default=0) + 1)

    def add_build(self, build: Build) -> Build:
        if build.crn in self.entries:
            raise RegistryError(f"build {build.ref} exists already; builds are immutable")
        self.log.append(build.crn, build.to_dict())
        self.entries[build.crn] = build.to_dict()
        return build

    def retire(self, ref: str) -> Build:
        build = self.build(ref)
        serving = [d for d in self.deployments() if d.model == build.model and d.build_version == build.version]
        if serving:
            raise RegistryError(f"build {build.ref} serves {', '.join(f'{d.app_id} ({d.role})' for d in serving)}: "
                                f"deploy another build there first")
        retired = dataclasses.replace(build, status="retired")
        self.log.append(retired.crn, retired.to_dict())
        self.entries[retired.crn] = retired.to_dict()
        return retired

    # ----- deployments

    def deployments(self, app_id: str | None = None, role: str | None = None) -> list[Deployment]:
        found = [Deployment.from_dict(v) for v in self._of_kind("deployment")]
        return sorted((d for d in found if app_id in (None, d.app_id) and role in (None, d.role)),
                      key=lambda d: d.since_ms)

    def serving(self, app_id: str, role: str = CHAMPION) -> Deployment | None:
        """The deployment of this app and role that started last (an app serves one model per role)."""
        found = self.deployments(app_id, role)
        return found[-1] if found else None

    def record_deployment(self, build: Build, app_id: str, role: str, at_ms: int, command_id: str,
                          auto_rollback: bool = False, rollback: bool = False) -> Deployment:
        """Record that ``build`` serves; ``rollback``: it replaced a build that was rolled back from.

        Idempotent per command: each instance of an app records the command it applied, once.
        """
        current = self.serving(app_id, role)
        if current is not None and current.command_id == command_id:
            return current
        if current is not None and current.model == build.model:
            deployment = current.replaced_by(build.version, at_ms, command_id, auto_rollback, rollback)
        else:
            deployment = Deployment(build.model, app_id, role, build.version, at_ms, command_id, auto_rollback)
        self.log.append(deployment.crn, deployment.to_dict())
        self.entries[deployment.crn] = deployment.to_dict()
        return deployment
