"""Agreement between predicted and measured values: error, correlation, concordance, Bland-Altman."""

from __future__ import annotations

import numpy as np

from ecgscope.evaluate.metrics import mae, per_resample, r2


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error, in the target's units."""
    return float(np.sqrt(np.mean((np.asarray(y_true, float) - np.asarray(y_pred, float)) ** 2)))


def pearson_r(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    if np.std(y_true) == 0 or np.std(y_pred) == 0:
        return float("nan")
    return float(np.corrcoef(y_true, y_pred)[0, 1])


def concordance_correlation(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Lin's concordance correlation coefficient: agreement with the identity line, not just correlation."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    covariance = np.mean((y_true - y_true.mean()) * (y_pred - y_pred.mean()))
    return float(2 * covariance / (y_true.var() + y_pred.var() + (y_true.mean() - y_pred.mean()) ** 2))


def bland_altman(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Bias (mean of predicted - measured) and 95 % limits of agreement (bias -/+ 1.96 SD of the differences)."""
    diff = np.asarray(y_pred, float) - np.asarray(y_true, float)
    bias, sd = float(diff.mean()), float(diff.std(ddof=1))
    return {"bias": bias, "loa_low": bias - 1.96 * sd, "loa_high": bias + 1.96 * sd}


#: Every regression metric by name, as (y_true, y_pred) -> float, for tables with bootstrap CIs.
_agreement = per_resample(bland_altman)
REGRESSION_METRICS = {
    "MAE": mae, "RMSE": rmse, "R2": r2, "Pearson r": pearson_r, "CCC": concordance_correlation,
    "bias": lambda y, p: _agreement(y, p)["bias"],
    "LoA low": lambda y, p: _agreement(y, p)["loa_low"],
    "LoA high": lambda y, p: _agreement(y, p)["loa_high"],
}
