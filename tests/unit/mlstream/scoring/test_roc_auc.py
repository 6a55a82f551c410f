import random
from math import isclose

from river import metrics, utils

from mlstream.scoring.roc_auc import BinnedROCAUC


def test_binned_roc_auc_gives_rivers_figure_cumulative_and_rolling_on_a_long_stream():
    rng = random.Random(3)
    ours, rivers = BinnedROCAUC(), metrics.ROCAUC()
    ours_rolling = utils.Rolling(BinnedROCAUC, window_size=500)
    rivers_rolling = utils.Rolling(metrics.ROCAUC, window_size=500)
    for i in range(3000):
        y = rng.random() < 0.4
        p = min(1.0, max(0.0, rng.gauss(0.6 if y else 0.4, 0.25)))  # 0 and 1 exactly, often: the edge thresholds
        for metric in (ours, rivers, ours_rolling, rivers_rolling):
            metric.update(y, p)
        if i % 101 == 0:
            assert isclose(ours.get(), rivers.get(), abs_tol=1e-12)
            assert isclose(ours_rolling.get(), rivers_rolling.get(), abs_tol=1e-12)
    assert 0.6 < ours.get() < 0.8


def test_binned_roc_auc_takes_a_probability_dict_and_is_zero_before_any_label():
    metric = BinnedROCAUC()
    assert metric.get() == 0.0
    metric.update(True, {True: 0.8, False: 0.2})
    metric.update(False, {True: 0.3, False: 0.7})
    assert metric.get() == 1.0
