"""One survival analysis of a predicted measurement or risk score, written to a folder.

``run_survival`` is what ``ecgscope survival`` runs; ``ecgscope report`` draws from what it writes:

    OUT/summary.json     Cox HR per unit (unadjusted and adjusted, PH test), Fine-Gray SHR, log-rank,
                         Harrell's and Uno's C, settings
    OUT/km.csv, OUT/km_at_risk.csv    Kaplan-Meier curves by risk group (any event) and numbers at risk
    OUT/cif.csv          cumulative incidence of the cause of interest by group (others competing)
    OUT/risk_groups.csv  per group: n, events, event rate at the horizon with its CI
    OUT/td_auc.csv       time-dependent AUC at the horizons for the cause of interest; patients who die of
                         a competing cause are censored at that death (cause-specific cumulative/dynamic
                         AUC), as its ``competing_events`` column says

Event codes: 0 censored, 1 the cause of interest, 2+ competing causes. The score's direction is given by
``higher_is_riskier``; a predicted RVEF is not (lower RVEF, higher risk), and ``per=-10`` reports the HR
per 10-unit decrease.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ecgscope.io import write_text
from ecgscope.survival.concordance import harrell_c, time_dependent_auc, uno_c
from ecgscope.survival.cox import cox_hazard_ratio, fine_gray
from ecgscope.survival.curves import cumulative_incidence, kaplan_meier, logrank
from ecgscope.survival.groups import risk_group_table, risk_groups


def survival_frame(predictions: pd.DataFrame, outcomes: pd.DataFrame | str | Path,
                   time_column: str = "acquired_at", first_per_patient: bool = True) -> pd.DataFrame:
    """Predictions joined to follow-up: ``time`` (years from the ECG) and ``event`` (codes), one row per
    patient (the earliest ECG) unless ``first_per_patient`` is False. Outcome schemas: see
    :func:`ecgscope.cohort.time_to_event`."""
    from ecgscope.cohort import time_to_event

    if time_column not in predictions.columns:
        raise ValueError(f"the predictions have no {time_column!r} column (when each ECG was taken)")
    table = time_to_event(predictions, outcomes, time_column=time_column).rename(columns={"time_years": "time"})
    table = table[table["time"] > 0]
    if first_per_patient:
        table = table.sort_values(time_column).drop_duplicates("patient_id", keep="first")
    return table.reset_index(drop=True)


def run_survival(frame: pd.DataFrame, out: str | Path | None, predictor: str, *, time: str = "time",
                 event: str = "event", cause: int = 1, per: float = 1.0, covariates: list[str] = (),
                 higher_is_riskier: bool = True, thresholds: list[float] | None = None,
                 quantiles: list[float] | None = None, group_labels: list[str] | None = None,
                 horizon: float = 4.0, td_horizons: list[float] = (1.0, 2.0, 3.0, 4.0),
                 title: str | None = None) -> dict:
    """Analyse ``predictor`` against follow-up (``time`` years, ``event`` codes); write tables to ``out`` (None:
    write nothing, return the summary only).

    Risk groups come from ``thresholds`` or ``quantiles`` of the risk score (the predictor, negated when
    lower is riskier; default: the top fifth against the rest). Returns the summary dict.
    """
    from ecgscope.cohort import covariate_values

    for column in (time, event, predictor):
        if column not in frame.columns:
            raise ValueError(f"the table has no {column!r} column; its columns are {list(frame.columns)}")
    covariates = list(covariates)
    frame = frame[[time, event, predictor]].join(covariate_values(frame, covariates))
    out = None if out is None else Path(out)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    data = frame.dropna().reset_index(drop=True)
    t, code = data[time].to_numpy(float), data[event].to_numpy().astype(int)
    risk = data[predictor].to_numpy(float) * (1 if higher_is_riskier else -1)
    if thresholds is not None:
        thresholds = [v * (1 if higher_is_riskier else -1) for v in thresholds]
    elif quantiles is None:
        quantiles = [0.8]
    group = risk_groups(risk, thresholds=sorted(thresholds) if thresholds is not None else None,
                        quantiles=quantiles, labels=group_labels)
    any_event = code > 0
    frame_any = data.assign(**{event: any_event})
    frame_cause = data.assign(**{event: code == cause})
    summary = {
        "title": title or (out.name if out is not None else predictor), "predictor": predictor, "per": per,
        "cause": cause, "horizon": horizon,
        "n": len(data),
        "events_any": int(any_event.sum()), "events_cause": int((code == cause).sum()),
        "median_followup": float(np.median(t)), "covariates": list(covariates),
        "cox_any_unadjusted": cox_hazard_ratio(frame_any, predictor, duration=time, event=event, per=per),
        "cox_cause_unadjusted": cox_hazard_ratio(frame_cause, predictor, duration=time, event=event, per=per),
        "harrell_c_any": harrell_c(t, any_event, risk), "uno_c_any": uno_c(t, any_event, risk),
        "harrell_c_cause": harrell_c(t, code == cause, risk),
        "logrank_any": logrank(t, any_event, group),
    }
    if covariates:
        summary["cox_any_adjusted"] = cox_hazard_ratio(frame_any, predictor, duration=time, event=event, per=per,
                                                       covariates=list(covariates))
    if (code > 0).any() and ((code > 0) & (code != cause)).any():
        summary["fine_gray"] = fine_gray(data, predictor, duration=time, event=event, cause=cause, per=per,
                                         covariates=list(covariates))
    curves, at_risk = kaplan_meier(t, any_event, group, at=list(np.arange(0, np.ceil(t.max()) + 1)))
    groups = risk_group_table(t, code, group, horizon, cause)
    summary["risk_groups"] = groups.to_dict(orient="records")
    if out is None:
        return summary
    write_text(out / "km.csv", curves.to_csv(index=False))
    write_text(out / "km_at_risk.csv", at_risk.to_csv(index=False))
    write_text(out / "cif.csv", cumulative_incidence(t, code, cause, group).to_csv(index=False))
    write_text(out / "risk_groups.csv", groups.to_csv(index=False))
    td = time_dependent_auc(t, code == cause, risk, list(td_horizons)).assign(
        competing_events="censored at the competing death")
    write_text(out / "td_auc.csv", td.to_csv(index=False))
    write_text(out / "summary.json", json.dumps(summary, indent=2, default=float) + "\n")
    return summary
