"""Versioned YAML configs (lineage YAML, model configs, linkage configs): put, get, history.

``ConfigStore`` is the interface; ``SchemaRegistryConfigStore`` keeps configs in the Schema
Registry the streams already use, ``FolderConfigStore`` in a folder (the embedded one).
Both number versions 1, 2, 3, ... per config name; a ``put`` of the text the latest version
already holds changes nothing and returns that version, and putting an old text again (a
rollback) makes a new version, so the history only grows.

    >>> import tempfile
    >>> store = FolderConfigStore(tempfile.mkdtemp())
    >>> store.put("lineage", "owner: ml-team\\n"), store.put("lineage", "owner: data-team\\n")
    (1, 2)
    >>> store.put("lineage", "owner: data-team\\n")   # identical to the latest: no new version
    2
    >>> store.get("lineage").text, store.get("lineage", 1).text
    ('owner: data-team\\n', 'owner: ml-team\\n')
    >>> [v.version for v in store.history("lineage")]
    [1, 2]

How a YAML document is held in an Avro-only registry
----------------------------------------------------
Only the Confluent API subset that Cloudera's registry also offers is used (subjects,
versions, register, lookup; no ``/config``, deletes, schemaType, references, metadata or
rule sets). Config ``<name>`` is the subject ``<prefix>config.<name>`` (``mlstream.config.lineage``
by default); each version is an Avro record schema with no fields::

    {"type": "record", "name": "Config", "namespace": "mlstream.config",
     "doc": "<the YAML text, unchanged>", "fields": [],
     "mlstream.config.name": "lineage", "mlstream.config.sha256": "<hex of the text>",
     "mlstream.config.previous": 2}

* The text is the record's ``doc``, which every Avro registry stores and returns as given.
* A record without fields, always named ``mlstream.config.Config``, is compatible with every
  other version under every compatibility level (BACKWARD, FORWARD, FULL, *_TRANSITIVE): the
  registry's check can never block a config change, and the subject's level needs no change
  (which Cloudera's registry could not make anyway).
* Registries decide "already registered" differently. Confluent compares the whole schema
  string (doc and custom properties included). Apicurio 3.3 ignores ``doc`` but compares
  custom properties: registering a schema that differs from an existing version only in its
  ``doc`` silently returns that version. So each version also carries the text's SHA-256 and
  the version it replaced as custom properties: a changed text always differs in a property,
  and a rollback to an old text differs from that old version in ``previous``. Both
  registries keep custom properties and return them; ``get`` checks the hash against the
  text and refuses a version whose text the registry altered.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from mlstream.errors import UserError
from mlstream.kafka.clients import registry_client

CONFIG_RECORD_NAME = "Config"
CONFIG_RECORD_NAMESPACE = "mlstream.config"
NAME_PROPERTY = "mlstream.config.name"
SHA256_PROPERTY = "mlstream.config.sha256"
PREVIOUS_PROPERTY = "mlstream.config.previous"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True)
class ConfigVersion:
    name: str
    version: int
    text: str


class ConfigNotFound(UserError):
    pass


class ConfigStoreError(UserError):
    """The store cannot be reached or holds something that is not one of our configs."""


class ConfigStore(Protocol):
    def put(self, name: str, text: str) -> int:
        """Store ``text`` as the newest version of ``name`` (unless it already is); return its version."""

    def get(self, name: str, version: int | None = None) -> ConfigVersion:
        """The latest version of ``name``, or ``version``; raise ConfigNotFound if missing."""

    def history(self, name: str) -> list[ConfigVersion]:
        """Every version of ``name``, oldest first; empty if there is none."""


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UserError(f"config name {name!r}: use letters, digits, '.', '_' and '-' (e.g. 'lineage')")
    return name


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ----- the Schema Registry ------------------------------------------------------------------

def config_schema(name: str, text: str, previous: int) -> str:
    """The Avro schema text that holds version ``previous + 1`` (or later) of config ``name``."""
    return json.dumps({
        "type": "record",
        "name": CONFIG_RECORD_NAME,
        "namespace": CONFIG_RECORD_NAMESPACE,
        "doc": text,
        "fields": [],
        NAME_PROPERTY: name,
        SHA256_PROPERTY: text_sha256(text),
        PREVIOUS_PROPERTY: previous,
    })


def config_text(schema_str: str, where: str) -> str:
    """The YAML text held by a config schema; raise ConfigStoreError if it is not one."""
    try:
        schema = json.loads(schema_str)
        text, sha = schema["doc"], schema[SHA256_PROPERTY]
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigStoreError(f"{where} is not an mlstream config schema (missing {err}); "
                               f"was the subject written by something else?") from err
    if text_sha256(text) != sha:
        raise ConfigStoreError(f"{where}: the registry returned a text whose SHA-256 differs from the one "
                               f"stored with it; the registry altered the schema's doc")
    return text


class SchemaRegistryConfigStore:
    """Configs as subjects ``<subject_prefix>config.<name>`` of a Confluent-API Schema Registry."""

    def __init__(self, client: SchemaRegistryClient, subject_prefix: str = "mlstream."):
        self.client = client
        self.subject_prefix = subject_prefix

    def subject(self, name: str) -> str:
        return f"{self.subject_prefix}config.{check_name(name)}"

    def put(self, name: str, text: str) -> int:
        subject = self.subject(name)
        latest = self._latest_or_none(name)
        if latest is not None and latest.text == text:
            return latest.version
        schema = Schema(config_schema(name, text, latest.version if latest else 0), "AVRO")
        try:
            self.client.register_schema(subject, schema)
            return self.client.lookup_schema(subject, schema).version
        except SchemaRegistryError as err:
            raise ConfigStoreError(f"registry refused {subject}: {err}") from err
        except Exception as err:
            raise self._unreachable(err) from err

    def get(self, name: str, version: int | None = None) -> ConfigVersion:
        subject = self.subject(name)
        try:
            # get_version("latest") asks the registry each time; get_latest_version caches forever.
            registered = self.client.get_version(subject, "latest" if version is None else version)
        except SchemaRegistryError as err:
            if err.http_status_code == 404:
                which = "version" if version is None else f"version {version}"
                raise ConfigNotFound(f"config {name!r} has no {which} in the registry (subject {subject}); "
                                     f"store one with 'mlstream config put {name} FILE'") from err
            raise ConfigStoreError(f"registry error reading {subject}: {err}") from err
        except Exception as err:
            raise self._unreachable(err) from err
        where = f"{subject} version {registered.version}"
        return ConfigVersion(name, registered.version, config_text(registered.schema.schema_str, where))

    def history(self, name: str) -> list[ConfigVersion]:
        subject = self.subject(name)
        try:
            versions = self.client.get_versions(subject)
        except SchemaRegistryError as err:
            if err.http_status_code == 404:
                return []
            raise ConfigStoreError(f"registry error listing {subject}: {err}") from err
        except Exception as err:
            raise self._unreachable(err) from err
        return [self.get(name, version) for version in sorted(versions)]

    def _latest_or_none(self, name: str) -> ConfigVersion | None:
        try:
            return self.get(name)
        except ConfigNotFound:
            return None

    def _unreachable(self, err: Exception) -> ConfigStoreError:
        return ConfigStoreError(f"Schema Registry not reachable ({type(err).__name__}: {err}); "
                                f"check MLSTREAM_SCHEMA_REGISTRY_URL or start it with 'mlstream up'")


# ----- a folder -----------------------------------------------------------------------------

class FolderConfigStore:
    """Configs as files ``<root>/<name>/<version>.yaml``; a version, once written, never changes."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, name: str, version: int) -> Path:
        return self.root / check_name(name) / f"{version}.yaml"

    def put(self, name: str, text: str) -> int:
        folder = self.root / check_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            latest = self._versions(name)[-1:] or [0]
            if latest[0] and self.get(name, latest[0]).text == text:
                return latest[0]
            version = latest[0] + 1
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".put-")
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            try:
                # link() fails if the version exists: two writers never both get the same number.
                os.link(tmp, self.path(name, version))
                return version
            except FileExistsError:
                continue
            finally:
                os.unlink(tmp)

    def get(self, name: str, version: int | None = None) -> ConfigVersion:
        if version is None:
            versions = self._versions(name)
            if not versions:
                raise ConfigNotFound(f"config {name!r} has no version in {self.root}; "
                                     f"store one with 'mlstream config put {name} FILE'")
            version = versions[-1]
        path = self.path(name, version)
        if not path.exists():
            raise ConfigNotFound(f"config {name!r} has no version {version} in {self.root}")
        return ConfigVersion(name, version, path.read_bytes().decode("utf-8"))

    def history(self, name: str) -> list[ConfigVersion]:
        return [self.get(name, version) for version in self._versions(name)]

    def _versions(self, name: str) -> list[int]:
        folder = self.root / check_name(name)
        if not folder.is_dir():
            return []
        return sorted(int(p.stem) for p in folder.glob("*.yaml") if p.stem.isdigit())


# ----- what the CLI does with a store -------------------------------------------------------

def open_config_store(settings, folder: str | os.PathLike | None = None) -> ConfigStore:
    """The registry of ``settings`` (subjects under the topic prefix), or ``folder`` if given."""
    if folder is not None:
        return FolderConfigStore(folder)
    return SchemaRegistryConfigStore(registry_client(settings), settings.topics.prefix)


def diff(store: ConfigStore, name: str, old: int, new: int | None = None) -> str:
    """A unified diff from version ``old`` to ``new`` (default: the latest); "" if equal."""
    before, after = store.get(name, old), store.get(name, new)
    return "".join(difflib.unified_diff(
        before.text.splitlines(keepends=True), after.text.splitlines(keepends=True),
        fromfile=f"{name}@v{before.version}", tofile=f"{name}@v{after.version}"))


def rollback(store: ConfigStore, name: str, version: int) -> int:
    """Make the text of ``version`` the latest again, as a new version (history is kept)."""
    return store.put(name, store.get(name, version).text)
