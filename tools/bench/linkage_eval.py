"""`mlstream linkage eval`: link a dataset through Kafka and judge it, beside a batch baseline.

Two passes, each on topics and an app id of its own (deleted afterwards), against the
real broker and registry:

1. **Throughput and quality.** Every record (plus a few bad messages) is written to the
   linkage records topic first, then the linkage app is started and drains it as fast
   as it can: records/s from the first to the last link event, quality from the link
   events read back from Kafka against the true pairs.
2. **Latency.** The app runs first; records are then played at ``latency_rate``
   records/s, and each record's latency is from the feed's send (its event time) to
   the app's decision (the link event's ``linked_at``).

The batch baseline links the same records with the ``recordlinkage`` toolkit in this
process (:mod:`linkage.batch_baseline`).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path


from apps.linker.settings import LinkageSettings, load_config
from linkage.batch_baseline import baseline_quality
from linkage.datasets import FEBRL, Dataset, csv_dataset, load_febrl, read_truth_pairs
from linkage.evaluation import quality
from mlstream.errors import UserError
from mlstream.kafka import clients
from mlstream.kafka.reader import read_all
from mlstream.kafka.topics import init, topic_codec
from mlstream.settings import Settings, Topics
from producers.linkage_feed import KafkaLinkageSink, play_records
from tools.demo import app_stats, stop_app, wait_for

#: Bad input sent in pass 1: not Confluent-framed, and a record with every field empty.
UNDECODABLE = b"not avro at all"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


@dataclasses.dataclass
class Run:
    """One pass: its own topics, app id, web port and state, so passes never share state."""

    settings: Settings
    linkage: LinkageSettings
    log_path: Path

    @classmethod
    def fresh(cls, settings: Settings, linkage: LinkageSettings, label: str) -> "Run":
        run = f"{label}-{uuid.uuid4().hex[:6]}"
        run_settings = dataclasses.replace(
            settings, topics=Topics(prefix=f"{settings.topics.prefix}eval-{run}.", atlas_hook=settings.topics.atlas_hook))
        run_linkage = dataclasses.replace(linkage, app_id=f"{linkage.app_id}-eval-{run}",
                                          config_store_prefix=linkage.config_store_prefix or settings.topics.prefix)
        return cls(run_settings, run_linkage, settings.state_dir / "logs" / f"linkage-eval-{run}.log")

    def start_app(self) -> subprocess.Popen:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        return subprocess.Popen([sys.executable, "-m", "tools", "linkage", "app", "--loglevel", "warning"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env=os.environ | self.settings.to_env() | self.linkage.to_env())

    def stats(self) -> dict | None:
        return app_stats(dataclasses.replace(self.settings, web_port=self.linkage.web_port))

    def wait_until(self, process: subprocess.Popen, records_in: int, timeout_s: float, say) -> dict:
        last = [0.0]

        def done():
            if process.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-15:]
                raise UserError(f"the linkage app exited with code {process.returncode}; end of {self.log_path}:\n"
                                + "\n".join(tail))
            stats = self.stats()
            if stats and time.monotonic() - last[0] > 2:
                last[0] = time.monotonic()
                say(f"  app: {stats['counters']['records_in']}/{records_in} records in, "
                    f"{stats['counters']['links_out']} link events")
            return stats if stats and stats["counters"]["records_in"] >= records_in else None

        return wait_for(done, timeout_s, f"the linkage app to take {records_in} records (log: {self.log_path})",
                        poll_s=0.2)

    def link_events(self) -> list[dict]:
        codec = topic_codec(clients.registry_client(self.settings), self.settings,
                            self.settings.topics.links)
        return [codec.decode(m.value()) for m in read_all(self.settings, self.settings.topics.links)]

    def ours(self, name: str) -> bool:
        """A topic or registry subject this pass created (subjects are named after their topics)."""
        return name.startswith(self.settings.topics.prefix) or name.startswith(self.linkage.app_id)

    def delete_topics_and_subjects(self) -> None:
        admin = clients.admin(self.settings)
        topics = [t for t in admin.list_topics(timeout=15).topics if self.ours(t)]
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            future.result()
        registry = clients.registry_client(self.settings)
        for subject in filter(self.ours, registry.get_subjects()):
            registry.delete_subject(subject)  # the registry deletes for good only what it soft-deleted first
            registry.delete_subject(subject, permanent=True)


def _ms(value) -> float:
    return value.timestamp() * 1000 if hasattr(value, "timestamp") else float(value)


def throughput_pass(run: Run, data: Dataset, timeout_s: float, say) -> dict:
    init(run.settings, say=lambda line: None)
    sink = KafkaLinkageSink(run.settings)
    feed = play_records(data.records, sink, progress=say)
    # Bad input: an undecodable value, an empty record and an exact repeat of the first record.
    producer = clients.producer(run.settings)
    producer.produce(run.settings.topics.linkage_records, key=b"garbage", value=UNDECODABLE)
    producer.flush(10)
    play_records([dataclasses.replace(data.records[0], record_id="empty-record", fields={}), data.records[0]],
                 sink, progress=lambda line: None)
    sent = feed.records + 3
    say(f"pass 1: {feed.records} records (+3 bad ones) on {run.settings.topics.linkage_records}; starting the app")
    process = run.start_app()
    try:
        final = run.wait_until(process, sent, timeout_s, say)
    finally:
        stop_app(process)
    events = run.link_events()
    linked_at = [_ms(e["linked_at"]) for e in events]
    span_s = (max(linked_at) - min(linked_at)) / 1000 if len(linked_at) > 1 else 0.0
    processing = [e["processing_ms"] for e in events]
    figures = quality(events, data.true_pairs, mode=data.mode, possible_pairs=data.possible_pairs())
    return figures | {
        "link_events": len(events),
        "records_per_second": round(len(events) / span_s, 1) if span_s else None,
        "processing_ms_p50": percentile(processing, 0.5),
        "processing_ms_p99": percentile(processing, 0.99),
        "model_fits": final["model"]["fits"] if final.get("model") else None,
        "dead_letters": final["counters"]["dead_letters"],
        # what the app's dashboard showed at the end, from its own live figures
        "dashboard_f1": final["quality"]["f1"] if final.get("quality") else None,
        "duplicates_skipped": final["linker"].get("duplicate_records", 0),
    }


def latency_pass(run: Run, data: Dataset, rate: float, timeout_s: float, say) -> dict:
    init(run.settings, say=lambda line: None)
    process = run.start_app()
    try:
        # The app answers on /stats/ before its consumer has its partition: a first undecodable
        # message, dead-lettered, shows it is really reading before the paced feed starts.
        producer = clients.producer(run.settings)
        producer.produce(run.settings.topics.linkage_records, key=b"warm-up", value=UNDECODABLE)
        producer.flush(10)
        run.wait_until(process, 1, 120, lambda line: None)
        say(f"pass 2: playing {len(data.records)} records at {rate:.0f} records/s")
        feed = play_records(data.records, KafkaLinkageSink(run.settings), rate=rate, progress=say)
        run.wait_until(process, feed.records + 1, timeout_s, say)
    finally:
        stop_app(process)
    events = run.link_events()
    latency = [_ms(e["linked_at"]) - _ms(e["event_time"]) for e in events]
    processing = [e["processing_ms"] for e in events]
    return {
        "rate": rate,
        "records": len(events),
        "feed_records_per_second": round(feed.records_per_second, 1),
        "latency_ms_p50": percentile(latency, 0.5),
        "latency_ms_p99": percentile(latency, 0.99),
        "latency_ms_max": percentile(latency, 1.0),
        "processing_ms_p50": percentile(processing, 0.5),
        "processing_ms_p99": percentile(processing, 0.99),
    }


def run_eval(settings: Settings, linkage: LinkageSettings, *, dataset: str, config_spec: str | None,
             records: int | None, latency_rate: float, latency_records: int | None, keep_topics: bool = False,
             csv_files: list[tuple[Path, str, str | None]] = (), truth_pairs_file: Path | None = None,
             timeout_s: float = 600, say=print) -> dict:
    """Judge the linker on a FEBRL ``dataset``, or on ``csv_files`` (path, source, id column) whose
    true pairs ``truth_pairs_file`` lists or, without it, the config's ``truth`` gives."""
    started = time.monotonic()
    if csv_files and not config_spec:
        raise UserError("judging CSV files needs their linkage config: pass --config")
    if truth_pairs_file and not csv_files:
        raise UserError("--truth-pairs judges your --csv files; FEBRL datasets carry their own true pairs")
    spec = config_spec or FEBRL[dataset][1]
    config, version = load_config(spec, settings, linkage.config_store_prefix)
    linkage = dataclasses.replace(linkage, config=spec)
    true_pairs = read_truth_pairs(truth_pairs_file) if truth_pairs_file else None
    data = (csv_dataset(list(csv_files), config, true_pairs) if csv_files else load_febrl(dataset)).head(records)
    dataset = data.name
    say(f"linkage eval: {dataset} ({len(data.records)} records, {len(data.true_pairs)} true pairs), "
        f"config {config.name} {version}")
    if not data.true_pairs:
        say(f"warning: the truth gives no true pairs among these {len(data.records)} records, so recall, "
            "pairs completeness and F1 are 0 whatever the linker does; check "
            + (f"that {truth_pairs_file} names these records' sources and ids" if truth_pairs_file else
               f"config {config.name}'s truth key against the records"))
    runs = [Run.fresh(settings, linkage, "throughput")]
    try:
        stream = throughput_pass(runs[0], data, timeout_s, say)
        latency = None
        if latency_rate > 0:
            runs.append(Run.fresh(settings, linkage, "latency"))
            latency = latency_pass(runs[1], data.head(latency_records), latency_rate, timeout_s, say)
    finally:
        if not keep_topics:
            for run in runs:
                run.delete_topics_and_subjects()
    say("batch baseline: recordlinkage on the same records")
    batch = baseline_quality(config, data.records, data.true_pairs, data.possible_pairs())
    return {
        "dataset": dataset,
        "records": len(data.records),
        "true_pairs": len(data.true_pairs),
        "config": {"name": config.name, "version": version, "mode": config.mode},
        "stream": stream,
        "stream_latency": latency,
        "batch_baseline": batch,
        "seconds": round(time.monotonic() - started, 1),
    }


def print_report(report: dict) -> None:
    stream, batch, latency = report["stream"], report["batch_baseline"], report["stream_latency"]

    def fmt(value, pattern="{:.4f}"):
        return "n/a" if value is None else pattern.format(value)

    print("\n" + "=" * 72)
    print(f" mlstream linkage eval: {report['dataset']}, {report['records']} records, "
          f"{report['true_pairs']} true pairs, config {report['config']['name']} {report['config']['version']}")
    print("=" * 72)
    print(f" {'':26}{'stream (Kafka, one worker)':>24}{'batch (recordlinkage)':>22}")
    for name, key in [("pairs completeness", "pairs_completeness"), ("reduction ratio", "reduction_ratio"),
                      ("precision", "precision"), ("recall", "recall"), ("F1", "f1")]:
        print(f" {name:26}{fmt(stream[key]):>24}{fmt(batch[key]):>22}")
    print(f" {'candidate pairs':26}{stream['candidate_pairs']:>24}{batch['candidate_pairs']:>22}")
    print(f" {'records/s':26}{fmt(stream['records_per_second'], '{:.0f}'):>24}"
          f"{fmt(batch['records_per_second'], '{:.0f}'):>22}")
    print(f" {'processing p50 / p99 ms':26}{fmt(stream['processing_ms_p50'], '{:.2f}') + ' / ' + fmt(stream['processing_ms_p99'], '{:.2f}'):>24}")
    if latency:
        print(f" {'latency at %.0f rec/s' % latency['rate']:26}"
              f"{'p50 ' + fmt(latency['latency_ms_p50'], '{:.1f}') + ' / p99 ' + fmt(latency['latency_ms_p99'], '{:.1f}') + ' ms':>24}")
    if stream["dashboard_f1"] is not None:
        print(f" {'F1 on the app dashboard':26}{fmt(stream['dashboard_f1']):>24}")
    print(f" {'bad input':26}{'%d dead-lettered, %d repeats skipped' % (stream['dead_letters'], stream['duplicates_skipped']):>24}")
    print(f" took {report['seconds']:.0f} s")
