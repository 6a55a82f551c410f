"""Lineage YAML: CML's ``lineage.yml`` unchanged, plus Kafka topics, S3, Spark, features, sampling, splits.

CML's file maps a model name to the Hive tables it was trained on and free-form metadata;
mlstream's adds the other places training data comes from and how it was cut. The JSON
Schema is ``mlstream/schemas/lineage.schema.json``; an error names the line and the key:

    >>> config = load_lineage_yaml('''
    ... "Churn Model API Endpoint":
    ...   hive_table_qualified_names: ["default.telco_churn@cm"]
    ...   metadata: {query: "select * from historical_data", training_file: "train.py"}
    ... phishing:
    ...   kafka_topics: [{topic: mlstream.records, version: 1}]
    ...   features: [empty_server_form_handler, popup_window]
    ...   splits: {train: 0.8, test: 0.2, seed: 7}
    ... ''')
    >>> sorted(config), config["phishing"].kafka_topics[0].subject
    (['Churn Model API Endpoint', 'phishing'], 'mlstream.records-value')
    >>> load_lineage_yaml("phishing:\\n  owner: me\\n  sample: {method: up}\\n", "lineage.yml")
    Traceback (most recent call last):
    ...
    mlstream.lineage.config.LineageConfigError: lineage.yml:3: phishing.sample: unknown key (allowed: ...)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from mlstream.errors import UserError
from mlstream.settings import SCHEMA_DIR
from mlstream.yaml_schema import compose_with_lines, schema_problems

SCHEMA_PATH = SCHEMA_DIR / "lineage.schema.json"


class LineageConfigError(UserError):
    """The lineage YAML is malformed or breaks the schema; the message lists every problem by line."""


@dataclass(frozen=True)
class KafkaTopicRef:
    topic: str
    subject: str
    version: int | None  # None: the latest version when the lineage is reported


@dataclass(frozen=True)
class ModelLineage:
    """What one model was trained on and how; field names follow the YAML keys."""

    name: str
    hive_table_qualified_names: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    owner: str | None = None
    team: str | None = None
    description: str | None = None
    hive_tables: tuple[str, ...] = ()
    kafka_topics: tuple[KafkaTopicRef, ...] = ()
    s3_paths: tuple[str, ...] = ()
    spark_tables: tuple[str, ...] = ()
    spark_views: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    label: str | None = None
    sampling: Mapping[str, Any] = field(default_factory=dict)
    splits: Mapping[str, Any] = field(default_factory=dict)


@cache
def lineage_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def load_lineage_yaml(text: str, source: str = "<lineage>") -> dict[str, ModelLineage]:
    """Parse and validate a lineage YAML; model name -> :class:`ModelLineage`."""
    document, lines = compose_with_lines(text, source, LineageConfigError)
    if document is None:
        raise LineageConfigError(f"{source}: empty; expected model name -> lineage, as in CML's lineage.yml")
    problems = schema_problems(lineage_schema(), document, lines, source)
    for name, model in (document.items() if isinstance(document, dict) and not problems else ()):
        splits = model.get("splits") or {}
        total = sum(splits.get(part, 0) for part in ("train", "validation", "test"))
        if splits and not math.isclose(total, 1.0, abs_tol=1e-9):
            line = lines.get((name, "splits"), 0)
            problems.append(f"{source}:{line}: {name}.splits: train + validation + test is {total:g}, must be 1")
    if problems:
        raise LineageConfigError("\n".join(problems))
    return {name: _model(name, model) for name, model in document.items()}


def _model(name: str, raw: Mapping[str, Any]) -> ModelLineage:
    topics = tuple(KafkaTopicRef(t["topic"], t.get("subject", f"{t['topic']}-value"), t.get("version"))
                   for t in raw.get("kafka_topics", ()))
    tuples = {key: tuple(raw.get(key, ())) for key in (
        "hive_table_qualified_names", "hive_tables", "s3_paths", "spark_tables", "spark_views", "features")}
    return ModelLineage(
        name=name, kafka_topics=topics, **tuples,
        metadata={key: str(value) for key, value in (raw.get("metadata") or {}).items()},
        owner=raw.get("owner"), team=raw.get("team"), description=raw.get("description"), label=raw.get("label"),
        sampling=dict(raw.get("sampling") or {}), splits=dict(raw.get("splits") or {}),
    )
