"""Split-conformal prediction intervals: calibrated on held-out data, valid whatever the model.

Scores are normalised by the model's own standard deviation when it gives one (Gaussian heads), so the
intervals stay adaptive: wider where the model is unsure. With ``n`` calibration points the
ceil((n + 1)(1 - alpha))-th smallest score gives coverage of at least 1 - alpha (and below
1 - alpha + 1 / (n + 1) without ties) on test data exchangeable with the calibration data; when that rank
exceeds n no finite width is valid and the interval is infinite.

Exchangeable means the calibration patients took no part in fitting or choosing the model: not the
validation patients that picked its epoch, early stop or learning rate. ``ecgscope`` carves them out of
the training split before training (:func:`ecgscope.cohort.carve_calibration`).
"""

from __future__ import annotations

import numpy as np

from ecgscope.errors import NotFittedError


class SplitConformal:
    """Fit on calibration targets and predictions; then ``interval(pred, std)`` gives (lower, upper)."""

    def __init__(self, alpha: float = 0.1):
        self.alpha = alpha

    def fit(self, y_true: np.ndarray, y_pred: np.ndarray, y_std: np.ndarray | None = None) -> SplitConformal:
        """Learn the score quantile from calibration data (NaN targets ignored)."""
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
        scale = np.ones_like(y_pred) if y_std is None else np.maximum(np.asarray(y_std, float), 1e-9)
        keep = np.isfinite(y_true)
        scores = np.abs(y_true[keep] - y_pred[keep]) / scale[keep]
        n = scores.size
        if n < 1:
            raise ValueError("conformal calibration needs at least one labelled point, got none")
        rank = int(np.ceil((n + 1) * (1 - self.alpha)))  # the exact order statistic, 1-based
        self.quantile_ = float(np.sort(scores)[rank - 1]) if rank <= n else float("inf")
        self.normalised_ = y_std is not None
        self.n_calibration_ = n
        return self

    def interval(self, y_pred: np.ndarray, y_std: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds around ``y_pred`` at coverage 1 - alpha (infinite when the calibration set
        was too small for the level: fewer than 1 / alpha - 1 points)."""
        if not hasattr(self, "quantile_"):
            raise NotFittedError("SplitConformal is not fitted: call fit() on calibration data first")
        if self.normalised_ and y_std is None:
            raise ValueError("this calibration used the model's std; pass y_std as well")
        width = self.quantile_ * (np.asarray(y_std, float) if self.normalised_ else 1.0)
        return np.asarray(y_pred) - width, np.asarray(y_pred) + width

    def to_dict(self) -> dict:
        """What a model directory stores to rebuild the intervals."""
        return {"alpha": self.alpha, "quantile": self.quantile_, "normalised": self.normalised_,
                "n_calibration": self.n_calibration_}

    @classmethod
    def from_dict(cls, data: dict) -> SplitConformal:
        """Rebuild from :meth:`to_dict`."""
        obj = cls(data["alpha"])
        obj.quantile_, obj.normalised_, obj.n_calibration_ = data["quantile"], data["normalised"], data["n_calibration"]
        return obj
