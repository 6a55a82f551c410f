"""`mlstream bench scorer`: the stream app's throughput beside its limit, a plain loop and a framework peer.

One backlog of records and labels is produced first, through the project's feed, into
source topics of its own. Each contender then does the same job on it (decode the Avro
record, score it with the model spec, encode and produce an Avro prediction, join the label
by record id, learn, in prequential order), in rounds that alternate between contenders:

- ``in_process_limit``: :mod:`tools.bench.scoring_job` over the backlog's bytes in memory,
  no Kafka: what decoding, scoring, encoding and learning alone cost;
- ``plain_loop``: :mod:`tools.bench.plain_loop`, batches from confluent-kafka and an
  in-memory join, the reference a data plane is held against;
- ``quix_streams``: :mod:`tools.bench.quix_contender`, in an environment of its own
  (``make .venv-quix/.installed``), skipped with a note when there is none;
- ``app`` and ``app_metrics_off``: the real ``mlstream app``, with everything on, and with
  per-prediction metrics off.

For every round of a Kafka contender the backlog is copied byte for byte (keys, values,
partitions, timestamps) into fresh topics before the contender starts, so each reads the
same bytes and none is timed while the copy runs. Its throughput is counted on its own
predictions topic, where the broker stamps each prediction as it is appended: predictions
between the first and the last, over the time between them. Start-up is thus left out, and
the clock is the broker's whatever the contender's producer does. CPU is the contender's
process tree's, from when its first prediction shows to when its last does; peak RSS is its
main process's high-water mark. After each round, every record must have exactly one
prediction on the topic.

On a shared machine other work only ever slows a round down: the best round is shown with
the median, and the load average before and after is part of the result.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


from mlstream.errors import UserError
from mlstream.kafka import clients
from mlstream.kafka.reader import TopicEnds, read_all
from mlstream.kafka.topics import init, topic_codec
from mlstream.settings import REPO_ROOT, Settings
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from tools.bench.plain_loop import produce
from tools.bench.rounds import BenchRun, cpu_seconds, init_round, machine_line, peak_rss_mb
from tools.bench.scoring_job import FramedAvro, InMemoryJoin, ScoringJob, registered_schema_id
from tools.demo import exited, log_tail, start_app, start_process, stop_app

CONTENDERS = ("in_process_limit", "plain_loop", "quix_streams", "app", "app_metrics_off")
TITLES = {"in_process_limit": "in-process limit", "plain_loop": "plain loop", "quix_streams": "Quix Streams",
          "app": "app", "app_metrics_off": "app, metrics off"}
DEFAULT_QUIX_PYTHON = REPO_ROOT / ".venv-quix" / "bin" / "python"
#: A contender that adds no prediction for this long is stuck: on a loaded machine the app still adds some each second.
STALL_S = 120.0
#: Until the first prediction shows, the topic is watched closely, so the CPU window starts near it.
POLL_S, FIRST_POLL_S = 0.05, 0.005
PROGRESS_EVERY_S = 5.0

Say = Callable[[str], None]


@dataclass(frozen=True)
class Message:
    """One backlog message, as read from its source topic."""

    partition: int
    offset: int
    key: bytes
    value: bytes
    timestamp_ms: int


@dataclass(frozen=True)
class Backlog:
    settings: Settings  # of the source topics; the in-process limit encodes with their schemas
    records: list[Message]
    labels: list[Message]

    @property
    def record_ids(self) -> Counter:
        return Counter(m.key.decode() for m in self.records)


def produce_backlog(settings: Settings, dataset: str, records: int, say: Say) -> Backlog:
    """Play ``records`` records of ``dataset`` and their labels (each right after its record) into
    the source topics, then read them back: from here on, every contender gets these bytes."""
    init(settings, say=lambda _: None)
    feed = play(examples(dataset), KafkaFeedSink(settings), dataset=dataset, source=source_name(dataset),
                label_delay_s=0.0, limit=records, progress=say)
    if feed.records < records:
        raise UserError(f"dataset {dataset} has only {feed.records} records; ask for fewer (--records) or "
                        "choose an endless dataset")

    def read(topic: str) -> list[Message]:
        return [Message(m.partition(), m.offset(), m.key(), m.value(), m.timestamp()[1])
                for m in read_all(settings, topic)]

    backlog = Backlog(settings, read(settings.topics.records), read(settings.topics.labels))
    if (len(backlog.records), len(backlog.labels)) != (feed.records, feed.labels):
        raise UserError(f"read back {len(backlog.records)} records and {len(backlog.labels)} labels of the "
                        f"{feed.records} and {feed.labels} produced: is Kafka overloaded?")
    return backlog


def copy_backlog(backlog: Backlog, settings: Settings) -> None:
    """The backlog, byte for byte and partition for partition, into this round's records and labels topics."""
    failures: list[str] = []
    producer = clients.producer(settings, **{"enable.idempotence": True,
                         "linger.ms": 20})
    for topic, messages in ((settings.topics.records, backlog.records), (settings.topics.labels, backlog.labels)):
        for m in messages:
            produce(producer, topic, m.key, m.value, partition=m.partition, timestamp=m.timestamp_ms,
                    on_delivery=lambda err, _: failures.append(str(err)) if err else None)
    if producer.flush(60) or failures:
        raise UserError(f"copying the backlog to {settings.topics.prefix}* failed: {failures[:1]}")


@dataclass
class Round:
    """One contender's figures on one pass over the backlog."""

    records_per_second: float | None
    cpu_seconds_per_1k: float | None
    peak_rss_mb: float | None
    predictions: int
    every_record_once: bool


def in_process_limit(backlog: Backlog) -> Round:
    """The job alone over the backlog in memory, records and labels in the order they were produced."""
    settings = backlog.settings
    registry = clients.registry_client(settings)
    avro = FramedAvro(lambda schema_id: registry.get_schema(schema_id).schema_str)
    prediction_schema = registered_schema_id(registry, settings.topics.predictions, "prediction")
    join = InMemoryJoin(ScoringJob(avro, settings.model, settings.model_version, prediction_schema))
    # Records first on a tie: a label is produced after its record, often within the same millisecond.
    stream = sorted([(m.timestamp_ms, False, m) for m in backlog.records]
                    + [(m.timestamp_ms, True, m) for m in backlog.labels], key=lambda entry: entry[:2])
    for m in backlog.records[:1] + backlog.labels[:1]:  # the writer schemas, fetched before the clock starts
        avro.schema(int.from_bytes(m.value[1:5], "big"))
    avro.schema(prediction_schema)
    topic, predictions = settings.topics.records, []
    cpu, wall = time.process_time(), time.perf_counter()
    for _, is_label, m in stream:
        if is_label:
            join.on_label(m.value)
        else:
            predictions.append(join.on_record(m.value, topic, m.partition, m.offset, time.perf_counter()))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    predicted = Counter(avro.decode(p)["record_id"] for p in predictions)
    return Round(round(len(predictions) / wall, 1), round(1000 * cpu / len(predictions), 4), None,
                 len(predictions), predicted == backlog.record_ids)


@dataclass(frozen=True)
class KafkaContender:
    """A contender that runs as its own process on a round's topics."""

    name: str
    start: Callable[[Settings, Path], subprocess.Popen]  # (the round's settings, its log) -> the process
    changes: dict = field(default_factory=dict)  # to the settings of its rounds

    @property
    def title(self) -> str:
        return TITLES[self.name]


def kafka_contenders(quix_python: str | Path | None) -> tuple[list[KafkaContender], dict[str, str]]:
    """The contenders that run on Kafka, in round order, and those skipped, with why.

    ``quix_python``: the interpreter of the Quix Streams environment (None: ``.venv-quix``'s)."""
    quix_python = Path(quix_python) if quix_python else DEFAULT_QUIX_PYTHON
    plain = KafkaContender("plain_loop", lambda s, log: start_process(
        [sys.executable, "-m", "tools.bench.plain_loop"], s, log))
    quix = KafkaContender("quix_streams", lambda s, log: start_process(
        [str(quix_python), "-m", "tools.bench.quix_contender"], s, log, env={"PYTHONPATH": str(REPO_ROOT)}))
    apps = [KafkaContender("app", start_app, {"prediction_metrics": True}),
            KafkaContender("app_metrics_off", start_app, {"prediction_metrics": False})]
    missing = quix_missing(quix_python)
    return ([plain] + apps, {"quix_streams": missing}) if missing else ([plain, quix] + apps, {})


def quix_missing(python: Path) -> str | None:
    """Why the Quix Streams contender cannot run, or None if it can."""
    if not python.exists():
        return f"skipped: no Quix Streams environment at {python} (make .venv-quix/.installed makes one)"
    found = subprocess.run([str(python), "-c", "import quixstreams"], capture_output=True, text=True)
    if found.returncode:
        return f"skipped: {python} cannot import quixstreams: {(found.stderr.strip().splitlines() or ['?'])[-1]}"
    return None


@dataclass
class Drained:
    """How far a contender got on its predictions topic before it was stopped."""

    predictions: int
    complete: bool
    cpu_seconds_per_1k: float | None  # from its first prediction seen to its last
    peak_rss_mb: float


def drain(title: str, settings: Settings, process: subprocess.Popen, log_path: Path, expected: int, say: Say,
          stall_s: float = STALL_S, until: float | None = None) -> Drained:
    """Watch the predictions topic's end offsets until it holds ``expected`` predictions, no new
    one came for ``stall_s``, or ``time.monotonic()`` passes ``until``; raise if the process dies."""
    first: tuple[int, float] | None = None  # (predictions, CPU seconds) when the first showed
    seen, moved, shown = 0, time.monotonic(), time.monotonic()
    with TopicEnds(settings, settings.topics.predictions) as ends:
        while True:
            if process.poll() is not None:
                raise exited(title, process, log_path)
            count, now = sum(ends.read().values()), time.monotonic()
            if count and first is None:
                first = (count, cpu_seconds(process.pid))
            if count > seen:
                seen, moved = count, now
            if count >= expected or now - moved > stall_s or (until is not None and now > until):
                break
            if now - shown >= PROGRESS_EVERY_S:
                shown = now
                say(f"  {title}: {count}/{expected} predictions")
            time.sleep(POLL_S if first else FIRST_POLL_S)
        cpu, rss = cpu_seconds(process.pid), peak_rss_mb(process.pid)
    per_1k = round(1000 * (cpu - first[1]) / (count - first[0]), 4) if first and count > first[0] else None
    return Drained(count, count >= expected, per_1k, rss)


def kafka_round(contender: KafkaContender, backlog: Backlog, settings: Settings, say: Say) -> Round:
    """The backlog copied into the round's topics, then drained by a fresh contender process."""
    init_round(settings)
    copy_backlog(backlog, settings)
    log_path = settings.state_dir / "logs" / f"{contender.name}.log"
    process = contender.start(settings, log_path)
    try:
        drained = drain(contender.title, settings, process, log_path, len(backlog.records), say)
        if not drained.complete:  # its last words before it is stopped, which are many
            raise UserError(f"{contender.title} made no prediction for {STALL_S:.0f}s, at {drained.predictions} "
                            f"of {len(backlog.records)}; {log_tail(log_path, lines=40)}")
    finally:
        stop_app(process)
    messages = read_all(settings, settings.topics.predictions)
    codec = topic_codec(clients.registry_client(settings), settings, settings.topics.predictions)
    predicted = Counter(codec.decode(m.value())["record_id"] for m in messages)
    appended = [m.timestamp()[1] for m in messages]
    span_s = (max(appended) - min(appended)) / 1000
    return Round(round((len(messages) - 1) / span_s, 1) if span_s else None, drained.cpu_seconds_per_1k,
                 drained.peak_rss_mb, len(messages), predicted == backlog.record_ids)


def figures(rounds: list[Round]) -> dict:
    """Median and best over the rounds (a missing figure, from a round too short to time, is left out)."""

    def present(name: str) -> list[float]:
        return [getattr(r, name) for r in rounds if getattr(r, name) is not None]

    rates, cpu, rss = present("records_per_second"), present("cpu_seconds_per_1k"), present("peak_rss_mb")
    return {
        "records_per_second": round(statistics.median(rates), 1) if rates else None,
        "records_per_second_best": max(rates, default=None),
        "cpu_seconds_per_1k": round(statistics.median(cpu), 4) if cpu else None,
        "peak_rss_mb": max(rss, default=None),
        "rounds": [vars(r) for r in rounds],
    }


def with_ratios(contenders: dict[str, dict]) -> dict[str, dict]:
    """Each contender's median records/s over each other's: ``ratio_to``."""
    medians = {name: c["records_per_second"] for name, c in contenders.items() if c.get("records_per_second")}
    for name, c in contenders.items():
        if name in medians:
            c["ratio_to"] = {peer: round(medians[name] / rate, 4) for peer, rate in medians.items() if peer != name}
    return contenders


def bench_scorer(settings: Settings, dataset: str = "agrawal-drift", records: int = 50_000, repeat: int = 3,
                 quix_python: str | Path | None = None, say: Say = print) -> dict:
    """Every contender ``repeat`` times on one backlog, rounds alternating between contenders."""
    if records < 2 or repeat < 1:
        raise UserError("--records must be at least 2 and --repeat at least 1")
    on_kafka, skipped = kafka_contenders(quix_python)
    for name, note in skipped.items():
        say(f"{TITLES[name]}: {note}")
    rounds: dict[str, list[Round]] = {name: [] for name in CONTENDERS if name not in skipped}
    with BenchRun(settings) as run:
        say(f"backlog: {records} {dataset} records and their labels")
        backlog = produce_backlog(run.round_settings("source"), dataset, records, say)
        for i in range(repeat):
            say(f"round {i + 1}/{repeat}: in-process limit")
            rounds["in_process_limit"].append(done := in_process_limit(backlog))
            say(f"  {done}")
            for contender in on_kafka:
                say(f"round {i + 1}/{repeat}: {contender.title} (backlog copied to fresh topics, then a fresh process)")
                name = f"{contender.name.replace('_', '-')}{i}"
                done = kafka_round(contender, backlog, run.round_settings(name, **contender.changes), say)
                rounds[contender.name].append(done)
                say(f"  {done}")
    contenders = with_ratios({name: figures(rs) for name, rs in rounds.items()})
    return {"dataset": dataset, "model": settings.model, "records": records, "repeat": repeat, **run.machine(),
            "contenders": {name: contenders.get(name) or {"skipped": skipped[name]} for name in CONTENDERS}}


def format_table(result: dict) -> str:
    def number(value, pattern: str) -> str:
        return "-" if value is None else pattern.format(value)

    lines = [f"{'contender':18} {'median rec/s':>12} {'best rec/s':>11} {'x limit':>8} {'x plain':>8} "
             f"{'CPU s/1k':>9} {'peak RSS MB':>12}"]
    for name in CONTENDERS:
        c = result["contenders"][name]
        if "skipped" in c:
            lines.append(f"{TITLES[name]:18} {c['skipped']}")
            continue
        ratios = c.get("ratio_to", {}) | {name: 1.0}
        lines.append(f"{TITLES[name]:18} {number(c['records_per_second'], '{:,.0f}'):>12} "
                     f"{number(c['records_per_second_best'], '{:,.0f}'):>11} "
                     f"{number(ratios.get('in_process_limit'), '{:.3f}'):>8} "
                     f"{number(ratios.get('plain_loop'), '{:.3f}'):>8} "
                     f"{number(c['cpu_seconds_per_1k'], '{:.3f}'):>9} {number(c['peak_rss_mb'], '{:,.0f}'):>12}")
    every = all(r["every_record_once"] for c in result["contenders"].values() for r in c.get("rounds", []))
    lines.append(f"{result['records']} {result['dataset']} records, model {result['model']}, median and best of "
                 f"{result['repeat']} alternating rounds; every record predicted exactly once: "
                 f"{'yes' if every else 'NO'}")
    lines.append(machine_line(result, "every contender is slower"))
    return "\n".join(lines)
