"""Point metrics and a patient-level bootstrap for their confidence intervals.

The metrics are the textbook formulas in NumPy (tested equal to scikit-learn's): inside a bootstrap of a
thousand resamples, scikit-learn's input validation would cost more than the arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata


def auroc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present.

    Computed as the Mann-Whitney statistic from mid-ranks (equal to scikit-learn's ``roc_auc_score``, ties
    included, and about 20x faster, which matters inside bootstraps).
    """
    y_true = np.asarray(y_true).astype(bool)
    n_pos = int(y_true.sum())
    n_neg = len(y_true) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(score, dtype=float))
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error, in the target's units."""
    return float(np.mean(np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float))))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination (1 - residual / total sum of squares; as scikit-learn's ``r2_score``)."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    total = np.sum((y_true - y_true.mean()) ** 2)
    return float(1 - np.sum((y_true - y_pred) ** 2) / total) if total > 0 else float("nan")


def patient_rows(groups: np.ndarray) -> list[np.ndarray]:
    """Row indices of each patient (group), in the order of ``np.unique``."""
    _, inverse = np.unique(groups, return_inverse=True)
    return np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])


def bootstrap_metrics(metrics: dict[str, Callable[[np.ndarray, np.ndarray], float]], y_true: np.ndarray,
                      y_pred: np.ndarray, groups: np.ndarray | None = None, n_boot: int = 500, alpha: float = 0.05,
                      seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """Point estimate and percentile (1 - alpha) CI of each metric, all computed on the same resamples of
    ``groups`` (patients, not rows: a patient's ECGs stay together). Non-finite resample values are dropped."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rows_of = patient_rows(np.arange(len(y_true)) if groups is None else np.asarray(groups))
    rng = np.random.default_rng(seed)
    stats: dict[str, list[float]] = {name: [] for name in metrics}
    for _ in range(n_boot):
        pick = np.concatenate([rows_of[g] for g in rng.integers(0, len(rows_of), len(rows_of))])
        for name, metric in metrics.items():
            value = metric(y_true[pick], y_pred[pick])
            if np.isfinite(value):
                stats[name].append(value)
    out = {}
    for name, metric in metrics.items():
        point = float(metric(y_true, y_pred))
        if stats[name]:
            lo, hi = np.quantile(stats[name], [alpha / 2, 1 - alpha / 2])
            out[name] = (point, float(lo), float(hi))
        else:
            out[name] = (point, float("nan"), float("nan"))
    return out


def bootstrap_ci(metric: Callable[[np.ndarray, np.ndarray], float], y_true: np.ndarray, y_pred: np.ndarray,
                 groups: np.ndarray | None = None, n_boot: int = 500, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float, float]:
    """Point estimate and percentile (1 - alpha) CI of ``metric``, resampling ``groups`` (patients), not rows."""
    return bootstrap_metrics({"m": metric}, y_true, y_pred, groups, n_boot, alpha, seed)["m"]


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
