"""Security configs are checked against each other before they are stored; a failed check stores nothing."""

from __future__ import annotations

import pytest

from mlstream.config_store import FolderConfigStore
from mlstream.security import configs
from mlstream.security.directory import SecurityConfigError
from mlstream.security import EXAMPLES



def test_policies_need_the_directory_and_the_directory_may_not_drop_a_user_a_policy_names(tmp_path):
    store = FolderConfigStore(tmp_path)
    policies = (EXAMPLES / "kafka-policies.json").read_text()
    with pytest.raises(SecurityConfigError, match="store the directory first"):
        configs.check(store, "security.kafka", policies, "k.json")
    directory = (EXAMPLES / "directory.yaml").read_text()
    configs.check(store, configs.DIRECTORY, directory, "d.yaml")
    store.put(configs.DIRECTORY, directory)
    configs.check(store, "security.kafka", policies, "k.json")
    store.put("security.kafka", policies)
    without_churn = directory.replace("churn-chen:\n    groups: [churn]", "churn-chen:\n    groups: []")
    with pytest.raises(SecurityConfigError, match=r"(?s)the stored security.kafka would no longer hold.*group 'churn' "
                                                  r"has no member"):
        configs.check(store, configs.DIRECTORY, without_churn, "d.yaml")
    assert configs.load_directory(store).version == 1 and configs.every_user(store) == {"owner-olga", "fraud-fay",
                                                                                        "churn-chen"}


def test_only_the_known_security_configs_exist():
    with pytest.raises(SecurityConfigError, match="the security configs are security.directory, security.kafka, "
                                                  "security.hive"):
        configs.check(FolderConfigStore("/nonexistent"), "security.spark", "{}", "x")
