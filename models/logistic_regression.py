"""Scaled logistic regression: a fast, steady baseline for binary classification."""

from river import compose, linear_model, optim, preprocessing


def build():
    return compose.Pipeline(
        preprocessing.StandardScaler(),
        linear_model.LogisticRegression(optimizer=optim.SGD(0.1)),
    )
