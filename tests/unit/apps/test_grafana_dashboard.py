"""Every query of the Grafana dashboard names metrics (and label values) the apps really export.

The exported names come from the apps' own code: the scorer's and the linker's Prometheus
registries are built and scraped here with figures of every kind (a binary classifier's, a
regressor's, live linkage quality), and the linker's event counters are the ones linkage/linker.py
counts. A renamed metric, or a panel asking for a figure no monitor computes, fails this test.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client import generate_latest

from apps.linker import web as linker_web
from apps.scorer import web as scorer_web
from linkage import linker
from linkage.evaluation import pair_figures
from mlstream.scoring.monitoring import ModelMonitor
from mlstream.settings import REPO_ROOT

DASHBOARD = REPO_ROOT / "infra/monitoring/grafana/dashboards/mlstream.json"
METRIC_NAME = re.compile(r"\b(mlstream_[a-z0-9_]+)")
SELECTOR = re.compile(r"(mlstream_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(=~|=)\s*"([^"]*)"')


def exported() -> dict[str, dict[str, set[str]]]:
    """Sample name -> label name -> the values seen, from both apps' registries scraped once."""
    classifier, regressor = ModelMonitor("lr", "1"), ModelMonitor("reg", "1")
    classifier.on_scored(latency_ms=1.0)
    classifier.on_outcome(True, True, 10, score=0.8)
    regressor.on_outcome(1.0, 2.0, 10)
    registry, latency = scorer_web.prometheus_registry(
        {key: 1 for key in scorer_web.COUNTERS}, lambda: {"lr v1": classifier, "reg v1": regressor},
        lambda: {"mlstream.records": 0, "mlstream.labels": 0})
    latency.observe(0.001)
    linker_events = set(re.findall(r'counters\["([a-z_]+)"\]', Path(linker.__file__).read_text()))
    quality = pair_figures(records=2, true_pairs=1, possible_pairs=1, candidate_pairs=1, true_candidates=1,
                           linked_pairs=1, true_positives=1)
    linkage_registry = linker_web.prometheus_registry(
        lambda: {key: 1 for key in linker_web.COUNTERS}, lambda: dict.fromkeys(linker_events, 1),
        lambda: {"entities": 1, "records_indexed": 2}, lambda: quality)
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for text in (generate_latest(registry), generate_latest(linkage_registry)):
        for family in text_string_to_metric_families(text.decode()):
            for sample in family.samples:
                labels = out[sample.name]
                for label, value in sample.labels.items():
                    labels[label].add(value)
    return out


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_has_queries_for_both_apps():
    names = {name for expr in queries() for name in METRIC_NAME.findall(expr)}
    assert any(n.startswith("mlstream_linkage_") for n in names)
    assert any(not n.startswith("mlstream_linkage_") for n in names)


def test_every_query_names_exported_metrics_and_label_values():
    metrics = exported()
    problems = []
    for expr in queries():
        for name in METRIC_NAME.findall(expr):
            if name not in metrics:
                problems.append(f"{expr!r}: no app exports {name}")
        for name, matchers in SELECTOR.findall(expr):
            for label, op, wanted in MATCHER.findall(matchers):
                seen = metrics.get(name, {}).get(label, set())
                values = wanted.split("|") if op == "=~" else [wanted]
                problems += [f"{expr!r}: {name} has no {label}={value!r} (it has {sorted(seen)})"
                             for value in values if value not in seen]
    assert not problems, "\n".join(problems)


def test_the_linker_events_exported_from_the_start_are_ones_the_linker_counts():
    counted = set(re.findall(r'counters\["([a-z_]+)"\]', Path(linker.__file__).read_text()))
    assert set(linker_web.EVENTS) <= counted


def test_the_check_catches_a_misspelt_metric_and_a_figure_no_monitor_computes():
    metrics = exported()
    assert "mlstream_records_in_total" in metrics and "mlstream_record_in_total" not in metrics
    assert "rolling_accuracy" in metrics["mlstream_model_metric"]["metric"]
    assert "rolling_precision" not in metrics["mlstream_model_metric"]["metric"]
    assert "warming_up" in metrics["mlstream_model_metric"]["metric"]
