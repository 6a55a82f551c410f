from producers.datasets import examples
from producers.feed import DelayedLabels, play, record_id


class ListSink:
    def __init__(self, clock):
        self.clock = clock
        self.sent = []  # (kind, time, value)

    def send_record(self, record):
        self.sent.append(("record", self.clock.now, record))

    def send_label(self, label):
        self.sent.append(("label", self.clock.now, label))

    def flush(self):
        pass


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def run(n, rate, delay, ready=None, clock=None):
    clock = clock or FakeClock()
    sink = ListSink(clock)
    data = [({"x": float(i)}, i % 2 == 0) for i in range(n)]
    stats = play(iter(data), sink, dataset="d", source="s", rate=rate, label_delay_s=delay,
                 progress=lambda _: None, clock=clock, sleep=clock.sleep, wall_ms=lambda: int(clock.now * 1000),
                 ready=ready)
    return stats, sink.sent


def test_every_record_gets_its_label_no_earlier_than_the_delay():
    stats, sent = run(50, rate=100.0, delay=0.2)
    assert stats.records == 50 and stats.labels == 50
    record_times = {v["id"]: t for kind, t, v in sent if kind == "record"}
    for kind, t, value in sent:
        if kind == "label":
            assert t >= record_times[value["id"]] + 0.2 - 1e-9
    labels = [v for kind, _, v in sent if kind == "label"]
    assert [v["label"] for v in labels] == [i % 2 == 0 for i in range(50)]


def test_rate_paces_the_records():
    stats, sent = run(101, rate=50.0, delay=0.0)
    times = [t for kind, t, _ in sent if kind == "record"]
    assert abs(times[-1] - 2.0) < 0.06  # 100 gaps of 1/50 s
    assert stats.seconds >= 2.0


def test_pacing_starts_at_the_first_example_however_long_the_dataset_takes_to_load():
    clock = FakeClock()
    sink = ListSink(clock)

    def slow_to_load():
        clock.sleep(5.0)  # e.g. a dataset parsed on first use
        yield from (({"x": float(i)}, True) for i in range(101))

    play(slow_to_load(), sink, dataset="d", source="s", rate=50.0, label_delay_s=0.0, progress=lambda _: None,
         clock=clock, sleep=clock.sleep, wall_ms=lambda: int(clock.now * 1000))
    times = [t for kind, t, _ in sink.sent if kind == "record"]
    assert abs(times[-1] - times[0] - 2.0) < 0.06  # paced, not sent at once to catch up with 5 s


def test_ids_are_stable_and_labels_follow_records():
    _, first = run(10, rate=0.0, delay=0.5)
    _, second = run(10, rate=0.0, delay=0.5)
    ids = [v["id"] for kind, _, v in first if kind == "record"]
    assert ids == [v["id"] for kind, _, v in second if kind == "record"]
    assert ids[3] == record_id("d", 42, 3)
    kinds = [kind for kind, _, _ in first]
    assert kinds == ["record"] * 10 + ["label"] * 10


def test_delayed_labels_release_in_order():
    held = DelayedLabels(1.0)
    held.add(0.0, "a", 1)
    held.add(0.5, "b", 2)
    assert held.due(0.9) == []
    assert held.due(1.2) == [("a", 1)]
    assert held.next_release() == 1.5
    assert held.due(5.0) == [("b", 2)] and len(held) == 0


def test_datasets_give_string_names_and_float_values():
    for name in ("phishing", "bananas", "sea-drift", "agrawal-drift"):
        features, label = next(iter(examples(name)))
        assert features and all(isinstance(k, str) and isinstance(v, float) for k, v in features.items())
        assert label is not None


def test_the_ready_gate_holds_records_back_while_labels_keep_flowing():
    """A consumer that learns only 1 s after the feed starts: no record goes out past the gate's limit."""
    clock = FakeClock()
    limit = 10

    def ready(sent_records):  # the app has "learned" every label sent up to 1 s ago, none before t=1
        learned = sum(1 for kind, t, _ in sent if kind == "label" and t <= clock.now - 1.0)
        return sent_records - learned < limit

    sent = []
    sink = ListSink(clock)
    sink.sent = sent
    data = [({"x": float(i)}, True) for i in range(40)]
    stats = play(iter(data), sink, dataset="d", source="s", rate=100.0, label_delay_s=0.1, progress=lambda _: None,
                 clock=clock, sleep=clock.sleep, wall_ms=lambda: int(clock.now * 1000), ready=ready)
    assert stats.records == 40 and stats.labels == 40 and stats.held_back_s > 0.5
    records = [t for kind, t, _ in sent if kind == "record"]
    assert records[limit - 1] < 0.1 <= 1.0 < records[limit]  # held until the first labels counted
    gaps = [b - a for a, b in zip(records, records[1:])]
    assert min(gaps) >= 0.01 - 1e-9  # after a hold the pace resumes: no burst of the records it held back
