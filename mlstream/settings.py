"""One place for every setting, read from ``MLSTREAM_*`` environment variables.

The local scripts, docker-compose.yml and the apps all use these names, so a
value set once (in the shell, in compose, in CI) reaches every part.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

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
    "MLSTREAM_ATLAS_URL": "",
    "MLSTREAM_LINEAGE_PORT": "21000",
    "MLSTREAM_MODEL_STORE": "",
    "MLSTREAM_S3_ENDPOINT_URL": "",
}


def env(name: str) -> str:
    return os.environ.get(name, DEFAULTS[name])


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
    atlas_url: str = ""  # an Atlas server (http://host:21000): lineage goes over REST v2; empty: ATLAS_HOOK topic
    lineage_port: int = 21000  # `mlstream lineage serve`, the embedded Atlas REST subset
    model_store: str = ""  # where checkpoints and build snapshots live: s3://bucket/prefix or a folder; empty: <state_dir>/models
    s3_endpoint_url: str = ""  # an S3-compatible service other than AWS (MinIO, S3Proxy); credentials the boto3 way
    cache_dir: Path = Path(DEFAULTS["MLSTREAM_CACHE_DIR"])  # downloads shared by every state dir: the services' jars

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            bootstrap_servers=env("MLSTREAM_BOOTSTRAP_SERVERS"),
            schema_registry_url=env("MLSTREAM_SCHEMA_REGISTRY_URL"),
            kafka_port=int(env("MLSTREAM_KAFKA_PORT")),
            kafka_controller_port=int(env("MLSTREAM_KAFKA_CONTROLLER_PORT")),
            registry_port=int(env("MLSTREAM_REGISTRY_PORT")),
            web_port=int(env("MLSTREAM_WEB_PORT")),
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
            atlas_url=env("MLSTREAM_ATLAS_URL"),
            lineage_port=int(env("MLSTREAM_LINEAGE_PORT")),
            model_store=env("MLSTREAM_MODEL_STORE"),
            s3_endpoint_url=env("MLSTREAM_S3_ENDPOINT_URL"),
            cache_dir=Path(env("MLSTREAM_CACHE_DIR")).absolute(),
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
            "MLSTREAM_ATLAS_URL": self.atlas_url,
            "MLSTREAM_LINEAGE_PORT": str(self.lineage_port),
            "MLSTREAM_MODEL_STORE": self.model_store,
            "MLSTREAM_S3_ENDPOINT_URL": self.s3_endpoint_url,
            "MLSTREAM_CACHE_DIR": str(self.cache_dir),
        }

    @property
    def metrics_store_url(self) -> str:
        return self.metrics_store or str(self.state_dir / "metrics" / "metrics.db")
