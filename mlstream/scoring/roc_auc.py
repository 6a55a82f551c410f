"""ROC AUC over river's thresholds, counted in bins: the same figure as ``river.metrics.ROCAUC`` for a
fraction of its cost.

river's ROCAUC keeps one confusion matrix per threshold and updates all of them for every label
(ten by default): in the stream app's profile it was the monitor's largest part. A score exceeds
thresholds ``0 .. k-1`` of the ascending list and no other, so counting labels by that ``k`` (one
bin per label, found by bisection) gives every threshold's true and false positives when the
figure is asked for, which is once per report rather than once per label.

>>> from math import isclose
>>> from river import metrics
>>> pairs = [(True, 0.9), (False, 0.6), (True, 0.35), (False, 0.1), (True, 0.8), (False, 0.55), (True, 0.0)]
>>> ours, rivers = BinnedROCAUC(), metrics.ROCAUC()
>>> for y, p in pairs:
...     ours.update(y, p)
...     rivers.update(y, p)
>>> isclose(ours.get(), rivers.get()), round(ours.get(), 4)
(True, 0.625)
>>> ours.revert(True, 0.0)
>>> rivers.revert(True, 0.0)
>>> isclose(ours.get(), rivers.get())
True
"""

from __future__ import annotations

from bisect import bisect_left


class BinnedROCAUC:
    """``river.metrics.ROCAUC(n_thresholds)``'s figure, for ``utils.Rolling`` too (it reverts)."""

    def __init__(self, n_thresholds: int = 10, pos_val=True):
        self.pos_val = pos_val
        self.thresholds = [i / (n_thresholds - 1) for i in range(n_thresholds)]
        self.thresholds[0] -= 1e-7
        self.thresholds[-1] += 1e-7
        #: bin k: labels whose score exceeds exactly the k lowest thresholds
        self.positives = [0.0] * (n_thresholds + 1)
        self.negatives = [0.0] * (n_thresholds + 1)

    def _count(self, y_true, y_pred, w: float) -> None:
        p_true = y_pred.get(True, 0.0) if isinstance(y_pred, dict) else y_pred
        exceeded = bisect_left(self.thresholds, p_true)  # p > t for exactly the thresholds below this index
        (self.positives if y_true == self.pos_val else self.negatives)[exceeded] += w

    def update(self, y_true, y_pred, w: float = 1.0) -> None:
        self._count(y_true, y_pred, w)

    def revert(self, y_true, y_pred, w: float = 1.0) -> None:
        self._count(y_true, y_pred, -w)

    def get(self) -> float:
        total_pos, total_neg = sum(self.positives), sum(self.negatives)
        tprs, fprs = [], []
        tp = fp = 0.0  # labels whose score exceeds the threshold: those in the bins above it
        above_pos, above_neg = total_pos, total_neg
        for i in range(len(self.thresholds)):
            above_pos -= self.positives[i]
            above_neg -= self.negatives[i]
            tp, fp = above_pos, above_neg
            tprs.append(tp / total_pos if total_pos else 0.0)
            fprs.append(fp / total_neg if total_neg else 0.0)
        # river's -trapezoid(x=fprs, y=tprs), the thresholds ascending so the rates fall
        return -sum((fprs[i + 1] - fprs[i]) * (tprs[i + 1] + tprs[i]) / 2 for i in range(len(fprs) - 1))
