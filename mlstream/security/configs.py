"""The security configs, versioned in the config store like the others (history, diff, rollback).

* ``security.directory``: the directory YAML (users, their groups and attributes);
* ``security.kafka``: the Ranger policy file of the Kafka service (topics, groups, ...);
* ``security.hive``: the Ranger policy file of the hive-type service that names datasets and their fields.

A text is checked before it is stored (:func:`check`): a policy file against the stored
directory, a directory against the stored policy files (a user or group a policy names may
not disappear). A text that fails is never stored, so the version in force stays the last good one.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlstream.config_store import ConfigNotFound, ConfigStore
from mlstream.security.directory import Directory, SecurityConfigError
from mlstream.security.policies import PolicyFile

PREFIX = "security."
DIRECTORY = "security.directory"
POLICY_CONFIGS = {"security.kafka": "kafka", "security.hive": "hive"}
NAMES = (DIRECTORY, *POLICY_CONFIGS)


@dataclass(frozen=True)
class Versioned:
    """A parsed config and the store's version of it."""

    version: int
    value: Directory | PolicyFile


def is_security_config(name: str) -> bool:
    return name.startswith(PREFIX)


def check(store: ConfigStore, name: str, text: str, source: str) -> Directory | PolicyFile:
    """Parse ``text`` as config ``name`` and check it against the other stored security configs."""
    if name not in NAMES:
        raise SecurityConfigError(f"{name}: the security configs are {', '.join(NAMES)}")
    if name == DIRECTORY:
        directory = Directory.parse(text, source)
        for policy_name in POLICY_CONFIGS:
            stored = _latest_text(store, policy_name)
            if stored is not None:
                try:
                    PolicyFile.parse(stored[1], f"{policy_name}@v{stored[0]}", directory, POLICY_CONFIGS[policy_name])
                except SecurityConfigError as err:
                    raise SecurityConfigError(f"{source}: the stored {policy_name} would no longer hold with this "
                                              f"directory; change the policies first:\n{err}") from None
        return directory
    stored_directory = load_directory(store)
    directory = stored_directory.value if stored_directory else None
    if directory is None:
        raise SecurityConfigError(f"{name} names users and groups: store the directory first "
                                  f"('mlstream config put {DIRECTORY} FILE')")
    return PolicyFile.parse(text, source, directory, POLICY_CONFIGS[name])


def load_directory(store: ConfigStore, version: int | None = None) -> Versioned | None:
    stored = _latest_text(store, DIRECTORY, version)
    return Versioned(stored[0], Directory.parse(stored[1], f"{DIRECTORY}@v{stored[0]}")) if stored else None


def load_policies(store: ConfigStore, name: str, directory: Directory,
                  version: int | None = None) -> Versioned | None:
    """The stored policy file ``name`` (security.kafka, security.hive), checked against ``directory``."""
    stored = _latest_text(store, name, version)
    if stored is None:
        return None
    return Versioned(stored[0], PolicyFile.parse(stored[1], f"{name}@v{stored[0]}", directory, POLICY_CONFIGS[name]))


def every_user(store: ConfigStore) -> set[str]:
    """Every user of every version of the directory: the principals whose ACLs ``security apply`` owns."""
    return {user for v in store.history(DIRECTORY) for user in Directory.parse(v.text, f"{DIRECTORY}@v{v.version}")
            .users}


def _latest_text(store: ConfigStore, name: str, version: int | None = None) -> tuple[int, str] | None:
    try:
        stored = store.get(name, version)
    except ConfigNotFound:
        return None
    return stored.version, stored.text
