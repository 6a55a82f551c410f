"""A stand-in clerical reviewer: confirms or rejects some of the linkage app's candidate pairs, late.

Real reviewers work from the link events (which pairs were candidates, how they were
scored) and send their verdicts to the confirmed-pairs topic some time later; the app's
classifier (a config's ``classifier`` key) learns from them. This one knows the truth
from the config's ``truth`` key, so it works on test data such as FEBRL only. The choice
of pairs and the delay are plain logic (:class:`Reviewer`); :func:`review` runs it on Kafka.

>>> from linkage.config import TruthSettings
>>> reviewer = Reviewer(TruthSettings("record_id", "^rec-(\\\\d+)-"), share=1.0, per_record=1, delay_s=2.0)
>>> event = {"source": "b", "record_id": "rec-7-dup-0",
...          "candidates": [{"source": "a", "record_id": "rec-7-org"}, {"source": "a", "record_id": "rec-9-org"}]}
>>> [(due, pair["other_record_id"], pair["match"]) for due, pair in reviewer.verdicts(event, now_ms=1_000)]
[(3000, 'rec-7-org', True)]
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


from linkage.config import TruthSettings
from mlstream.errors import UserError
from mlstream.kafka import clients
from mlstream.kafka.producer import AvroProducer
from mlstream.kafka.topics import topic_codec
from mlstream.settings import Settings

PROGRESS_EVERY_S = 2.0


@dataclass
class Reviewer:
    truth: TruthSettings
    share: float = 0.2  # of the link events with candidates, the share it reviews
    per_record: int = 2  # candidates it reviews per reviewed event, best scored first
    delay_s: float = 2.0  # from the link event to the verdict
    name: str = "simulated-reviewer"
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def __post_init__(self):
        if self.truth.field != "record_id":
            raise UserError("the simulated reviewer judges pairs by record id: the config's truth must use "
                            "field: record_id")

    def verdicts(self, event: dict, now_ms: int) -> list[tuple[int, dict]]:
        """(due time in ms, confirmed pair) for the candidates of ``event`` it reviews."""
        if not event["candidates"] or self.rng.random() >= self.share:
            return []
        entity = self.truth.entity(event["record_id"], {})
        due = now_ms + int(self.delay_s * 1000)
        return [(due, {"source": event["source"], "record_id": event["record_id"],
                       "other_source": c["source"], "other_record_id": c["record_id"],
                       "match": entity is not None and entity == self.truth.entity(c["record_id"], {}),
                       "reviewer": self.name, "confirmed_at": due})
                for c in sorted(event["candidates"], key=lambda c: -c.get("match_probability", 0.0))
                [:self.per_record]]


def review(settings: Settings, reviewer: Reviewer, *, limit: int | None = None, timeout_s: float | None = None,
           progress: Callable[[str], None] = print) -> int:
    """Follow the link events from the start and send verdicts when due; stop after ``limit`` verdicts,
    ``timeout_s`` seconds, or Ctrl-C. Returns the number sent."""
    registry = clients.registry_client(settings)
    links = topic_codec(registry, settings, settings.topics.links)
    confirmed = topic_codec(registry, settings, settings.topics.confirmed_pairs)
    producer = AvroProducer(settings)
    consumer = clients.consumer(settings, **{"group.id": f"{settings.topics.prefix}linkage-reviewer",
                                             "auto.offset.reset": "earliest"})
    consumer.subscribe([settings.topics.links])
    pending: list[tuple[int, int, dict]] = []  # (due, sequence, pair): a heap
    sent = sequence = 0
    started = last_report = time.monotonic()
    try:
        while (limit is None or sent < limit) and (timeout_s is None or time.monotonic() - started < timeout_s):
            message = consumer.poll(0.1)
            now_ms = time.time_ns() // 1_000_000
            if message is not None and message.error() is None:
                for due, pair in reviewer.verdicts(links.decode(message.value()), now_ms):
                    heapq.heappush(pending, (due, sequence, pair))
                    sequence += 1
            while pending and pending[0][0] <= now_ms and (limit is None or sent < limit):
                _, _, pair = heapq.heappop(pending)
                producer.send(confirmed, f"{pair['source']}|{pair['record_id']}".encode(), pair)
                sent += 1
            if time.monotonic() - last_report >= PROGRESS_EVERY_S:
                last_report = time.monotonic()
                progress(f"linkage review: {sent} verdicts sent, {len(pending)} waiting their delay")
    except KeyboardInterrupt:
        pass
    finally:
        producer.flush()
        consumer.close()
    progress(f"linkage review: done, {sent} verdicts sent to {settings.topics.confirmed_pairs}")
    return sent
