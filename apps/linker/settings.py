"""Settings of the linkage app, beside the shared ones, and how its config is found.

``MLSTREAM_LINKAGE_CONFIG`` names the linkage config: a YAML file path, the name of a
bundled config (``febrl``, ``febrl-dedupe``: ``linkage/configs/``), or
``registry:<name>`` / ``registry:<name>@<version>`` for a config stored in the Schema
Registry with ``mlstream config put`` (latest version unless one is given).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from linkage.config import ConfigError, LinkageConfig
from mlstream.config_store import SchemaRegistryConfigStore
from mlstream.kafka.clients import registry_client
from mlstream.settings import Settings

DEFAULTS = {
    "MLSTREAM_LINKAGE_CONFIG": "febrl",
    "MLSTREAM_LINKAGE_APP_ID": "mlstream-linkage",
    "MLSTREAM_LINKAGE_WEB_PORT": "6067",
    # Subject prefix of registry configs; empty: the topic prefix, as `mlstream config` uses it.
    "MLSTREAM_LINKAGE_CONFIG_STORE_PREFIX": "",
}
REGISTRY_PREFIX = "registry:"


@dataclass(frozen=True)
class LinkageSettings:
    config: str
    app_id: str
    web_port: int
    config_store_prefix: str = ""

    @classmethod
    def from_env(cls) -> "LinkageSettings":
        def env(name):
            return os.environ.get(name, DEFAULTS[name])

        return cls(env("MLSTREAM_LINKAGE_CONFIG"), env("MLSTREAM_LINKAGE_APP_ID"),
                   int(env("MLSTREAM_LINKAGE_WEB_PORT")), env("MLSTREAM_LINKAGE_CONFIG_STORE_PREFIX"))

    def to_env(self) -> dict[str, str]:
        return {"MLSTREAM_LINKAGE_CONFIG": self.config, "MLSTREAM_LINKAGE_APP_ID": self.app_id,
                "MLSTREAM_LINKAGE_WEB_PORT": str(self.web_port),
                "MLSTREAM_LINKAGE_CONFIG_STORE_PREFIX": self.config_store_prefix}


def load_config(spec: str, settings: Settings, store_prefix: str = "") -> tuple[LinkageConfig, str]:
    """The config ``spec`` names and its version: the registry's, or ``file:<sha256 prefix>``."""
    if spec.startswith(REGISTRY_PREFIX):
        name, _, version = spec[len(REGISTRY_PREFIX):].partition("@")
        if version and not version.isdigit():
            raise ConfigError(f"{spec}: the version after '@' must be a number")
        store = SchemaRegistryConfigStore(registry_client(settings),
                                          store_prefix or settings.topics.prefix)
        stored = store.get(name, int(version) if version else None)
        return LinkageConfig.from_yaml(stored.text, f"{spec} (v{stored.version})"), str(stored.version)
    config = LinkageConfig.from_file(spec)
    return config, "file:" + hashlib.sha256(config.text.encode()).hexdigest()[:12]
