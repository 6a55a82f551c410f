"""`mlstream bench latency`: from a record's produce time to its prediction's, at a steady rate.

The Kafka contenders of `mlstream bench scorer` (the plain loop, Quix Streams when its
environment is there, the app with metrics on and off) each get fresh topics and a fresh
process in turn. Each is warmed up first (a few hundred records, waited for), then the
project's feed plays ``--rate`` records a second for ``--seconds``, labels following a second
later, and the contender's predictions are read back. A record's latency is the time the
broker appended its prediction (``LogAppendTime``: one clock for every contender) minus the
time the feed produced it (the record's ``CreateTime``); both clocks are this machine's.

A contender slower than the rate falls behind and its latency grows with the run. It gets
as long again as the feed ran to catch up; records it has not predicted by then count as
slower than any, so a percentile they reach is null, and ``predicted`` says how many were.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from mlstream.errors import UserError
from mlstream.kafka.reader import read_all
from mlstream.settings import Settings
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play, record_id
from tools.bench.rounds import BenchRun, init_round, machine_line
from tools.bench.scorer import STALL_S, TITLES, KafkaContender, Say, drain, kafka_contenders
from tools.demo import stop_app

WARM_UP_RECORDS, WARM_UP_SEED, SEED = 300, 1, 42
LABEL_DELAY_S = 1.0
#: A contender that predicts nothing new for this long after the feed ended has stopped catching up.
CATCH_UP_STALL_S = 30.0


def percentile(sorted_ms: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None where it falls on a record never predicted (``inf``).

    >>> percentile([1.0, 2.0, 3.0, math.inf], 0.5), percentile([1.0, 2.0, 3.0, math.inf], 0.99)
    (2.0, None)
    """
    value = sorted_ms[max(0, math.ceil(q * len(sorted_ms)) - 1)]
    return None if math.isinf(value) else round(value, 2)


def latency_round(contender: KafkaContender, settings: Settings, dataset: str, rate: float, seconds: float,
                  say: Say) -> dict:
    init_round(settings)
    log_path = settings.state_dir / "logs" / f"{contender.name}.log"
    records = round(rate * seconds)
    sink = KafkaFeedSink(settings)
    process = contender.start(settings, log_path)
    try:
        play(examples(dataset, seed=WARM_UP_SEED), sink, dataset=dataset, source=source_name(dataset),
             seed=WARM_UP_SEED, label_delay_s=0.0, limit=WARM_UP_RECORDS, progress=lambda _: None)
        warmed_up = drain(contender.title, settings, process, log_path, WARM_UP_RECORDS, say)
        if not warmed_up.complete:
            raise UserError(f"{contender.title} predicted {warmed_up.predictions} of its {WARM_UP_RECORDS} warm-up "
                            f"records, then nothing for {STALL_S:.0f}s (log: {log_path})")
        say(f"  {contender.title}: warmed up; feed at {rate:g} records/s for {seconds:g}s")
        feed = play(examples(dataset, seed=SEED), sink, dataset=dataset, source=source_name(dataset), seed=SEED,
                    rate=rate, label_delay_s=LABEL_DELAY_S, limit=records, progress=say)
        drained = drain(contender.title, settings, process, log_path, WARM_UP_RECORDS + feed.records, say,
                        stall_s=CATCH_UP_STALL_S, until=time.monotonic() + max(CATCH_UP_STALL_S, seconds))
    finally:
        stop_app(process)
    if feed.records < records:
        raise UserError(f"dataset {dataset} has only {feed.records} records, not {records}: play it slower or "
                        "shorter (--rate, --seconds), or choose an endless dataset")
    measured = {record_id(dataset, SEED, i).encode() for i in range(records)}
    produced = {m.key(): m.timestamp()[1] for m in read_all(settings, settings.topics.records)
                if m.key() in measured}
    appended = {m.key(): m.timestamp()[1] for m in read_all(settings, settings.topics.predictions)
                if m.key() in measured}
    latencies = sorted(float(appended[key] - produced[key]) if key in appended else math.inf for key in produced)
    span_s = (max(produced.values()) - min(produced.values())) / 1000
    return {"records": records, "predicted": len(appended),
            "feed_records_per_second": round((len(produced) - 1) / span_s, 1) if span_s else None,
            "p50_ms": percentile(latencies, 0.50), "p99_ms": percentile(latencies, 0.99),
            "max_ms": percentile(latencies, 1.0), "peak_rss_mb": drained.peak_rss_mb}


def bench_latency(settings: Settings, dataset: str = "agrawal-drift", rate: float = 5000.0, seconds: float = 60.0,
                  quix_python: str | Path | None = None, say: Say = print) -> dict:
    if rate <= 0 or seconds <= 0 or round(rate * seconds) < 1:
        raise UserError("--rate and --seconds must be positive and make at least one record")
    on_kafka, skipped = kafka_contenders(quix_python)
    for name, note in skipped.items():
        say(f"{TITLES[name]}: {note}")
    contenders = {}
    with BenchRun(settings) as run:
        for contender in on_kafka:
            say(f"{contender.title}: fresh topics and process, {WARM_UP_RECORDS} warm-up records")
            contenders[contender.name] = latency_round(
                contender, run.round_settings(contender.name.replace("_", "-"), **contender.changes),
                dataset, rate, seconds, say)
            say(f"  {contenders[contender.name]}")
    return {"dataset": dataset, "model": settings.model, "rate": rate, "seconds": seconds,
            "label_delay_s": LABEL_DELAY_S, **run.machine(),
            "contenders": {name: contenders.get(name) or {"skipped": skipped[name]}
                           for name in TITLES if name != "in_process_limit"}}


def format_table(result: dict) -> str:
    def number(value, pattern: str, missing: str = "behind") -> str:
        return missing if value is None else pattern.format(value)

    lines = [f"{'contender':18} {'records':>8} {'predicted':>10} {'feed rec/s':>11} {'p50 ms':>9} {'p99 ms':>9} "
             f"{'max ms':>9}"]
    for name, c in result["contenders"].items():
        if "skipped" in c:
            lines.append(f"{TITLES[name]:18} {c['skipped']}")
            continue
        lines.append(f"{TITLES[name]:18} {c['records']:>8} {c['predicted']:>10} "
                     f"{number(c['feed_records_per_second'], '{:,.0f}', '-'):>11} {number(c['p50_ms'], '{:.1f}'):>9} "
                     f"{number(c['p99_ms'], '{:.1f}'):>9} {number(c['max_ms'], '{:.1f}'):>9}")
    lines.append(f"{result['dataset']} at {result['rate']:g} records/s for {result['seconds']:g}s, labels "
                 f"{result['label_delay_s']:g}s later, model {result['model']}; from a record's produce time to its "
                 "prediction's append time ('behind': not every record predicted)")
    lines.append(machine_line(result, "every latency is longer"))
    return "\n".join(lines)
