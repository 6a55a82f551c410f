"""``mlstream project apply`` and ``mlstream project run``: a generated project's set-up and its settings.

A project's ``mlstream-project.yaml`` (written by ``mlstream new-project``) names its settings
(topic prefix, app id, model spec, feature view), its own topics with their Avro schemas, and
its config files. :func:`apply` makes the broker and registry match it, and is idempotent:

* the topics ``mlstream init`` makes, under the project's prefix, and the project's own topics;
* each topic's value schema registered under BACKWARD compatibility (a schema edited in a way
  its readers could not read is refused, with the registry's reason, before anything is stored);
* each config file stored as a new version when its text changed (checked as ``mlstream config put``
  checks it: feature views, lineage, the directory and policies; ``model`` as build settings);
* the Ranger-format Kafka policies enforced (SCRAM users, ACLs) when the profile's broker is secured
  (SASL); on a plain broker they are stored only, and apply says so: it has no authorizer;
* the model's lineage (its topics -> train process -> build) reported when the lineage config changed.

The whole plan is made first, so a refused schema or an invalid config stops apply before it
changes anything; ``--dry-run`` prints the plan and stops there.

    >>> project = Project.parse('''
    ... name: churn
    ... profile: local
    ... settings: {MLSTREAM_TOPIC_PREFIX: churn., MLSTREAM_MODEL: churn.model}
    ... topics: [{name: churn.events, schema: schemas/events.avsc}]
    ... configs: {lineage: lineage.yml}
    ... ''', Path("/p"))
    >>> project.topics, project.configs, project.environment()["MLSTREAM_MODEL"]
    ([('churn.events', PosixPath('/p/schemas/events.avsc'))], {'lineage': PosixPath('/p/lineage.yml')}, 'churn.model')
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError

import models
from apps.scorer.lineage import LINEAGE_CONFIG, LINEAGE_USER, build_version
from mlstream import config_store
from mlstream.config_checks import check_config
from mlstream.errors import UserError
from mlstream.kafka import clients, problems
from mlstream.kafka.serde import schema_text, value_subject
from mlstream.kafka.topics import TopicSpec, create_topics, durable, project_topics, register_value_schema
from mlstream.lineage.config import load_lineage_yaml
from mlstream.lineage.model_lineage import model_build_notification, registry_lookup
from mlstream.lineage.spool import lineage_emitter
from mlstream.registry.training import build_settings_from_yaml
from mlstream.security import configs as security_configs
from mlstream.settings import DEFAULTS, Settings
from tools.new_project import PROJECT_FILE, ProjectError
from tools.security_admin import admin_settings, apply_policies, make_plan

Say = Callable[[str], None]
COMPATIBILITY = "BACKWARD"
#: The config of the model's build settings (``mlstream models build MODEL --config model``).
MODEL_CONFIG = "model"
#: Stored first: the policy files are checked against the stored directory.
CONFIG_ORDER = (security_configs.DIRECTORY,)
PROJECT_KEYS = {"name", "profile", "settings", "topics", "configs"}


@dataclass(frozen=True)
class Project:
    path: Path
    name: str
    profile: str
    settings: dict[str, str]
    topics: list[tuple[str, Path]]  # (topic, its value schema's .avsc)
    configs: dict[str, Path] = field(default_factory=dict)  # config name -> file

    @classmethod
    def load(cls, path: Path) -> "Project":
        file = path / PROJECT_FILE
        try:
            return cls.parse(file.read_text(encoding="utf-8"), path)
        except OSError as err:
            raise ProjectError(f"cannot read {file}: {err.strerror}") from None

    @classmethod
    def parse(cls, text: str, path: Path) -> "Project":
        where = path / PROJECT_FILE
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ProjectError(f"{where} is not valid YAML: {err}") from None
        if not isinstance(raw, dict) or not {"name", "settings"} <= set(raw):
            raise ProjectError(f"{where}: expected a mapping with name, settings, topics and configs")
        unknown = sorted(set(raw) - PROJECT_KEYS)
        if unknown:
            raise ProjectError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: "
                               f"{', '.join(sorted(PROJECT_KEYS))}")
        settings = {str(k): str(v) for k, v in (raw.get("settings") or {}).items()}
        wrong = sorted(k for k in settings if k not in DEFAULTS or k == "MLSTREAM_PROFILE")
        if wrong:
            raise ProjectError(f"{where}: settings {', '.join(wrong)} are not mlstream settings (MLSTREAM_* of "
                               f"'mlstream --help'; the profile is the key 'profile')")
        try:
            topics = [(str(t["name"]), path / t["schema"]) for t in raw.get("topics") or []]
        except (TypeError, KeyError) as err:
            raise ProjectError(f"{where}: each topic is {{name: TOPIC, schema: FILE.avsc}} (missing {err})") from None
        configs = {str(name): path / file for name, file in (raw.get("configs") or {}).items()}
        return cls(path, str(raw["name"]), str(raw.get("profile") or "local"), settings, topics, configs)

    def environment(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """What a command run for the project gets on top of ``environ``: the project's settings, its folder on
        PYTHONPATH (its model spec), the running installation's bin folder first on PATH."""
        environ = os.environ if environ is None else environ
        python_path = os.pathsep.join(p for p in (str(self.path), environ.get("PYTHONPATH", "")) if p)
        path = os.pathsep.join(p for p in (str(Path(sys.executable).parent), environ.get("PATH", "")) if p)
        return self.settings | {"PYTHONPATH": python_path, "PATH": path}

    def settings_for(self, profile: str, config: str, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        return Settings.from_env(dict(environ) | self.settings, profile=profile or self.profile, config=config)


@dataclass
class Plan:
    """What apply would change, one line each, and the notes on what it does not do."""

    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def is_secured(settings: Settings) -> bool:
    return dict(settings.kafka_security).get("security.protocol", "PLAINTEXT").upper().startswith("SASL")


def apply(project: Project, settings: Settings, *, dry_run: bool, say: Say = print) -> Plan:
    """Make the broker and registry match the project (or, with ``dry_run``, say what that would change)."""
    problems.check_kafka(settings)
    plan = _run(project, settings, dry_run=True)
    if not dry_run:
        plan = _run(project, settings, dry_run=False)
    for line in plan.changes:
        say(("would " if dry_run else "") + line)
    for line in plan.notes:
        say(line)
    if not plan.changes:
        say(f"nothing changed: all {len(plan.unchanged)} topics, schemas, configs (and ACLs) as the project has them")
    elif dry_run:
        say(f"{len(plan.changes)} change(s) planned (dry run: nothing done)")
    else:
        say(f"{len(plan.changes)} change(s) made; {len(plan.unchanged)} already in place")
    return plan


def _run(project: Project, settings: Settings, *, dry_run: bool) -> Plan:
    plan = Plan()
    if str(project.path) not in sys.path:
        sys.path.insert(0, str(project.path))  # the model spec of its config 'model' is the project's module
    texts = {name: _read(path) for name, path in project.configs.items()}
    admin = clients.admin(settings)
    registry = clients.registry_client(settings)
    specs = project_topics(settings) + [durable(TopicSpec(name, settings.partitions, None), settings)
                                        for name, _ in project.topics]
    _topics(admin, specs, plan, dry_run)
    schemas = [(spec.name, schema_text(spec.schema), f"mlstream's {spec.schema}.avsc") for spec in specs
               if spec.schema] + [(name, _read(path), str(path.relative_to(project.path)))
                                  for name, path in project.topics]
    for topic, text, source in schemas:
        _schema(registry, topic, text, source, plan, dry_run)
    store = config_store.open_config_store(settings)
    planned = _Planned(store) if dry_run else store
    stored = {}
    for name in sorted(texts, key=lambda name: (name not in CONFIG_ORDER, list(texts).index(name))):
        stored[name] = _config(planned, settings, name, texts[name], project, plan, dry_run)
        if dry_run and stored[name]:
            planned.texts[name] = texts[name]
    _policies(settings, planned, stored, plan, dry_run)
    if stored.get(LINEAGE_CONFIG) and not dry_run:
        _report_lineage(settings, registry, texts[LINEAGE_CONFIG], stored[LINEAGE_CONFIG], plan)
    elif stored.get(LINEAGE_CONFIG):
        plan.changes.append(f"report the lineage of {settings.model} (its topics -> build "
                            f"{build_version(settings)}) to {settings.atlas_url or settings.topics.atlas_hook}")
    return plan


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise ProjectError(f"cannot read {path}: {err.strerror} (named in {PROJECT_FILE})") from None


def _topics(admin, specs: list[TopicSpec], plan: Plan, dry_run: bool) -> None:
    existing = admin.list_topics(timeout=15).topics
    missing = [spec for spec in specs if spec.name not in existing]
    plan.unchanged += [f"topic {spec.name}" for spec in specs if spec.name in existing]
    if not dry_run:
        create_topics(admin, specs, lambda line: None)  # also checks the existing ones' partition counts
    plan.changes += [f"create topic {spec.name} ({spec.partitions} partitions)" for spec in missing]


def _schema(registry, topic: str, text: str, source: str, plan: Plan, dry_run: bool) -> None:
    subject = value_subject(topic)
    schema = Schema(text, "AVRO")
    try:
        registry.lookup_schema(subject, schema)
        level = _compatibility(registry, subject)
        if level == COMPATIBILITY:
            plan.unchanged.append(f"schema {subject}")
            return
        change = f"set {subject} compatibility {COMPATIBILITY} (was {level or 'the registry default'})"
    except SchemaRegistryError as err:
        if err.http_status_code != 404:
            raise
        versions = _versions(registry, subject)
        if versions and not registry.test_compatibility(subject, schema):
            raise ProjectError(f"{source}: not {COMPATIBILITY} compatible with the latest version of {subject} "
                               f"(version {versions[-1]}): readers of the topic could not read its records; "
                               f"add fields with defaults, do not remove or retype fields without one") from None
        change = f"register {source} as {subject} version {(versions[-1] + 1) if versions else 1} ({COMPATIBILITY})"
    if not dry_run:
        version = register_value_schema(registry, topic, text, lambda line: None, COMPATIBILITY)
        change = change.split(" version ")[0] + f" version {version} ({COMPATIBILITY})" \
            if change.startswith("register") else change
    plan.changes.append(change)


def _compatibility(registry, subject: str) -> str | None:
    try:
        return registry.get_compatibility(subject)
    except SchemaRegistryError as err:
        if err.http_status_code != 404:
            raise
        return None


def _versions(registry, subject: str) -> list[int]:
    try:
        return sorted(registry.get_versions(subject))
    except SchemaRegistryError as err:
        if err.http_status_code != 404:
            raise
        return []


class _Planned:
    """The store as it would be after the configs planned so far: a dry run checks policies against the
    directory it would store."""

    def __init__(self, store: config_store.ConfigStore):
        self.store = store
        self.texts: dict[str, str] = {}

    def get(self, name: str, version: int | None = None) -> config_store.ConfigVersion:
        if name in self.texts and version is None:
            return config_store.ConfigVersion(name, 0, self.texts[name])
        return self.store.get(name, version)

    def history(self, name: str) -> list[config_store.ConfigVersion]:
        return self.store.history(name)

    def put(self, name: str, text: str) -> int:
        raise AssertionError("a dry run stores nothing")


def _config(store: config_store.ConfigStore, settings: Settings, name: str, text: str, project: Project, plan: Plan,
            dry_run: bool) -> int | None:
    """Store config ``name`` if its text changed: its new version, or None if it was already the latest."""
    source = str(project.configs[name].relative_to(project.path))
    check_config(store, settings.topics, name, text, source)
    if name == MODEL_CONFIG:
        spec = build_settings_from_yaml(text, source).get("spec")
        if spec:
            try:
                models.check(spec)
            except ValueError as err:
                raise ProjectError(f"{source}: {err}") from None
    try:
        latest = store.get(name)
    except config_store.ConfigNotFound:
        latest = None
    if latest is not None and latest.text == text:
        plan.unchanged.append(f"config {name}")
        return None
    if dry_run:
        plan.changes.append(f"store {source} as config {name} version {(latest.version + 1) if latest else 1}")
        return (latest.version + 1) if latest else 1
    version = store.put(name, text)
    plan.changes.append(f"store {source} as config {name} version {version}")
    return version


def _policies(settings: Settings, store: config_store.ConfigStore, stored: dict[str, int | None], plan: Plan,
              dry_run: bool) -> None:
    if security_configs.DIRECTORY not in stored:
        return
    if not is_secured(settings):
        plan.notes.append(f"policies: stored as configs, not enforced: profile {settings.profile}'s broker "
                          f"({settings.bootstrap_servers}) is not secured (no SASL, no authorizer); "
                          f"'--profile secure-local' enforces them")
        return
    # A project owns the ACLs on its own topics and groups (both named with its prefix) only: its teams' users
    # may be in other projects too. A project name has no '.', so no project's prefix starts another's.
    namespace = (settings.topics.prefix,)
    planned, _ = make_plan(settings, store, clients.admin(admin_settings(settings)), namespace)
    outside = [acl for acl in planned.create if not acl.name.startswith(namespace)]
    if outside:
        raise ProjectError(f"the project's policies grant outside its topics and groups ({' or '.join(namespace)}"
                           f"...): {'; '.join(map(str, outside))}; a project's policies name its own resources, "
                           f"'mlstream security apply' the rest")
    if not dry_run:
        planned = apply_policies(settings, store, namespace)
    plan.changes += [f"add user {user} (SCRAM)" for user in planned.users_to_create]
    plan.changes += [f"create ACL {acl}" for acl in planned.create] + [f"delete ACL {acl}" for acl in planned.delete]
    plan.unchanged += [f"ACL {acl}" for acl in planned.keep]


def _report_lineage(settings: Settings, registry, text: str, version: int, plan: Plan) -> None:
    lineage = load_lineage_yaml(text, f"config {LINEAGE_CONFIG} v{version}")
    entry = lineage.get(settings.model)
    if entry is None:
        raise UserError(f"lineage.yml has no entry for the project's model {settings.model!r} "
                        f"(MLSTREAM_MODEL); the app reports only that entry")
    topics = set(clients.admin(settings).list_topics(timeout=10).topics)
    note = model_build_notification(entry, build_version(settings), settings.atlas_namespace,
                                    bootstrap_servers=settings.bootstrap_servers, existing_topics=topics,
                                    schema_lookup=registry_lookup(registry), user=LINEAGE_USER)
    emitter = lineage_emitter(settings, key=f"project-{settings.app_id}")
    emitter.emit(note)
    emitter.flush()
    plan.changes.append(f"report the lineage of {settings.model} (its topics -> build {build_version(settings)}) "
                        f"to {settings.atlas_url or settings.topics.atlas_hook}")
