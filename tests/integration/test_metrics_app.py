"""The stream app's metrics on real services: CML rows per prediction and per window in the store,
a shadow challenger with metrics of its own, a drift alert on the alerts topic, Prometheus /metrics.

One app runs a drifting SEA feed (the concept changes at record 5,000) with a challenger in shadow.
"""

from __future__ import annotations

import dataclasses

import pytest
import requests

from mlstream.identifiers import build_crn, deployment_crn, model_crn
from mlstream.kafka.clients import registry_client
from mlstream.kafka.reader import read_all
from mlstream.kafka.serde import TopicCodec
from mlstream.kafka.topics import init
from mlstream.metrics import open_store
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from tests.conftest import isolated_settings
from tools.demo import app_stats, start_app, stop_app, wait_for, wait_for_app

pytestmark = pytest.mark.integration
RECORDS, DRIFT_AT = 6500, 5000


@pytest.fixture(scope="module")
def drift_run(services, tmp_path_factory):
    # One partition, so one model learns from every label: ADWIN then watches one model's errors
    # (with a model per partition each learns a third of the labels, and SEA's drift is a smaller rise).
    settings = dataclasses.replace(isolated_settings(services, tmp_path_factory.mktemp("state")),
                                   challenger_model="hoeffding_tree", challenger_version="1", partitions=1)
    init(settings, say=lambda _: None)
    log_path = settings.state_dir / "app.log"
    app = start_app(settings, log_path)
    try:
        wait_for_app(settings, app, log_path)
        # Paced like a live feed (6.5 s), so each label follows its record closely: sent at full speed, a
        # few thousand records would be scored, in the order produced, before the first label came.
        feed = play(examples("sea-drift", seed=42, drift_at=DRIFT_AT), KafkaFeedSink(settings), dataset="sea-drift",
                    source=source_name("sea-drift"), rate=1000, label_delay_s=0.2, limit=RECORDS,
                    progress=lambda _: None)

        def caught_up():
            stats = app_stats(settings)
            return stats if stats and stats["counters"]["records_in"] >= feed.records \
                and stats["counters"]["labels_in"] >= feed.labels and stats["awaiting_label"] == 0 else None

        wait_for(caught_up, 240, f"the app to score and learn everything (see {log_path})")
        prometheus = requests.get(f"http://localhost:{settings.web_port}/metrics", timeout=5).text

        def all_stored():  # the app's own materializer fills the store
            store = open_store(settings.metrics_store_url)
            rows = store.read(model_deployment_crn=deployment_crn("logistic_regression", settings.app_id))
            store.close()
            labelled = [r for r in rows if "actual" in r["metrics"]]
            # Windows close every 5 s: wait for one that saw every label, however slow the machine.
            complete = [r for r in rows if r["predictionUuid"] is None
                        and r["metrics"].get("records_learned", 0) >= RECORDS]
            return rows if len(labelled) >= RECORDS and complete else None

        wait_for(all_stored, 120, "the metrics store to hold every prediction with its label and a full window")
        stats = app_stats(settings)
    finally:
        stop_app(app)
    return {"settings": settings, "stats": stats, "prometheus": prometheus}


def test_read_metrics_gives_one_cml_row_per_prediction_with_its_label(drift_run):
    settings = drift_run["settings"]
    store = open_store(settings.metrics_store_url)
    rows = store.read(model_deployment_crn=deployment_crn("logistic_regression", settings.app_id))
    predictions = [r for r in rows if r["predictionUuid"]]
    assert len(predictions) == RECORDS
    assert all(r["modelCrn"] == model_crn("logistic_regression")
               and r["modelBuildCrn"] == build_crn("logistic_regression", "1") for r in rows)
    assert all({"actual", "predicted_label", "score"} <= set(r["metrics"]) for r in predictions)
    codec = TopicCodec.for_topic(registry_client(settings), settings.topics.predictions,
                                 "prediction")
    ids = {codec.decode(m.value())["prediction_id"] for m in read_all(settings,
                                                                      settings.topics.predictions)}
    assert {r["predictionUuid"] for r in predictions} == ids
    windows = [r for r in rows if r["predictionUuid"] is None]
    learned = [w["metrics"]["records_learned"] for w in windows]  # a window every 5 s
    assert learned == sorted(learned) and learned[-1] > DRIFT_AT
    assert {"accuracy", "rolling_accuracy", "log_loss", "roc_auc", "label_coverage"} <= set(windows[-1]["metrics"])


def test_the_shadow_challenger_has_metrics_of_its_own(drift_run):
    settings, stats = drift_run["settings"], drift_run["stats"]
    store = open_store(settings.metrics_store_url)
    shadow = store.read(model_deployment_crn=deployment_crn("hoeffding_tree", f"{settings.app_id}-shadow"))
    assert len([r for r in shadow if r["predictionUuid"]]) == RECORDS
    assert shadow[-1]["modelBuildCrn"] == build_crn("hoeffding_tree", "1")
    versions = stats["versions"]
    assert set(versions) == {"logistic_regression v1", "hoeffding_tree v1"}
    assert versions["hoeffding_tree v1"]["records_learned"] == RECORDS
    assert versions["logistic_regression v1"]["accuracy"] != versions["hoeffding_tree v1"]["accuracy"]


def test_the_injected_drift_raises_an_alert_within_500_labels(drift_run):
    settings = drift_run["settings"]
    codec = TopicCodec.for_topic(registry_client(settings), settings.topics.alerts, "alert")
    alerts = [codec.decode(m.value()) for m in read_all(settings, settings.topics.alerts)]
    champion = [a for a in alerts if a["model_crn"] == model_crn("logistic_regression")
                and a["alert_type"] == "ERROR_DRIFT"]
    assert champion, f"no drift alert for the champion; alerts: {alerts}"
    # A cold start (the whole feed in Kafka before the first label) raises nothing before the drift.
    early = [a["message"] for a in alerts if a["model_crn"] == model_crn("logistic_regression")
             and a["records_learned"] < DRIFT_AT]
    assert not early, f"alerts before the drift: {early}"
    assert all(a["labels_judged"] > 0 for a in champion)
    # Labels reach the app in record order here, so records_learned counts records.
    assert DRIFT_AT <= champion[0]["records_learned"] <= DRIFT_AT + 500


def test_prometheus_exposes_counters_lag_latency_and_model_metrics(drift_run):
    text = drift_run["prometheus"]
    assert f"mlstream_records_in_total {RECORDS}.0" in text
    assert "mlstream_dead_letters_total 0.0" in text
    assert 'mlstream_consumer_lag{topic="' in text
    assert f"mlstream_processing_latency_seconds_count {RECORDS}.0" in text
    assert 'mlstream_model_metric{metric="rolling_accuracy",model="hoeffding_tree",version="1"}' in text
