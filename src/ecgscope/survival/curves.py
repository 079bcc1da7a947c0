"""Survival and cumulative-incidence curves, at-risk counts, log-rank tests and event rates at a horizon.

Event codes follow one convention everywhere: 0 censored, 1, 2, ... a cause (1 the cause of interest, e.g.
heart-failure death; 2 a competing one, e.g. other death). A boolean ``event`` is the same with one cause.
Curves come from lifelines (Kaplan-Meier; Aalen-Johansen under competing risks); nothing is plotted here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from lifelines import AalenJohansenFitter, KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test


def _groups(n: int, group: np.ndarray | None) -> tuple[np.ndarray, list]:
    group = np.full(n, "all", dtype=object) if group is None else np.asarray(group, dtype=object)
    return group, sorted(pd.unique(group).tolist(), key=str)


def _step_at(times: np.ndarray, values: np.ndarray, at: float) -> float:
    """Value of a right-continuous step function at ``at`` (its last jump at or before ``at``)."""
    index = np.searchsorted(times, at, side="right") - 1
    return float(values[index]) if index >= 0 else float("nan")


def kaplan_meier(time: np.ndarray, event: np.ndarray, group: np.ndarray | None = None,
                 at: list[float] = (0, 1, 2, 3, 4, 5)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Kaplan-Meier survival per group with 95 % CIs, and the numbers at risk at times ``at``.

    Returns ``(curves, at_risk)``: curves has group, time, survival, ci_low, ci_high; at_risk has group,
    time, at_risk (patients still followed just before each time).
    """
    time, event = np.asarray(time, float), np.asarray(event).astype(bool)
    group, levels = _groups(len(time), group)
    curves, at_risk = [], []
    for level in levels:
        mask = group == level
        km = KaplanMeierFitter().fit(time[mask], event[mask])
        ci = km.confidence_interval_survival_function_.to_numpy()
        curves.append(pd.DataFrame({"group": level, "time": km.survival_function_.index.to_numpy(),
                                    "survival": km.survival_function_.iloc[:, 0].to_numpy(),
                                    "ci_low": ci.min(axis=1), "ci_high": ci.max(axis=1)}))
        at_risk += [(level, t, int(np.sum(time[mask] >= t))) for t in at]
    return pd.concat(curves, ignore_index=True), pd.DataFrame(at_risk, columns=["group", "time", "at_risk"])


def logrank(time: np.ndarray, event: np.ndarray, group: np.ndarray) -> dict[str, float]:
    """Log-rank test of equal survival across groups: chi-square statistic, degrees of freedom, p."""
    result = multivariate_logrank_test(np.asarray(time, float), np.asarray(group), np.asarray(event).astype(bool))
    return {"statistic": float(result.test_statistic), "df": float(result.degrees_of_freedom),
            "p": float(result.p_value)}


def cumulative_incidence(time: np.ndarray, event_code: np.ndarray, cause: int = 1,
                         group: np.ndarray | None = None) -> pd.DataFrame:
    """Aalen-Johansen cumulative incidence of ``cause`` per group, other causes competing, with 95 % CIs."""
    time, code = np.asarray(time, float), np.asarray(event_code).astype(int)
    group, levels = _groups(len(time), group)
    out = []
    for level in levels:
        mask = group == level
        fitter = AalenJohansenFitter(calculate_variance=True, seed=0)
        with warnings.catch_warnings():  # lifelines jitters tied event times and says so each time
            warnings.simplefilter("ignore")
            fitter.fit(time[mask], code[mask], event_of_interest=cause)
        ci = fitter.confidence_interval_.to_numpy()  # lifelines' two columns are not reliably (low, high)
        out.append(pd.DataFrame({"group": level, "time": fitter.cumulative_density_.index.to_numpy(),
                                 "incidence": fitter.cumulative_density_.iloc[:, 0].to_numpy(),
                                 # lifelines has no bound where the variance is undefined: missing, never 0
                                 "ci_low": ci.min(axis=1), "ci_high": ci.max(axis=1)}))
    return pd.concat(out, ignore_index=True)


def event_rate_at(time: np.ndarray, event_code: np.ndarray, horizon: float, cause: int = 1,
                  competing: bool = True) -> tuple[float, float, float]:
    """Share of patients with ``cause`` by ``horizon`` and its 95 % CI.

    With ``competing`` (the default) other causes compete (Aalen-Johansen cumulative incidence); without,
    they are censored and the rate is 1 - Kaplan-Meier, which overstates it when competing events are common.
    """
    time, code = np.asarray(time, float), np.asarray(event_code).astype(int)
    if competing:
        curve = cumulative_incidence(time, code, cause)
        t, values = curve.time.to_numpy(), curve[["incidence", "ci_low", "ci_high"]].to_numpy()
    else:
        curve, _ = kaplan_meier(time, code == cause)
        t = curve.time.to_numpy()
        values = 1 - curve[["survival", "ci_high", "ci_low"]].to_numpy()
    return tuple(_step_at(t, values[:, k], horizon) for k in range(3))
