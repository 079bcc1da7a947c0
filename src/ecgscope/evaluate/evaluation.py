"""One evaluation, written to a folder: the metrics table, the curves behind the figures, model comparisons.

``run_evaluation`` is what ``ecgscope evaluate`` runs; ``ecgscope report`` draws from what it writes:

    OUT/metrics.csv          long table: target, kind, subgroup, level, n, n_positive, metric, estimate, CI
    OUT/roc_TARGET.csv       ROC curve on an FPR grid with a patient-bootstrap 95 % band
    OUT/pr_TARGET.csv        precision-recall curve on a recall grid, with its bootstrap band
    OUT/calibration_TARGET.csv, OUT/decision_TARGET.csv   calibration curve, decision curve
    OUT/points.parquet       measured and predicted values per ECG (scatter and Bland-Altman plots)
    OUT/comparison.csv       against a baseline model: DeLong, NRI (categorical, continuous), IDI
    OUT/evaluation.json      targets, subgroups, operating point, bootstrap settings, file list
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ecgscope.evaluate.classification import calibration_table, delong_test, net_benefit, pr_band, roc_band
from ecgscope.evaluate.metrics import bootstrap_metrics
from ecgscope.evaluate.reclassification import idi, nri_categorical, nri_continuous
from ecgscope.evaluate.tables import evaluate_table
from ecgscope.io import write_parquet, write_text


def infer_targets(frame: pd.DataFrame) -> dict[str, str]:
    """Targets with both ``T_true`` and ``T_pred`` columns: binary when the measured values are all 0/1."""
    targets = {}
    for column in frame.columns:
        if column.endswith("_true") and f"{column[:-5]}_pred" in frame.columns:
            values = frame[column].dropna()
            targets[column[:-5]] = "binary" if len(values) and values.isin([0, 1]).all() else "regression"
    return targets


def prediction_frame(predictions: pd.DataFrame, labels: pd.DataFrame | None = None,
                     targets: list[str] | None = None, on: str = "ecg_id") -> pd.DataFrame:
    """Predictions (``T`` columns, as ``ecgscope predict`` writes) joined to measured labels (``T`` columns)
    on ``on``, as ``T_pred`` / ``T_true`` pairs; other label columns come along for subgroups.

    Without ``labels`` the predictions must already hold the pairs. ``targets`` defaults to every column
    the two tables share apart from identifiers.
    """
    if labels is None:
        return predictions
    for name, table in (("predictions", predictions), ("labels", labels)):
        if on not in table.columns:
            raise ValueError(f"the {name} table has no {on!r} column to join on; it has {list(table.columns)}")
    ids = {on, "patient_id", "acquired_at", "age", "sex", "split"}
    shared = [c for c in predictions.columns if c in labels.columns and c not in ids]
    targets = targets or shared
    missing = [t for t in targets if t not in shared]
    if missing or not targets:
        raise ValueError(f"target(s) {missing or targets} are not in both tables; shared columns: {shared}")
    carry = [c for c in predictions.columns if c in ids and c != on]  # identifiers and demographics
    pred = predictions[[on, *carry, *targets]].rename(columns={t: f"{t}_pred" for t in targets})
    true = labels.drop(columns=[c for c in carry if c in labels.columns]).rename(
        columns={t: f"{t}_true" for t in targets})
    frame = pred.merge(true, on=on, how="inner")
    if frame.empty:
        raise ValueError(f"no {on} is in both the predictions and the labels")
    return frame


def reclassification_measures(cutoffs: list[float]) -> dict:
    """NRI and IDI as functions of (y, [new, old] probabilities), so a bootstrap resamples both models."""
    def categorical(part: str):
        return lambda y, p: nri_categorical(y, p[:, 1], p[:, 0], cutoffs)[part]

    return {"categorical NRI": categorical("nri"), "categorical NRI, events": categorical("nri_events"),
            "categorical NRI, non-events": categorical("nri_nonevents"),
            "continuous NRI": lambda y, p: nri_continuous(y, p[:, 1], p[:, 0])["nri"],
            "IDI": lambda y, p: idi(y, p[:, 1], p[:, 0])}


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    write_text(path, table.to_csv(index=False))


def run_evaluation(frame: pd.DataFrame, out: str | Path, targets: dict[str, str] | None = None,
                   subgroups: list[str] = (), *, baseline: pd.DataFrame | None = None, operating_point: str = "youden",
                   risk_cutoffs: list[float] = (0.1, 0.3), n_boot: int = 500, seed: int = 0,
                   title: str | None = None) -> pd.DataFrame:
    """Evaluate predictions (``T_true`` / ``T_pred`` columns, ``patient_id``, subgroup columns) into ``out``.

    ``baseline`` is a second model's predictions for the same rows (same columns): binary targets are then
    compared with DeLong's test and reclassification at ``risk_cutoffs``. Returns the metrics table.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    targets = targets or infer_targets(frame)
    if not targets:
        raise ValueError("no targets: the table needs pairs of columns NAME_true and NAME_pred")
    metrics = evaluate_table(frame, targets, list(subgroups), operating_point=operating_point, n_boot=n_boot,
                             seed=seed)
    _write_csv(metrics, out / "metrics.csv")
    points = frame[["patient_id", *[f"{t}_{s}" for t in targets for s in ("true", "pred")], *subgroups]]
    write_parquet(points.reset_index(drop=True), out / "points.parquet")
    comparisons = []
    for target, kind in targets.items():
        if kind != "binary":
            continue
        y, p = frame[f"{target}_true"].to_numpy(float), frame[f"{target}_pred"].to_numpy(float)
        seen = np.isfinite(y) & np.isfinite(p)
        y, p, patients = y[seen].astype(int), p[seen], frame["patient_id"].to_numpy()[seen]
        if y.min() == y.max():
            continue
        _write_csv(roc_band(y, p, patients, n_boot=min(n_boot, 200), seed=seed), out / f"roc_{target}.csv")
        _write_csv(pr_band(y, p, patients, n_boot=min(n_boot, 200), seed=seed), out / f"pr_{target}.csv")
        if np.all((p >= 0) & (p <= 1)):
            _write_csv(calibration_table(y, p), out / f"calibration_{target}.csv")
            _write_csv(net_benefit(y, p), out / f"decision_{target}.csv")
        if baseline is not None:
            b = baseline[f"{target}_pred"].to_numpy(float)[seen]
            test = delong_test(y, p, b)
            rows = [("AUROC difference (DeLong)", test["difference"], test["ci_low"], test["ci_high"], test["p"])]
            measures = reclassification_measures(list(risk_cutoffs))
            both = np.column_stack([p, b])
            for name, (est, lo, hi) in bootstrap_metrics(measures, y, both, patients, n_boot=n_boot,
                                                         seed=seed).items():
                rows.append((name, est, lo, hi, np.nan))
            comparisons += [(target, *row) for row in rows]
    if comparisons:
        _write_csv(pd.DataFrame(comparisons, columns=["target", "measure", "estimate", "ci_low", "ci_high", "p"]),
                   out / "comparison.csv")
    info = {"targets": targets, "subgroups": list(subgroups), "operating_point": operating_point,
            "n_boot": n_boot, "seed": seed, "n_rows": len(frame), "n_patients": int(frame["patient_id"].nunique()),
            "risk_cutoffs": list(risk_cutoffs), "baseline": baseline is not None, "title": title or out.name}
    write_text(out / "evaluation.json", json.dumps(info, indent=2) + "\n")
    return metrics
