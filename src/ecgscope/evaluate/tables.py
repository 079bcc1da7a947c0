"""Evaluation tables: every metric of every target with a patient-bootstrap 95 % CI, overall and by subgroup.

Input is one frame with, per target ``T``, a measured column ``T_true`` and a predicted one ``T_pred``
(probability for binary targets), a ``patient_id`` column, and any subgroup columns. Output is a long table
(target, kind, subgroup, level, n, n_positive, metric, estimate, ci_low, ci_high, resamples, note) that lands
as CSV/JSON: ``resamples`` is how many bootstrap resamples gave the metric a value, ``note`` says why an
estimate is missing, how many resamples its CI left out, or where a threshold came from.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ecgscope.evaluate.classification import (
    auprc,
    brier,
    calibration_intercept,
    calibration_slope,
    choose_threshold,
    predictive_values_at,
    threshold_metrics,
)
from ecgscope.evaluate.metrics import auroc, bootstrap_metrics_counted, per_resample
from ecgscope.evaluate.regression import REGRESSION_METRICS

COLUMNS = ["target", "kind", "subgroup", "level", "n", "n_positive", "metric", "estimate", "ci_low", "ci_high",
           "resamples", "note"]
AGE_BANDS = (0, 50, 65, 75, 200)
#: Prevalences PPV and NPV are also re-weighted to: a referral clinic's (18 %) and a screened population's (1 %).
PREVALENCES = (0.18, 0.01)


def age_bands(age: pd.Series, edges: tuple[float, ...] = AGE_BANDS) -> pd.Series:
    """Age in bands labelled like ``<50``, ``50-64``, ``65-74``, ``75+``."""
    middle = [f"{a}-{b - 1}" for a, b in zip(edges[1:-2], edges[2:-1], strict=True)]
    labels = [f"<{edges[1]}", *middle, f"{edges[-2]}+"]
    return pd.cut(age, list(edges), right=False, labels=labels).astype(str)


def _order(level) -> tuple:
    """Natural order of subgroup levels: age bands by their first number ("<50" first), others as text."""
    text = str(level)
    match = re.search(r"\d+(\.\d+)?", text)
    return (-np.inf if text.startswith("<") else float(match.group()) if match else np.inf, text)


def binary_metrics(threshold: float, probabilities: bool = True, prevalences: tuple[float, ...] = PREVALENCES) -> dict:
    """Metric functions for a binary target at a fixed operating threshold, with PPV and NPV also at each of
    ``prevalences`` (from the sensitivity and specificity, whatever the evaluated set's own prevalence)."""
    metrics = {"AUROC": auroc, "AUPRC": auprc}
    counts = per_resample(lambda y, p: threshold_metrics(y, p, threshold))
    for name in ("sensitivity", "specificity", "ppv", "npv"):
        metrics[name.upper() if len(name) == 3 else name] = lambda y, p, name=name: counts(y, p)[name]
    for prevalence in prevalences:
        for name in ("ppv", "npv"):
            def reweighted(y, p, name=name, prevalence=prevalence):
                found = counts(y, p)
                return predictive_values_at(found["sensitivity"], found["specificity"], prevalence)[name]
            metrics[f"{name.upper()} at {100 * prevalence:g} % prevalence"] = reweighted
    if probabilities:
        metrics |= {"Brier": brier, "calibration intercept": _safe(calibration_intercept),
                    "calibration slope": _safe(calibration_slope)}
    return metrics


def _safe(fn):
    """NaN instead of an error where a metric is undefined (one class only in a resample)."""
    def wrapped(y, p):
        y = np.asarray(y)
        return fn(y, p) if 0 < y.sum() < len(y) else float("nan")
    return wrapped


def _note(y: np.ndarray, kind: str, metric: str, estimate: float, resamples: int, n_boot: int) -> str:
    """Why an estimate or its CI is missing, or how many resamples its CI left out; '' when nothing is."""
    if len(y) == 0:
        return "no rows with both a measured and a predicted value"
    if not np.isfinite(estimate):
        if kind == "binary" and (y.sum() == 0 or y.sum() == len(y)):
            return f"not defined: no {'positive' if y.sum() == 0 else 'negative'} patients here"
        if metric == "calibration slope":
            return "not defined: the logistic fit diverged (the score separates the outcome)"
        return "not defined on these rows"
    if resamples == 0:
        return "no CI: no bootstrap resample gave a value"
    if resamples < n_boot:
        return f"CI from {resamples} of {n_boot} resamples (the others gave no value, e.g. one class only)"
    return ""


def evaluate_target(y: np.ndarray, pred: np.ndarray, patients: np.ndarray, kind: str, *, threshold: float | None = None,
                    n_boot: int = 500, seed: int = 0, threshold_source: str = "") -> pd.DataFrame:
    """All metrics of one target with patient-bootstrap CIs: (metric, estimate, ci_low, ci_high, resamples, note)."""
    seen = np.isfinite(np.asarray(y, float)) & np.isfinite(np.asarray(pred, float))
    y, pred, patients = np.asarray(y, float)[seen], np.asarray(pred, float)[seen], np.asarray(patients)[seen]
    if kind == "binary":
        probabilities = bool(np.all((pred >= 0) & (pred <= 1)))
        metrics = binary_metrics(0.5 if threshold is None else threshold, probabilities)
    else:
        metrics = REGRESSION_METRICS
    if len(y) == 0:
        result = {m: (np.nan, np.nan, np.nan, 0) for m in metrics}
    else:
        result = bootstrap_metrics_counted(metrics, y, pred, patients, n_boot=n_boot, seed=seed)
    rows = [(name, est, lo, hi, used, _note(y, kind, name, est, used, n_boot))
            for name, (est, lo, hi, used) in result.items()]
    if kind == "binary":
        rows.append(("threshold", threshold, np.nan, np.nan, 0, threshold_source))
    return pd.DataFrame(rows, columns=COLUMNS[-6:])


def evaluate_table(frame: pd.DataFrame, targets: dict[str, str], subgroups: list[str] = (), *,
                   operating_point: str = "youden", thresholds: dict[str, float] | None = None,
                   n_boot: int = 500, seed: int = 0) -> pd.DataFrame:
    """Metrics of each target (``{name: "binary" | "regression"}``) overall and in each subgroup level.

    A binary target's threshold is ``thresholds[target]`` when given: chosen beforehand on other patients
    (validation, or the development cohort for an external one) and carried with the model, which is the
    honest way. Otherwise it is chosen here, on the evaluated patients themselves, by ``operating_point``
    (see :func:`choose_threshold`), so its sensitivity and specificity are apparent (optimistic); the
    ``threshold`` row's note says which. Either way it is held fixed in
    subgroups and bootstrap resamples.
    """
    tables = []
    thresholds = thresholds or {}
    for target, kind in targets.items():
        y, pred = frame[f"{target}_true"].to_numpy(float), frame[f"{target}_pred"].to_numpy(float)
        seen = np.isfinite(y) & np.isfinite(pred)
        threshold, source = None, None
        if kind == "binary":
            given = target in thresholds
            threshold = float(thresholds[target]) if given else choose_threshold(y[seen], pred[seen], operating_point)
            source = "given (chosen on other patients)" if given else "chosen on these patients (apparent)"
        for subgroup in ["all", *subgroups]:
            levels = ["all"] if subgroup == "all" else sorted(frame[subgroup].dropna().unique().tolist(), key=_order)
            for level in levels:
                mask = seen if subgroup == "all" else seen & (frame[subgroup] == level).to_numpy()
                table = evaluate_target(y[mask], pred[mask], frame["patient_id"].to_numpy()[mask], kind,
                                        threshold=threshold, n_boot=n_boot, seed=seed, threshold_source=source)
                n_pos = int(np.sum(y[mask])) if kind == "binary" else np.nan
                tables.append(table.assign(target=target, kind=kind, subgroup=subgroup, level=str(level),
                                           n=int(mask.sum()), n_positive=n_pos))
    return pd.concat(tables, ignore_index=True)[COLUMNS]


def table_one(cohorts: dict[str, pd.DataFrame], continuous: list[str], binary: list[str]) -> pd.DataFrame:
    """Table 1: per cohort, patients, female share, mean (SD) of ``continuous`` and n (%) of ``binary``
    columns (over rows that have the value; "-" where a cohort lacks the column)."""
    rows: dict[str, dict[str, str]] = {"patients": {}, "female, n (%)": {}}
    for name, table in cohorts.items():
        rows["patients"][name] = f"{table['patient_id'].nunique():,}"
        if "sex" in table.columns:
            female = (table["sex"] == "F").sum()
            rows["female, n (%)"][name] = f"{female:,} ({100 * female / len(table):.1f})"
        for column in continuous:
            values = table[column].dropna().astype(float) if column in table.columns else pd.Series(dtype=float)
            rows.setdefault(f"{column}, mean (SD)", {})[name] = (
                f"{values.mean():.1f} ({values.std():.1f})" if len(values) else "-")
        for column in binary:
            values = table[column].dropna().astype(float) if column in table.columns else pd.Series(dtype=float)
            rows.setdefault(f"{column}, n (%)", {})[name] = (
                f"{int(values.sum()):,} ({100 * values.mean():.1f})" if len(values) else "-")
    frame = pd.DataFrame(rows).T.reindex(columns=list(cohorts)).fillna("-")
    return frame.rename_axis("characteristic").reset_index()
