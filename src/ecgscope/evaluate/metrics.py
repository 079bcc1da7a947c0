"""Point metrics (scikit-learn's) and a patient-level bootstrap for their confidence intervals."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import mean_absolute_error, r2_score, roc_auc_score


def auroc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y_true = np.asarray(y_true).astype(bool)
    if y_true.all() or not y_true.any():
        return float("nan")
    return float(roc_auc_score(y_true, score))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error, in the target's units."""
    return float(mean_absolute_error(y_true, y_pred))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination."""
    return float(r2_score(y_true, y_pred))


def bootstrap_ci(metric: Callable[[np.ndarray, np.ndarray], float], y_true: np.ndarray, y_pred: np.ndarray,
                 groups: np.ndarray | None = None, n_boot: int = 500, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float, float]:
    """Point estimate and percentile (1 - alpha) CI of ``metric``, resampling ``groups`` (patients), not rows."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    groups = np.arange(len(y_true)) if groups is None else np.asarray(groups)
    uniq, inverse = np.unique(groups, return_inverse=True)
    rows_of = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        pick = np.concatenate([rows_of[g] for g in rng.integers(0, len(uniq), len(uniq))])
        value = metric(y_true[pick], y_pred[pick])
        if np.isfinite(value):
            stats.append(value)
    point = metric(y_true, y_pred)
    if not stats:
        return point, float("nan"), float("nan")
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return point, float(lo), float(hi)


def paired_difference_ci(metric: Callable[[np.ndarray, np.ndarray], float], y_true: np.ndarray,
                         pred_a: np.ndarray, pred_b: np.ndarray, groups: np.ndarray | None = None,
                         n_boot: int = 500, alpha: float = 0.05, seed: int = 0) -> tuple[float, float, float]:
    """``metric(a) - metric(b)`` on the same patients, with a paired patient-bootstrap (1 - alpha) CI.

    Both models are scored on each resample, so the interval reflects the difference itself, which is much
    narrower than comparing two separate intervals when the models' errors are correlated.
    """
    both = np.column_stack([np.asarray(pred_a, dtype=float), np.asarray(pred_b, dtype=float)])

    def difference(y: np.ndarray, p: np.ndarray) -> float:
        return metric(y, p[:, 0]) - metric(y, p[:, 1])

    return bootstrap_ci(difference, y_true, both, groups, n_boot=n_boot, alpha=alpha, seed=seed)
