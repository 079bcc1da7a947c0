"""Risk groups from a score, and each group's event rate at a horizon with its CI."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgscope.survival.curves import event_rate_at


def risk_groups(score: np.ndarray, *, thresholds: list[float] | None = None, quantiles: list[float] | None = None,
                labels: list[str] | None = None) -> np.ndarray:
    """Group patients by ``score`` (higher = riskier) at fixed ``thresholds`` or at score ``quantiles``
    (e.g. [0.8] for the top fifth); default labels are ``low`` / ``high`` or ``group 1..k`` from low up."""
    score = np.asarray(score, float)
    if (thresholds is None) == (quantiles is None):
        raise ValueError("give exactly one of thresholds or quantiles")
    cuts = np.quantile(score, quantiles) if quantiles is not None else np.asarray(thresholds, float)
    index = np.digitize(score, cuts)
    names = labels or (["low", "high"] if len(cuts) == 1 else [f"group {k + 1}" for k in range(len(cuts) + 1)])
    if len(names) != len(cuts) + 1:
        raise ValueError(f"{len(cuts) + 1} groups need as many labels, got {len(names)}")
    return np.asarray(names, dtype=object)[index]


def risk_group_table(time: np.ndarray, event_code: np.ndarray, group: np.ndarray, horizon: float, cause: int = 1,
                     competing: bool = True) -> pd.DataFrame:
    """Per group: n, events of ``cause`` (ever), and the event rate by ``horizon`` with its 95 % CI."""
    time, code, group = np.asarray(time, float), np.asarray(event_code).astype(int), np.asarray(group, dtype=object)
    rows = []
    for level in sorted(pd.unique(group).tolist(), key=str):
        mask = group == level
        rate, low, high = event_rate_at(time[mask], code[mask], horizon, cause, competing)
        rows.append((level, int(mask.sum()), int(np.sum(code[mask] == cause)), horizon, rate, low, high))
    return pd.DataFrame(rows, columns=["group", "n", "events", "horizon", "rate", "ci_low", "ci_high"])
