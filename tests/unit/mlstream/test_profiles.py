"""Settings files and profiles: which file, which profile, what the environment overrides, what is masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlstream import profiles
from mlstream.errors import UserError
from mlstream.settings import Settings

CLOUD = """
[profiles.cloud]
bootstrap_servers = "pkc-1.eu-west-1.aws.confluent.cloud:9092"
schema_registry_url = "https://psrc-1.eu-west-1.aws.confluent.cloud"
replication_factor = 3
min_insync_replicas = 2

[profiles.cloud.kafka]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "PLAIN"
"sasl.username" = "KEY"
"sasl.password" = "${CC_SECRET}"

[profiles.cloud.schema_registry]
"basic.auth.credentials.source" = "USER_INFO"
"basic.auth.user.info" = "SRKEY:plain-secret"
"""


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "mlstream.toml"
    path.write_text(CLOUD)
    return path


def test_local_is_the_default_and_needs_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"HOME": str(tmp_path)})
    assert settings.profile == "local" and settings.kafka_security == () and settings.replication_factor == 1
    assert settings.bootstrap_servers == "localhost:9092"


def test_a_profile_from_the_file_sets_values_and_client_tables(settings_file):
    settings = Settings.from_env({"MLSTREAM_CONFIG": str(settings_file)}, profile="cloud")
    assert settings.bootstrap_servers == "pkc-1.eu-west-1.aws.confluent.cloud:9092"
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
    assert dict(settings.kafka_security)["sasl.password"] == "${CC_SECRET}"  # read only when a client is built
    assert settings.config_file == str(settings_file)


def test_a_variable_overrides_one_value_of_the_profile(settings_file):
    settings = Settings.from_env({"MLSTREAM_CONFIG": str(settings_file), "MLSTREAM_PROFILE": "cloud",
                                  "MLSTREAM_REPLICATION_FACTOR": "2"})
    assert settings.replication_factor == 2 and settings.min_insync_replicas == 2


def test_the_file_is_found_in_the_working_directory_then_the_home_config(tmp_path, settings_file):
    home = tmp_path / "home"
    (home / ".config" / "mlstream").mkdir(parents=True)
    (home / ".config" / "mlstream" / "mlstream.toml").write_text("")
    assert profiles.find_settings_file("", cwd=tmp_path, home=home) == settings_file
    assert profiles.find_settings_file("", cwd=home, home=home) == home / ".config" / "mlstream" / "mlstream.toml"
    assert profiles.find_settings_file("", cwd=home / ".config", home=tmp_path / "nowhere") is None


def test_settings_travel_to_a_child_process_by_profile_name_not_by_secret(settings_file):
    settings = Settings.from_env({"MLSTREAM_CONFIG": str(settings_file)}, profile="cloud")
    env = settings.to_env()
    assert env["MLSTREAM_PROFILE"] == "cloud" and env["MLSTREAM_CONFIG"] == str(settings_file)
    assert not any("plain-secret" in value for value in env.values())
    assert Settings.from_env(env) == settings


@pytest.mark.parametrize("text, message", [
    ("[profiles.x]\nbootstrap = 'b:1'", "unknown key 'bootstrap'; a profile sets kafka.*, schema_registry.* and"),
    ("[profiles.x.kafka]\n'security.protocol' = 'TLS'", "kafka.security.protocol 'TLS' is not one of PLAINTEXT, SSL"),
    ("[profiles.x.kafka]\n'security.protocol' = 'SASL_SSL'", "SASL_SSL needs kafka.sasl.mechanism"),
    ("[profiles.x.kafka]\n'security.protocol' = 'SASL_SSL'\n'sasl.mechanism' = 'NTLM'", "'NTLM' is not one of PLAIN"),
    ("[profiles.x\n", "not valid TOML"),
    ("[other]\n", "expected only [profiles.NAME] tables, found other"),
])
def test_a_broken_profile_says_which_file_and_key(tmp_path, text, message):
    path = tmp_path / "mlstream.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=str(path)) as raised:
        Settings.from_env({"MLSTREAM_CONFIG": str(path)}, profile="x")
    assert message in str(raised.value)


def test_an_unknown_profile_lists_the_known_ones(settings_file):
    with pytest.raises(UserError, match="no profile 'prod' in .*; known profiles: cloud, local, secure-local"):
        Settings.from_env({"MLSTREAM_CONFIG": str(settings_file)}, profile="prod")
    with pytest.raises(UserError, match="does not exist"):
        Settings.from_env({"MLSTREAM_CONFIG": str(settings_file.parent / "missing.toml")})


def test_secure_local_has_its_own_ports_and_services_dir(tmp_path):
    environ = {"MLSTREAM_STATE_DIR": str(tmp_path), "MLSTREAM_KAFKA_PORT": "19192",
               "MLSTREAM_SECURE_LOCAL_KAFKA_PORT": "19194", "MLSTREAM_SECURE_LOCAL_REGISTRY_PORT": "19196"}
    settings = Settings.from_env(environ, profile="secure-local")
    assert (settings.kafka_port, settings.bootstrap_servers) == (19194, "localhost:19194")
    assert settings.schema_registry_url == "http://localhost:19196/apis/ccompat/v7"
    assert settings.local_services_dir == tmp_path / "secure-local"
    security = dict(settings.kafka_security)
    assert security["sasl.password"] == f"file:{tmp_path / 'secure-local' / 'secrets' / 'mlstream.password'}"
    assert security["ssl.ca.location"] == str(tmp_path / "secure-local" / "tls" / "ca.pem")
    # an app of one test keeps its own state dir, and still finds the broker's secrets
    child = Settings.from_env(settings.to_env() | {"MLSTREAM_STATE_DIR": str(tmp_path / "app")})
    assert child.kafka_security == settings.kafka_security and child.state_dir == tmp_path / "app"
    # without MLSTREAM_STATE_DIR, its apps keep their state beside the broker, apart from the plain broker's apps
    alone = Settings.from_env({}, profile="secure-local")
    assert alone.state_dir == alone.local_services_dir == Path(".mlstream/secure-local").absolute()


def test_secrets_are_masked_with_where_they_come_from():
    assert profiles.mask("sasl.password", "hunter2") == "****"
    assert profiles.mask("basic.auth.user.info", "k:s") == "****"
    assert profiles.mask("sasl.oauthbearer.client.secret", "file:/etc/secret") == "**** (from file:/etc/secret)"
    assert profiles.mask("ssl.key.password", "${KEY_PW}") == "**** (from ${KEY_PW})"
    assert profiles.mask("ssl.ca.location", "/ca.pem") == "/ca.pem"


def test_a_secret_file_that_cannot_be_read_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"sasl.password is read from .*missing, which cannot be read"):
        profiles.resolve_secret("sasl.password", f"file:{tmp_path / 'missing'}")
    (tmp_path / "pw").write_text("  pw\n")
    assert profiles.resolve_secret("sasl.password", f"file:{tmp_path / 'pw'}") == "pw"
