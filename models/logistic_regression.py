"""Scaled logistic regression: a fast, steady baseline for binary classification.

Features come typed from the feature view: numbers (and booleans, as 0.0/1.0) are scaled,
categoricals (strings) one-hot encoded, ``name_value`` -> 1, before the linear model.

    >>> model = build()
    >>> for i in range(60):
    ...     model.learn_one({"age": float(i % 3), "plan": ["gold", "basic", "trial"][i % 3]}, i % 3 == 0)
    >>> model.predict_one({"age": 0.0, "plan": "gold"}), model.predict_one({"age": 1.0, "plan": "basic"})
    (True, False)
"""

import numbers

from river import compose, linear_model, optim, preprocessing


def build():
    numeric = compose.SelectType(numbers.Number) | preprocessing.StandardScaler()
    categorical = compose.SelectType(str) | preprocessing.OneHotEncoder()
    return (numeric + categorical) | linear_model.LogisticRegression(optimizer=optim.SGD(0.1))
