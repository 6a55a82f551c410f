"""Hoeffding Adaptive Tree: grows with the stream and replaces branches when the concept drifts."""

from river import tree


def build():
    return tree.HoeffdingAdaptiveTreeClassifier(grace_period=100, delta=1e-5, seed=42)
