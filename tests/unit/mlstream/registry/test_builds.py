"""Build manifests: split plans, frames and the JSON round trip (no Kafka)."""

from __future__ import annotations

from mlstream.registry.manifest import BuildManifest, OffsetRange, SplitManifest, frames, plan_splits


def test_plan_covers_every_offset_once_in_order():
    plan = plan_splits("t", {0: 5, 1: 0, 2: 0}, {0: 105, 1: 7, 2: 0}, {"train": 0.7, "validation": 0.15, "test": 0.15})
    for partition, (low, high) in {0: (5, 105), 1: (0, 7)}.items():
        ranges = [r for name in ("train", "validation", "test") for r in plan[name] if r.partition == partition]
        assert ranges[0].start == low and ranges[-1].end == high
        assert all(a.end == b.start for a, b in zip(ranges, ranges[1:]))
    assert plan["train"][0] == OffsetRange("t", 0, 5, 75)
    assert not any(r.partition == 2 for rs in plan.values() for r in rs)


def test_frames_are_length_prefixed_values():
    assert frames([b"ab", b""]) == b"\x00\x00\x00\x02ab\x00\x00\x00\x00"


def test_manifest_round_trips_through_json():
    manifest = BuildManifest(
        model="m", spec="logistic_regression", version=2, created_at_ms=1, code_version="abc", records_topic="r",
        labels_topic="l", labels=[OffsetRange("l", 0, 0, 9)], schema_versions={"r-value": [1, 2]}, features=["x"],
        sampling={"method": "none"}, split_fractions={"train": 1.0},
        splits=[SplitManifest("train", [OffsetRange("r", 0, 0, 9)], 9, 0, "a", "b", "c")], metrics={"acc": 0.5})
    assert BuildManifest.from_json(manifest.to_json()) == manifest
