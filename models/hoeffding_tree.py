"""Hoeffding Adaptive Tree: grows with the stream and replaces branches when the concept drifts.

Typed features need no encoding here: river's trees split numbers on thresholds and take
categoricals (strings) as nominal attributes, one branch per value.

    >>> model = build()
    >>> for i in range(300):
    ...     model.learn_one({"age": float(i % 5), "plan": ["gold", "basic"][i % 2]}, i % 2 == 0)
    >>> model.predict_one({"age": 1.0, "plan": "gold"}), model.predict_one({"age": 1.0, "plan": "basic"})
    (True, False)
"""

from river import tree


def build():
    return tree.HoeffdingAdaptiveTreeClassifier(grace_period=100, delta=1e-5, seed=42)
