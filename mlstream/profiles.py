"""Connection profiles: which cluster and registry a command talks to, and how it authenticates.

A settings file (``mlstream.toml``: in the working directory, in ``~/.config/mlstream/``, or
named by ``--config`` / ``MLSTREAM_CONFIG``) holds named profiles; ``--profile`` /
``MLSTREAM_PROFILE`` picks one. ``local`` (the broker ``mlstream up`` starts) needs no file,
and neither does ``secure-local`` (the SASL_SSL broker ``mlstream up --profile secure-local``
starts). A profile sets any setting by its variable's name without ``MLSTREAM_`` in lower
case (``bootstrap_servers``, ``replication_factor``...), and two tables: ``kafka`` (librdkafka
keys: ``security.protocol``, ``sasl.*``, ``ssl.*``) and ``schema_registry`` (confluent-kafka's
registry client keys: ``basic.auth.user.info``, ``bearer.auth.*``, ``ssl.*``)::

    [profiles.confluent-cloud]
    bootstrap_servers = "pkc-123.eu-west-1.aws.confluent.cloud:9092"
    replication_factor = 3

    [profiles.confluent-cloud.kafka]
    "security.protocol" = "SASL_SSL"
    "sasl.mechanism" = "PLAIN"
    "sasl.username" = "${CC_API_KEY}"
    "sasl.password" = "${CC_API_SECRET}"

A secret is written as ``${VARIABLE}`` or ``file:/path/to/file`` and read only when a client
is built (:func:`resolve_secret`), so it is never in the settings that are printed or passed on.

>>> profile = load_profile("secure-local", None, {"MLSTREAM_SECURE_LOCAL_KAFKA_PORT": "9500"}, Path("/srv"))
>>> profile.values["MLSTREAM_BOOTSTRAP_SERVERS"], profile.kafka["security.protocol"]
('localhost:9500', 'SASL_SSL')
>>> mask("sasl.password", "hunter2"), mask("sasl.password", "${CC_SECRET}"), mask("sasl.username", "me")
('****', '**** (from ${CC_SECRET})', 'me')
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlstream.errors import UserError

LOCAL = "local"
SECURE_LOCAL = "secure-local"
FILE_NAME = "mlstream.toml"

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI")

#: Ports and the services' state of the secured local broker: its own variables, so it runs beside the plain one.
SECURE_LOCAL_DEFAULTS = {
    "MLSTREAM_SECURE_LOCAL_KAFKA_PORT": "9192",
    "MLSTREAM_SECURE_LOCAL_KAFKA_CONTROLLER_PORT": "9193",
    "MLSTREAM_SECURE_LOCAL_REGISTRY_PORT": "8082",
}
#: The SCRAM user the secured local broker's clients log in as (ACLs on the project's topics and groups),
#: and its super user (the broker itself, and whoever grants ACLs and adds users).
SECURE_LOCAL_USER = "mlstream"
SECURE_LOCAL_SUPER_USER = "admin"

_SECRET_WORDS = ("password", "secret", "user.info", "token", "jaas")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Profile:
    """One profile: setting values by variable name, the ones the environment may not override, client tables."""

    name: str
    source: str  # the file it came from, or "built in"
    values: dict[str, str] = field(default_factory=dict)
    pinned: frozenset[str] = frozenset()
    kafka: dict[str, str] = field(default_factory=dict)
    schema_registry: dict[str, str] = field(default_factory=dict)


def is_secret(key: str) -> bool:
    return any(word in key.lower() for word in _SECRET_WORDS)


def mask(key: str, value: str) -> str:
    """What ``mlstream config show`` prints for a value: a secret masked, with where it comes from."""
    if not is_secret(key):
        return value
    if value.startswith("file:") or _VARIABLE.fullmatch(value):
        return f"**** (from {value})"
    return "****"


def resolve_secret(key: str, value: str, environ: Mapping[str, str] | None = None) -> str:
    """A value with its ``${VARIABLE}`` references and a ``file:`` path replaced by what they hold.

    >>> resolve_secret("sasl.password", "${PW}", {"PW": "s3cret"})
    's3cret'
    >>> resolve_secret("sasl.password", "${NOPE}", {})
    Traceback (most recent call last):
    mlstream.errors.UserError: sasl.password refers to ${NOPE}, which is not set: export it, or write the value in the profile
    """
    environ = os.environ if environ is None else environ
    if value.startswith("file:"):
        path = Path(value[len("file:"):]).expanduser()
        try:
            return path.read_text().strip()
        except OSError as err:
            raise UserError(f"{key} is read from {path}, which cannot be read ({err.strerror})") from None

    def variable(match: re.Match) -> str:
        if match.group(1) not in environ:
            raise UserError(f"{key} refers to ${{{match.group(1)}}}, which is not set: export it, or write "
                            "the value in the profile")
        return environ[match.group(1)]

    return _VARIABLE.sub(variable, value)


def find_settings_file(explicit: str, cwd: Path | None = None, home: Path | None = None) -> Path | None:
    """The settings file: the one named, else ./mlstream.toml, else ~/.config/mlstream/mlstream.toml, else none."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise UserError(f"settings file {path} (--config / MLSTREAM_CONFIG) does not exist")
        return path.absolute()
    for candidate in ((cwd or Path.cwd()) / FILE_NAME, (home or Path.home()) / ".config" / "mlstream" / FILE_NAME):
        if candidate.is_file():
            return candidate.absolute()
    return None


def secure_local_profile(environ: Mapping[str, str], services_dir: Path) -> Profile:
    """The secured local broker: SASL_SSL with SCRAM-SHA-512, its CA and the client's password under its state."""
    port = {name: environ.get(name, default) for name, default in SECURE_LOCAL_DEFAULTS.items()}
    kafka_port = port["MLSTREAM_SECURE_LOCAL_KAFKA_PORT"]
    registry_port = port["MLSTREAM_SECURE_LOCAL_REGISTRY_PORT"]
    values = {
        "MLSTREAM_KAFKA_PORT": kafka_port,
        "MLSTREAM_KAFKA_CONTROLLER_PORT": port["MLSTREAM_SECURE_LOCAL_KAFKA_CONTROLLER_PORT"],
        "MLSTREAM_REGISTRY_PORT": registry_port,
        "MLSTREAM_BOOTSTRAP_SERVERS": f"localhost:{kafka_port}",
        "MLSTREAM_SCHEMA_REGISTRY_URL": f"http://localhost:{registry_port}/apis/ccompat/v7",
        "MLSTREAM_SERVICES_DIR": str(services_dir),
    }
    kafka = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": SECURE_LOCAL_USER,
        "sasl.password": f"file:{services_dir / 'secrets' / SECURE_LOCAL_USER}.password",
        "ssl.ca.location": str(services_dir / "tls" / "ca.pem"),
    }
    # The apps' state (Faust tables, model checkpoints, metrics) beside it too, apart from the plain broker's apps;
    # MLSTREAM_STATE_DIR still moves it.
    return Profile(SECURE_LOCAL, "built in", values | {"MLSTREAM_STATE_DIR": str(services_dir)}, frozenset(values),
                   kafka)


def load_profile(name: str, settings_file: Path | None, environ: Mapping[str, str], state_dir: Path,
                 settable: Collection[str] = ()) -> Profile:
    """The profile ``name``: built in (``local``, ``secure-local``) unless the settings file defines it.

    ``settable``: the variables a profile in the file may set (the settings' table).
    """
    profiles = _read_profiles(settings_file) if settings_file else {}
    if name in profiles:
        return _file_profile(name, profiles[name], settings_file, settable)
    if name == LOCAL:
        return Profile(LOCAL, "built in")
    if name == SECURE_LOCAL:
        services_dir = Path(environ.get("MLSTREAM_SERVICES_DIR") or state_dir / SECURE_LOCAL).absolute()
        return secure_local_profile(environ, services_dir)
    known = sorted({LOCAL, SECURE_LOCAL, *profiles})
    where = f"in {settings_file}" if settings_file else f"(no {FILE_NAME} found: give one with --config)"
    raise UserError(f"no profile {name!r} {where}; known profiles: {', '.join(known)}")


def _read_profiles(path: Path) -> dict:
    try:
        document = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None
    profiles = document.get("profiles", {})
    unknown = set(document) - {"profiles"}
    if unknown or not isinstance(profiles, dict):
        found = ", ".join(sorted(unknown)) or "profiles"
        raise UserError(f"{path}: expected only [profiles.NAME] tables, found {found}")
    return profiles


def _file_profile(name: str, table: dict, path: Path, settable: Collection[str]) -> Profile:
    where = f"{path}, [profiles.{name}]"
    values, kafka, registry = {}, {}, {}
    for key, value in table.items():
        if key == "kafka" and isinstance(value, dict):
            kafka = {str(k): str(v) for k, v in value.items()}
        elif key == "schema_registry" and isinstance(value, dict):
            registry = {str(k): str(v) for k, v in value.items()}
        elif (variable := f"MLSTREAM_{key.upper()}") in settable:
            values[variable] = str(value).lower() if isinstance(value, bool) else str(value)
        else:
            allowed = sorted(k[len("MLSTREAM_"):].lower() for k in settable)
            raise UserError(f"{where}: unknown key {key!r}; a profile sets kafka.*, schema_registry.* "
                            f"and {', '.join(allowed)}")
    _check_kafka(kafka, where)
    return Profile(name, str(path), values, frozenset(), kafka, registry)


def _check_kafka(kafka: dict[str, str], where: str) -> None:
    protocol = kafka.get("security.protocol", "PLAINTEXT").upper()
    if protocol not in SECURITY_PROTOCOLS:
        raise UserError(f"{where}: kafka.security.protocol {protocol!r} is not one of {', '.join(SECURITY_PROTOCOLS)}")
    mechanism = kafka.get("sasl.mechanism", kafka.get("sasl.mechanisms"))
    if mechanism is not None and mechanism.upper() not in SASL_MECHANISMS:
        raise UserError(f"{where}: kafka.sasl.mechanism {mechanism!r} is not one of {', '.join(SASL_MECHANISMS)}")
    if protocol.startswith("SASL") and mechanism is None:
        raise UserError(f"{where}: security.protocol {protocol} needs kafka.sasl.mechanism "
                        f"({', '.join(SASL_MECHANISMS)})")
