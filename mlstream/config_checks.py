"""What a config must pass before it is stored, by its name: ``mlstream config put`` and ``mlstream project apply``
check with the same function, so a text one of them refuses the other refuses too.

    >>> from mlstream.config_store import FolderConfigStore
    >>> import tempfile
    >>> check_config(FolderConfigStore(tempfile.mkdtemp()), Topics(), "lineage", "m:\\n  owner: []\\n", "l.yml")
    Traceback (most recent call last):
    ...
    mlstream.lineage.config.LineageConfigError: ...l.yml:2: m.owner: ...
"""

from __future__ import annotations

from mlstream.config_store import ConfigStore
from mlstream.features import view
from mlstream.lineage.config import load_lineage_yaml
from mlstream.security import configs as security_configs
from mlstream.settings import Topics


def check_config(store: ConfigStore, topics: Topics, name: str, text: str, source: str) -> None:
    """Lineage configs and feature views against their schemas, policy files against the stored directory,
    the directory against the stored policy files; other configs are free text."""
    if name.split(".")[0] == "lineage":
        load_lineage_yaml(text, source)
    if name.startswith(view.CONFIG_PREFIX):
        view.FeatureView.parse(text, source, topics, name=name.removeprefix(view.CONFIG_PREFIX), version="new")
    if security_configs.is_security_config(name):
        security_configs.check(store, name, text, source)
