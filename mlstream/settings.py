"""One place for every setting: the active profile's values, each overridden by its ``MLSTREAM_*`` variable.

The local scripts, docker-compose.yml and the apps all use these names, so a
value set once (in the shell, in compose, in CI) reaches every part. A profile
(``mlstream/profiles.py``: built in, or from ``mlstream.toml``) says which cluster and
registry to use and how to authenticate; ``local``, the default, is the broker
``mlstream up`` starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlstream import profiles
from mlstream.errors import UserError

#: The checkout this code runs from, when it does (an installed copy has none): tests and code_version use it.
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Avro schemas, the lineage YAML schema and Atlas's typedefs: package data of the library.
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"

#: Environment variable -> default. docker-compose.yml is checked against this table.
DEFAULTS: dict[str, str] = {
    "MLSTREAM_BOOTSTRAP_SERVERS": "localhost:9092",
    "MLSTREAM_SCHEMA_REGISTRY_URL": "http://localhost:8081/apis/ccompat/v7",
    "MLSTREAM_KAFKA_PORT": "9092",
    "MLSTREAM_KAFKA_CONTROLLER_PORT": "9093",
    "MLSTREAM_REGISTRY_PORT": "8081",
    "MLSTREAM_WEB_PORT": "6066",
    # The interface the apps' web servers (/stats/, /metrics, /dashboard/) listen on; 0.0.0.0 in a container.
    "MLSTREAM_WEB_BIND": "127.0.0.1",
    # Relative to the working directory (made absolute when read), so an installed copy works anywhere;
    # `make` runs from the repository root, where it is the checkout's .mlstream/ as before.
    "MLSTREAM_STATE_DIR": ".mlstream",
    # Downloads kept across state dirs and checkouts: the local services' jars (~210 MB).
    "MLSTREAM_CACHE_DIR": str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlstream"),
    "MLSTREAM_TOPIC_PREFIX": "mlstream.",
    "MLSTREAM_ATLAS_HOOK_TOPIC": "ATLAS_HOOK",
    "MLSTREAM_ATLAS_NAMESPACE": "primary",
    "MLSTREAM_PARTITIONS": "3",
    "MLSTREAM_MODEL": "logistic_regression",
    "MLSTREAM_MODEL_VERSION": "1",
    "MLSTREAM_APP_ID": "mlstream-scorer",
    "MLSTREAM_METRICS_STORE": "",
    "MLSTREAM_PREDICTION_METRICS": "1",
    "MLSTREAM_CHALLENGER_MODEL": "",
    "MLSTREAM_CHALLENGER_VERSION": "1",
    "MLSTREAM_DRIFT_FEATURES": "",
    # Labels a build learns after it starts serving before a threshold alert; empty: twice the rolling window.
    "MLSTREAM_ALERT_WARM_UP_LABELS": "",
    "MLSTREAM_ATLAS_URL": "",
    "MLSTREAM_LINEAGE_PORT": "21000",
    "MLSTREAM_MODEL_STORE": "",
    "MLSTREAM_S3_ENDPOINT_URL": "",
    # The shared catalog (docs/catalog.md): the Hive metastore's PostgreSQL database (empty: Spark's own
    # in-memory catalog), where its managed tables' files go (empty: <state dir>/spark/warehouse; s3a://...
    # on S3), and the port of the SQL endpoint (Spark's Thrift server) that `mlstream up --with catalog` starts.
    "MLSTREAM_METASTORE_URL": "",
    "MLSTREAM_WAREHOUSE": "",
    "MLSTREAM_THRIFT_PORT": "10000",
    # The data plane (mlstream/streaming/transactional_loop.py): one worker's stable name (its Kafka
    # static membership and transactional id; empty: host name and web port), the batch bounds, and how
    # long a record waits for its label (or a label for its record) before it is dropped and counted.
    "MLSTREAM_WORKER_ID": "",
    "MLSTREAM_BATCH_SIZE": "2000",
    "MLSTREAM_BATCH_WAIT_MS": "100",
    "MLSTREAM_STATE_TTL_S": "86400",
    "MLSTREAM_FEATURE_VIEW": "",
    # Which cluster and registry (mlstream/profiles.py): a profile name, and the settings file that defines it
    # (empty: ./mlstream.toml, else ~/.config/mlstream/mlstream.toml, else only the built-in profiles).
    "MLSTREAM_PROFILE": profiles.LOCAL,
    "MLSTREAM_CONFIG": "",
    # Where `mlstream up` keeps the local services' data, logs and pid files; empty: the state dir.
    "MLSTREAM_SERVICES_DIR": "",
    # For the topics `mlstream init` creates and the Faust apps' own topics; empty min.insync.replicas: the broker's.
    "MLSTREAM_REPLICATION_FACTOR": "1",
    "MLSTREAM_MIN_INSYNC_REPLICAS": "",
    # Largest magnitude of a feature or regression label a model may see (mlstream/scoring/validation.py says why).
    "MLSTREAM_MAX_ABS_VALUE": "1e15",
}

#: The variables a profile in a settings file may set (where it came from is not one of them).
PROFILE_SETTABLE = frozenset(DEFAULTS) - {"MLSTREAM_PROFILE", "MLSTREAM_CONFIG"}


@dataclass(frozen=True)
class Topics:
    """Names of the project's topics; a prefix keeps test runs apart."""

    prefix: str = DEFAULTS["MLSTREAM_TOPIC_PREFIX"]
    atlas_hook: str = DEFAULTS["MLSTREAM_ATLAS_HOOK_TOPIC"]

    @property
    def records(self) -> str:
        return f"{self.prefix}records"

    @property
    def labels(self) -> str:
        return f"{self.prefix}labels"

    @property
    def predictions(self) -> str:
        return f"{self.prefix}predictions"

    @property
    def metrics(self) -> str:
        return f"{self.prefix}metrics"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}deadletters"

    @property
    def linkage_records(self) -> str:
        return f"{self.prefix}linkage.records"

    @property
    def links(self) -> str:
        return f"{self.prefix}linkage.links"

    @property
    def entity_updates(self) -> str:
        return f"{self.prefix}linkage.entities"

    @property
    def confirmed_pairs(self) -> str:
        return f"{self.prefix}linkage.confirmed"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}alerts"

    @property
    def model_registry(self) -> str:
        return f"{self.prefix}model-registry"

    @property
    def deployments(self) -> str:
        return f"{self.prefix}deployments"


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str
    schema_registry_url: str
    kafka_port: int
    kafka_controller_port: int
    registry_port: int
    web_port: int
    state_dir: Path
    web_bind: str = "127.0.0.1"
    topics: Topics = field(default_factory=Topics)
    atlas_namespace: str = "primary"
    partitions: int = 3
    model: str = "logistic_regression"
    model_version: str = "1"
    app_id: str = "mlstream-scorer"
    metrics_store: str = ""  # a postgresql:// URL, or a SQLite file; empty: <state_dir>/metrics/metrics.db
    prediction_metrics: bool = True  # a CML metrics row per prediction, its label merged in later
    challenger_model: str = ""  # a model spec scored in shadow beside the champion; empty: none
    challenger_version: str = "1"
    drift_features: tuple[str, ...] = ()  # features whose values PageHinkley watches for drift
    alert_warm_up_labels: int | None = None  # labels since a build started serving before a threshold alert
    atlas_url: str = ""  # an Atlas server (http://host:21000): lineage goes over REST v2; empty: ATLAS_HOOK topic
    lineage_port: int = 21000  # `mlstream lineage serve`, the embedded Atlas REST subset
    model_store: str = ""  # where checkpoints and build snapshots live: s3://bucket/prefix or a folder; empty: <state_dir>/models
    s3_endpoint_url: str = ""  # an S3-compatible service other than AWS (MinIO, S3Proxy); credentials the boto3 way
    metastore_url: str = ""  # postgresql://user@host:port/db of the Hive metastore; empty: Spark's in-memory catalog
    warehouse: str = ""  # the managed tables' root: a folder or s3a://bucket/path; empty: <state_dir>/spark/warehouse
    thrift_port: int = 10000  # the SQL endpoint (Spark's Thrift server, HiveServer2 protocol) on 127.0.0.1
    cache_dir: Path = Path(DEFAULTS["MLSTREAM_CACHE_DIR"])  # downloads shared by every state dir: the services' jars
    worker_id: str = ""  # empty: <host>-<web port>, stable across restarts of the same worker
    batch_size: int = 2000
    batch_wait_ms: int = 100
    state_ttl_s: float = 86400.0
    feature_view: str = ""  # NAME or NAME@VERSION of a stored feature view (config featureview.NAME); empty: the built-in Record view
    profile: str = profiles.LOCAL
    config_file: str = ""  # the settings file the profile came from; empty: a built-in profile
    # librdkafka security keys (security.protocol, sasl.*, ssl.*) and registry client keys (basic.auth.*, ssl.*),
    # secrets as written in the profile (${VAR}, file:PATH): mlstream.kafka.clients resolves them.
    kafka_security: tuple[tuple[str, str], ...] = ()
    registry_security: tuple[tuple[str, str], ...] = ()
    replication_factor: int = 1
    min_insync_replicas: int = 0  # 0: the broker's default
    services_dir: Path | None = None  # where `mlstream up` keeps the local services; None: the state dir
    max_abs_value: float = 1e15  # features and regression labels beyond +-this are dead-lettered (INVALID_VALUE)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, profile: str = "", config: str = "") -> "Settings":
        """The settings of ``profile`` (default: MLSTREAM_PROFILE, else ``local``), each overridden by its variable.

        >>> s = Settings.from_env({"MLSTREAM_KAFKA_PORT": "9300"}, profile="secure-local")
        >>> s.bootstrap_servers, s.kafka_port, dict(s.kafka_security)["sasl.mechanism"]
        ('localhost:9192', 9192, 'SCRAM-SHA-512')
        >>> Settings.from_env({"MLSTREAM_KAFKA_PORT": "9300"}).kafka_port
        9300

        (secure-local's ports are its own variables, MLSTREAM_SECURE_LOCAL_*, so it runs beside the plain broker.)
        """
        environ = os.environ if environ is None else environ
        name = profile or environ.get("MLSTREAM_PROFILE") or profiles.LOCAL
        settings_file = profiles.find_settings_file(config or environ.get("MLSTREAM_CONFIG", ""))
        state_dir = Path(environ.get("MLSTREAM_STATE_DIR", DEFAULTS["MLSTREAM_STATE_DIR"])).absolute()
        active = profiles.load_profile(name, settings_file, environ, state_dir, PROFILE_SETTABLE)

        def env(variable: str) -> str:
            if variable in active.pinned:
                return active.values[variable]
            return environ.get(variable, active.values.get(variable, DEFAULTS[variable]))

        return cls(
            bootstrap_servers=env("MLSTREAM_BOOTSTRAP_SERVERS"),
            schema_registry_url=env("MLSTREAM_SCHEMA_REGISTRY_URL"),
            kafka_port=int(env("MLSTREAM_KAFKA_PORT")),
            kafka_controller_port=int(env("MLSTREAM_KAFKA_CONTROLLER_PORT")),
            registry_port=int(env("MLSTREAM_REGISTRY_PORT")),
            web_port=int(env("MLSTREAM_WEB_PORT")),
            web_bind=env("MLSTREAM_WEB_BIND"),
            state_dir=Path(env("MLSTREAM_STATE_DIR")).absolute(),
            topics=Topics(
                prefix=env("MLSTREAM_TOPIC_PREFIX"),
                atlas_hook=env("MLSTREAM_ATLAS_HOOK_TOPIC"),
            ),
            atlas_namespace=env("MLSTREAM_ATLAS_NAMESPACE"),
            partitions=int(env("MLSTREAM_PARTITIONS")),
            model=env("MLSTREAM_MODEL"),
            model_version=env("MLSTREAM_MODEL_VERSION"),
            app_id=env("MLSTREAM_APP_ID"),
            metrics_store=env("MLSTREAM_METRICS_STORE"),
            prediction_metrics=env("MLSTREAM_PREDICTION_METRICS").lower() not in ("0", "false", "no", "off"),
            challenger_model=env("MLSTREAM_CHALLENGER_MODEL"),
            challenger_version=env("MLSTREAM_CHALLENGER_VERSION"),
            drift_features=tuple(name.strip() for name in env("MLSTREAM_DRIFT_FEATURES").split(",") if name.strip()),
            alert_warm_up_labels=int(env("MLSTREAM_ALERT_WARM_UP_LABELS")) if env("MLSTREAM_ALERT_WARM_UP_LABELS")
            else None,
            atlas_url=env("MLSTREAM_ATLAS_URL"),
            lineage_port=int(env("MLSTREAM_LINEAGE_PORT")),
            model_store=env("MLSTREAM_MODEL_STORE"),
            s3_endpoint_url=env("MLSTREAM_S3_ENDPOINT_URL"),
            metastore_url=env("MLSTREAM_METASTORE_URL"),
            warehouse=env("MLSTREAM_WAREHOUSE"),
            thrift_port=int(env("MLSTREAM_THRIFT_PORT")),
            cache_dir=Path(env("MLSTREAM_CACHE_DIR")).absolute(),
            worker_id=env("MLSTREAM_WORKER_ID"),
            batch_size=int(env("MLSTREAM_BATCH_SIZE")),
            batch_wait_ms=int(env("MLSTREAM_BATCH_WAIT_MS")),
            state_ttl_s=float(env("MLSTREAM_STATE_TTL_S")),
            feature_view=env("MLSTREAM_FEATURE_VIEW"),
            profile=active.name,
            config_file=str(settings_file or ""),
            kafka_security=tuple(active.kafka.items()),
            registry_security=tuple(active.schema_registry.items()),
            replication_factor=_positive_int("MLSTREAM_REPLICATION_FACTOR", env("MLSTREAM_REPLICATION_FACTOR")),
            min_insync_replicas=_positive_int("MLSTREAM_MIN_INSYNC_REPLICAS",
                                              env("MLSTREAM_MIN_INSYNC_REPLICAS") or "0", minimum=0),
            services_dir=Path(env("MLSTREAM_SERVICES_DIR")).absolute() if env("MLSTREAM_SERVICES_DIR") else None,
            max_abs_value=float(env("MLSTREAM_MAX_ABS_VALUE")),
        )

    def to_env(self) -> dict[str, str]:
        """The ``MLSTREAM_*`` variables that make another process see these settings."""
        return {
            "MLSTREAM_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "MLSTREAM_SCHEMA_REGISTRY_URL": self.schema_registry_url,
            "MLSTREAM_KAFKA_PORT": str(self.kafka_port),
            "MLSTREAM_KAFKA_CONTROLLER_PORT": str(self.kafka_controller_port),
            "MLSTREAM_REGISTRY_PORT": str(self.registry_port),
            "MLSTREAM_WEB_PORT": str(self.web_port),
            "MLSTREAM_WEB_BIND": self.web_bind,
            "MLSTREAM_STATE_DIR": str(self.state_dir),
            "MLSTREAM_TOPIC_PREFIX": self.topics.prefix,
            "MLSTREAM_ATLAS_HOOK_TOPIC": self.topics.atlas_hook,
            "MLSTREAM_ATLAS_NAMESPACE": self.atlas_namespace,
            "MLSTREAM_PARTITIONS": str(self.partitions),
            "MLSTREAM_MODEL": self.model,
            "MLSTREAM_MODEL_VERSION": self.model_version,
            "MLSTREAM_APP_ID": self.app_id,
            "MLSTREAM_METRICS_STORE": self.metrics_store,
            "MLSTREAM_PREDICTION_METRICS": "1" if self.prediction_metrics else "0",
            "MLSTREAM_CHALLENGER_MODEL": self.challenger_model,
            "MLSTREAM_CHALLENGER_VERSION": self.challenger_version,
            "MLSTREAM_DRIFT_FEATURES": ",".join(self.drift_features),
            "MLSTREAM_ALERT_WARM_UP_LABELS": "" if self.alert_warm_up_labels is None else str(self.alert_warm_up_labels),
            "MLSTREAM_ATLAS_URL": self.atlas_url,
            "MLSTREAM_LINEAGE_PORT": str(self.lineage_port),
            "MLSTREAM_MODEL_STORE": self.model_store,
            "MLSTREAM_S3_ENDPOINT_URL": self.s3_endpoint_url,
            "MLSTREAM_METASTORE_URL": self.metastore_url,
            "MLSTREAM_WAREHOUSE": self.warehouse,
            "MLSTREAM_THRIFT_PORT": str(self.thrift_port),
            "MLSTREAM_CACHE_DIR": str(self.cache_dir),
            "MLSTREAM_WORKER_ID": self.worker_id,
            "MLSTREAM_BATCH_SIZE": str(self.batch_size),
            "MLSTREAM_BATCH_WAIT_MS": str(self.batch_wait_ms),
            "MLSTREAM_STATE_TTL_S": f"{self.state_ttl_s:g}",
            "MLSTREAM_FEATURE_VIEW": self.feature_view,
            "MLSTREAM_PROFILE": self.profile,
            "MLSTREAM_CONFIG": self.config_file,
            "MLSTREAM_SERVICES_DIR": str(self.services_dir or ""),
            "MLSTREAM_REPLICATION_FACTOR": str(self.replication_factor),
            "MLSTREAM_MIN_INSYNC_REPLICAS": str(self.min_insync_replicas or ""),
            "MLSTREAM_MAX_ABS_VALUE": repr(self.max_abs_value),
        }

    @property
    def local_services_dir(self) -> Path:
        """Where `mlstream up` keeps the local services' data, logs and pid files."""
        return self.services_dir or self.state_dir

    @property
    def metrics_store_url(self) -> str:
        return self.metrics_store or str(self.state_dir / "metrics" / "metrics.db")


def _positive_int(variable: str, text: str, minimum: int = 1) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise UserError(f"{variable}={text!r}: expected a whole number of at least {minimum}")
    return value
