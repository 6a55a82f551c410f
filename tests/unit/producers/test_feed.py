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


def run(n, rate, delay):
    clock = FakeClock()
    sink = ListSink(clock)
    data = [({"x": float(i)}, i % 2 == 0) for i in range(n)]
    stats = play(iter(data), sink, dataset="d", source="s", rate=rate, label_delay_s=delay,
                 progress=lambda _: None, clock=clock, sleep=clock.sleep, wall_ms=lambda: int(clock.now * 1000))
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
