"""Datasets a feed can play: river's bundled ones, and endless synthetic streams with drift.

Each yields ``(features, label)`` with string feature names and float values,
the shape of the ``Record`` schema.

    >>> import itertools
    >>> features, label = next(iter(examples("phishing")))
    >>> sorted(features)[:2], label
    (['age_of_domain', 'anchor_from_other_domain'], True)
    >>> len(list(itertools.islice(examples("sea-drift", drift_at=10), 25)))
    25
"""

from __future__ import annotations

from typing import Iterator

#: name -> (description, endless)
DATASETS = {
    "phishing": ("river.datasets.Phishing: 1,250 web pages, phishing or not", False),
    "bananas": ("river.datasets.Bananas: 5,300 points of two banana-shaped classes", False),
    "shuttle": ("river.datasets.Shuttle: 49,097 NASA shuttle readings, 7% of them anomalies (label 1)", False),
    "sea-drift": ("river SEA concepts, abrupt-ish drift from variant 0 to 3 at --drift-at (endless)", True),
    "agrawal-drift": ("river Agrawal loan data, drift from function 0 to 2 at --drift-at (endless)", True),
}


def source_name(dataset: str) -> str:
    return f"river/{dataset}"


def _river_stream(name: str, seed: int, drift_at: int):
    # Imported here: river's datasets pull in scikit-learn and pandas, and every `mlstream`
    # command (the stream apps too) reads DATASETS to build its --help.
    from river import datasets
    from river.datasets import synth

    if name == "phishing":
        return datasets.Phishing()
    if name == "bananas":
        return datasets.Bananas()
    if name == "shuttle":
        return datasets.Shuttle()
    drifting = {"sea-drift": (synth.SEA, "variant", 0, 3),
                "agrawal-drift": (synth.Agrawal, "classification_function", 0, 2)}
    if name in drifting:
        generator, concept, before, after = drifting[name]
        return synth.ConceptDriftStream(
            stream=generator(**{concept: before}, seed=seed),
            drift_stream=generator(**{concept: after}, seed=seed),
            position=drift_at,
            width=max(1, drift_at // 50),
            seed=seed,
        )
    raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")


def examples(name: str, *, seed: int = 42, drift_at: int = 5000) -> Iterator[tuple[dict[str, float], object]]:
    for features, label in _river_stream(name, seed, drift_at):
        yield {str(k): float(v) for k, v in features.items()}, label
