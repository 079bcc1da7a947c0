"""Hazard ratios: Cox proportional hazards (lifelines) and Fine-Gray subdistribution hazards.

Hazard ratios are reported per a chosen change of the predictor: ``per=-10`` on RVEF gives the HR per 10 %
*decrease*. Fine-Gray is fitted as a weighted Cox model on counting-process data (Geskus 2011): after a
competing event a patient stays in the risk set with weight G(t) / G(T), G the censoring survival (Kaplan-
Meier), which gives the Fine-Gray estimate; its variance is the robust (sandwich) one, clustered by patient.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import proportional_hazard_test

Z95 = 1.959964


def _ratio(coef: float, se: float, per: float) -> tuple[float, float, float]:
    low, high = sorted((np.exp((coef - Z95 * se) * per), np.exp((coef + Z95 * se) * per)))
    return float(np.exp(coef * per)), float(low), float(high)


def cox_hazard_ratio(frame: pd.DataFrame, predictor: str, *, duration: str = "time", event: str = "event",
                     per: float = 1.0, covariates: list[str] = (), check_ph: bool = True) -> dict:
    """Cox HR of ``predictor`` per ``per`` units, adjusted for ``covariates``, with 95 % CI and Wald p.

    ``event`` is boolean (or 0/1). Returns also n, events, concordance, and (``check_ph``) the p-value of
    the proportional-hazards test (Schoenfeld residuals against rank of time) for the predictor and the
    smallest over all terms.
    """
    data = frame[[duration, event, predictor, *covariates]].dropna().astype(float)
    fitter = CoxPHFitter().fit(data, duration_col=duration, event_col=event)
    coef, se = float(fitter.params_[predictor]), float(fitter.standard_errors_[predictor])
    hr, low, high = _ratio(coef, se, per)
    out = {"predictor": predictor, "per": per, "hr": hr, "ci_low": low, "ci_high": high,
           "p": float(fitter.summary.loc[predictor, "p"]), "n": len(data), "events": int(data[event].sum()),
           "covariates": list(covariates), "concordance": float(fitter.concordance_index_)}
    if check_ph:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            test = proportional_hazard_test(fitter, data, time_transform="rank")
        p = test.summary["p"]
        out |= {"ph_p": float(p.loc[predictor]), "ph_p_min": float(p.min())}
    return out


def fine_gray_data(time: np.ndarray, event_code: np.ndarray, cause: int = 1) -> pd.DataFrame:
    """Counting-process rows for a Fine-Gray fit: (row, start, stop, event, weight).

    Patients censored or with ``cause`` keep one row (start 0). A patient with a competing event at T stays
    at risk after T up to the last event time of ``cause``, weighted by G(t-) / G(T-); spans over which that
    weight does not change are one row (the fit is the same, with far fewer rows).
    """
    time, code = np.asarray(time, float), np.asarray(event_code).astype(int)
    censoring = KaplanMeierFitter().fit(time, code == 0)
    times = censoring.survival_function_.index.to_numpy()
    surv = censoring.survival_function_.iloc[:, 0].to_numpy()

    def g_before(t: np.ndarray) -> np.ndarray:  # G(t-): censoring survival just before t
        index = np.searchsorted(times, t, side="left") - 1
        return np.where(index >= 0, surv[np.maximum(index, 0)], 1.0)

    cause_times = np.unique(time[code == cause])
    keep = np.flatnonzero(np.isin(code, [0, cause]))
    rows = [pd.DataFrame({"row": keep, "start": 0.0, "stop": time[keep], "event": (code[keep] == cause) * 1.0,
                          "weight": 1.0})]
    for i in np.flatnonzero((code != 0) & (code != cause)):
        later = cause_times[cause_times > time[i]]
        rows.append(pd.DataFrame({"row": [i], "start": [0.0], "stop": [time[i]], "event": [0.0], "weight": [1.0]}))
        if len(later) == 0:
            continue
        weight = g_before(later) / g_before(np.array([time[i]]))
        last_of_run = np.r_[np.flatnonzero(np.diff(weight) != 0), len(weight) - 1]  # merge equal-weight spans
        stops = later[last_of_run]
        rows.append(pd.DataFrame({"row": i, "start": np.r_[time[i], stops[:-1]], "stop": stops, "event": 0.0,
                                  "weight": weight[last_of_run]}))
    return pd.concat(rows, ignore_index=True)


def fine_gray(frame: pd.DataFrame, predictor: str, *, duration: str = "time", event: str = "event",
              cause: int = 1, per: float = 1.0, covariates: list[str] = ()) -> dict:
    """Fine-Gray subdistribution HR of ``predictor`` per ``per`` units for ``cause`` (``event`` holds codes
    0 censored, 1, 2, ...), adjusted for ``covariates``, with a robust 95 % CI and p."""
    data = frame[[duration, event, predictor, *covariates]].dropna().reset_index(drop=True)
    rows = fine_gray_data(data[duration].to_numpy(), data[event].to_numpy(), cause)
    design = data[[predictor, *covariates]].astype(float).iloc[rows["row"]].reset_index(drop=True)
    expanded = pd.concat([rows[["row", "start", "stop", "event", "weight"]], design], axis=1)
    expanded = expanded[expanded.stop > expanded.start]
    with warnings.catch_warnings():  # lifelines notes that weights are not integers, as intended
        warnings.simplefilter("ignore")
        fitter = CoxPHFitter().fit(expanded, duration_col="stop", event_col="event", entry_col="start",
                                   weights_col="weight", cluster_col="row", robust=True)
    coef, se = float(fitter.params_[predictor]), float(fitter.standard_errors_[predictor])
    shr, low, high = _ratio(coef, se, per)
    return {"predictor": predictor, "per": per, "cause": cause, "shr": shr, "ci_low": low, "ci_high": high,
            "p": float(fitter.summary.loc[predictor, "p"]), "n": len(data),
            "events": int((data[event] == cause).sum()), "competing": int(((data[event] != 0) &
                                                                            (data[event] != cause)).sum()),
            "covariates": list(covariates)}
