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

from ecgscope.evaluate.classification import (
    calibration_table,
    choose_thresholds,
    delong_test,
    net_benefit,
    pr_band,
    roc_band,
)
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


def scored_rows(frame: pd.DataFrame, split: str | None = None, operating_point: str = "youden",
                model_info: dict | None = None) -> tuple[pd.DataFrame, dict[str, float], str]:
    """The rows to score, the binary operating thresholds to score them at, and a sentence saying both.

    ``split`` None scores the 'test' rows when the frame has a ``split`` column holding any ('all' scores
    every row). Thresholds come from ``model_info`` (a model.json's ``thresholds``) when given, else are
    chosen by ``operating_point`` on the frame's 'val' rows when it has them and they are not the ones
    scored; otherwise none are returned and the evaluation chooses them on the scored rows (apparent).
    """
    has_split = "split" in frame.columns
    if split is None:
        split = "test" if has_split and (frame["split"] == "test").any() else "all"
    if split != "all":
        if not has_split:
            raise ValueError(f"--split {split}: the labels have no 'split' column; pass --split all")
        if not (frame["split"] == split).any():
            raise ValueError(f"no rows in split {split!r}; splits present: {sorted(frame['split'].dropna().unique())}")
    scored = frame if split == "all" else frame[frame["split"] == split].reset_index(drop=True)
    binary = [t for t, kind in infer_targets(frame).items() if kind == "binary"]
    thresholds: dict[str, float] = {}
    if model_info is not None:
        thresholds = {t: v["value"] for t, v in model_info.get("thresholds", {}).items() if t in binary}
        source = "the model's thresholds (chosen on its validation patients)"
    elif has_split and split != "val" and (frame["split"] == "val").any():
        val = frame[frame["split"] == "val"]
        thresholds = choose_thresholds({t: val[f"{t}_true"] for t in binary}, {t: val[f"{t}_pred"] for t in binary},
                                       binary, operating_point)
        source = f"{operating_point} thresholds chosen on the {int((frame['split'] == 'val').sum()):,} validation rows"
    else:
        source = "thresholds chosen on the scored rows themselves (apparent: pass --model or labels with a val split)"
    said = (f"scoring {len(scored):,} of {len(frame):,} rows ({'every split' if split == 'all' else 'split ' + split}"
            f", {scored['patient_id'].nunique():,} patients); {source}")
    return scored, thresholds, said


def aligned_baseline(frame: pd.DataFrame, baseline: pd.DataFrame, column: str, on: str = "ecg_id") -> np.ndarray:
    """``baseline[column]`` in the row order of ``frame``, matched by ``on`` (never by position); NaN where
    the baseline lacks an ECG."""
    for name, table in (("predictions", frame), ("baseline", baseline)):
        if on not in table.columns:
            raise ValueError(f"the {name} table has no {on!r} column to match the two models' ECGs on")
    if baseline[on].duplicated().any():
        raise ValueError(f"the baseline has repeated {on} values: one prediction per ECG")
    lookup = baseline.set_index(baseline[on].astype(str))[column]
    return lookup.reindex(frame[on].astype(str)).to_numpy(float)


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    write_text(path, table.to_csv(index=False))


def run_evaluation(frame: pd.DataFrame, out: str | Path | None, targets: dict[str, str] | None = None,
                   subgroups: list[str] = (), *, baseline: pd.DataFrame | None = None, operating_point: str = "youden",
                   thresholds: dict[str, float] | None = None, risk_cutoffs: list[float] = (0.1, 0.3),
                   n_boot: int = 500, seed: int = 0,
                   title: str | None = None) -> pd.DataFrame:
    """Evaluate predictions (``T_true`` / ``T_pred`` columns, ``patient_id``, subgroup columns) into ``out``
    (None: compute the metrics table only, write nothing).

    ``baseline`` is a second model's predictions for the same ECGs (same columns, matched by ``ecg_id``):
    binary targets are then compared with DeLong's test (per patient) and reclassification at
    ``risk_cutoffs``. ``thresholds`` are binary targets' operating points chosen beforehand on other patients;
    a target without one has it chosen on these patients by ``operating_point``, flagged as apparent.
    Returns the metrics table.
    """
    targets = targets or infer_targets(frame)
    if not targets:
        raise ValueError("no targets: the table needs pairs of columns NAME_true and NAME_pred")
    metrics = evaluate_table(frame, targets, list(subgroups), operating_point=operating_point,
                             thresholds=thresholds, n_boot=n_boot, seed=seed)
    if out is None:
        return metrics
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
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
            b = aligned_baseline(frame, baseline, f"{target}_pred")[seen]
            if not np.isfinite(b).all():
                raise ValueError(f"the baseline has no {target} prediction for {int((~np.isfinite(b)).sum())} "
                                 "of the scored ECGs: both models must score the same ECGs")
            test = delong_test(y, p, b, groups=patients)
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
    sources = metrics[(metrics.metric == "threshold") & (metrics.subgroup == "all")]
    info = {"targets": targets, "subgroups": list(subgroups), "operating_point": operating_point,
            "thresholds": {r.target: {"value": r.estimate, "source": r.note} for r in sources.itertuples()},
            "n_boot": n_boot, "seed": seed, "n_rows": len(frame), "n_patients": int(frame["patient_id"].nunique()),
            "risk_cutoffs": list(risk_cutoffs), "baseline": baseline is not None, "title": title or out.name}
    write_text(out / "evaluation.json", json.dumps(info, indent=2) + "\n")
    return metrics
