"""A model spec by built-in name or by a module's dotted path (a generated project's own spec)."""

from __future__ import annotations

import sys

import pytest

import models


def test_a_dotted_path_builds_the_modules_pipeline(tmp_path, monkeypatch):
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text("from river import linear_model\n\ndef build():\n"
                                      "    return linear_model.LogisticRegression()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "shop", raising=False)
    model = models.build("shop.model")
    model.learn_one({"x": 1.0}, True)
    assert model.predict_one({"x": 1.0}) is True


@pytest.mark.parametrize("name, says", [
    ("nope", "unknown model spec 'nope'"),
    ("no_such_package.model", "cannot import it"),
    ("os.path", "has no build()"),
    ("bad..path", "unknown model spec"),
])
def test_a_spec_that_is_not_there_says_why(name, says):
    with pytest.raises(ValueError, match=says):
        models.check(name)
