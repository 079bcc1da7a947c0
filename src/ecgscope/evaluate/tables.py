"""Evaluation tables: every metric of every target with a patient-bootstrap 95 % CI, overall and by subgroup.

Input is one frame with, per target ``T``, a measured column ``T_true`` and a predicted one ``T_pred``
(probability for binary targets), a ``patient_id`` column, and any subgroup columns. Output is a long table
(target, kind, subgroup, level, n, n_positive, metric, estimate, ci_low, ci_high) that lands as CSV/JSON.
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
    threshold_metrics,
)
from ecgscope.evaluate.metrics import auroc, bootstrap_metrics
from ecgscope.evaluate.regression import REGRESSION_METRICS

COLUMNS = ["target", "kind", "subgroup", "level", "n", "n_positive", "metric", "estimate", "ci_low", "ci_high"]
AGE_BANDS = (0, 50, 65, 75, 200)


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


def binary_metrics(threshold: float, probabilities: bool = True) -> dict:
    """Metric functions for a binary target at a fixed operating threshold."""
    metrics = {"AUROC": auroc, "AUPRC": auprc}
    for name in ("sensitivity", "specificity", "ppv", "npv"):
        metrics[name.upper() if len(name) == 3 else name] = (
            lambda y, p, name=name: threshold_metrics(y, p, threshold)[name])
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


def evaluate_target(y: np.ndarray, pred: np.ndarray, patients: np.ndarray, kind: str, *, threshold: float | None = None,
                    n_boot: int = 500, seed: int = 0) -> pd.DataFrame:
    """All metrics of one target with patient-bootstrap CIs: (metric, estimate, ci_low, ci_high)."""
    seen = np.isfinite(np.asarray(y, float)) & np.isfinite(np.asarray(pred, float))
    y, pred, patients = np.asarray(y, float)[seen], np.asarray(pred, float)[seen], np.asarray(patients)[seen]
    if kind == "binary":
        probabilities = bool(np.all((pred >= 0) & (pred <= 1)))
        metrics = binary_metrics(0.5 if threshold is None else threshold, probabilities)
    else:
        metrics = REGRESSION_METRICS
    if len(y) == 0:
        return pd.DataFrame([(m, np.nan, np.nan, np.nan) for m in metrics], columns=COLUMNS[-4:])
    result = bootstrap_metrics(metrics, y, pred, patients, n_boot=n_boot, seed=seed)
    rows = [(name, *values) for name, values in result.items()]
    if kind == "binary":
        rows.append(("threshold", threshold, np.nan, np.nan))
    return pd.DataFrame(rows, columns=COLUMNS[-4:])


def evaluate_table(frame: pd.DataFrame, targets: dict[str, str], subgroups: list[str] = (), *,
                   operating_point: str = "youden", n_boot: int = 500, seed: int = 0) -> pd.DataFrame:
    """Metrics of each target (``{name: "binary" | "regression"}``) overall and in each subgroup level.

    A binary target's threshold is chosen once, on all patients, by ``operating_point`` (see
    :func:`choose_threshold`) and then held fixed in subgroups and bootstrap resamples.
    """
    tables = []
    for target, kind in targets.items():
        y, pred = frame[f"{target}_true"].to_numpy(float), frame[f"{target}_pred"].to_numpy(float)
        seen = np.isfinite(y) & np.isfinite(pred)
        threshold = choose_threshold(y[seen], pred[seen], operating_point) if kind == "binary" else None
        for subgroup in ["all", *subgroups]:
            levels = ["all"] if subgroup == "all" else sorted(frame[subgroup].dropna().unique().tolist(), key=_order)
            for level in levels:
                mask = seen if subgroup == "all" else seen & (frame[subgroup] == level).to_numpy()
                table = evaluate_target(y[mask], pred[mask], frame["patient_id"].to_numpy()[mask], kind,
                                        threshold=threshold, n_boot=n_boot, seed=seed)
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
