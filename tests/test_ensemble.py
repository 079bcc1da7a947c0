"""Stacking over feature blocks: cross-fitted, calibrated, better than either part when both carry signal."""

import numpy as np
import pandas as pd
import pytest

from ecgscope.ensemble import EnsembleError, cross_fitted, fit_ensemble
from ecgscope.evaluate import auroc
from ecgscope.evaluate.classification import calibration_intercept, calibration_slope


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-1.0 + 1.2 * a + 1.2 * b)))).astype(float)
    table = pd.DataFrame({"emb_0": a + rng.normal(0, 0.3, n), **{f"emb_{i}": rng.normal(size=n) for i in range(1, 8)},
                          "e_prime": b + rng.normal(0, 0.3, n), "s_prime": rng.normal(size=n)})
    table.loc[::17, "e_prime"] = np.nan  # a feature the generator could not measure
    return table, y, np.arange(n) // 2  # two ECGs per patient


BLOCKS = {"foundation": [f"emb_{i}" for i in range(8)], "motion": ["e_prime", "s_prime"]}


def test_cross_fitted_ensemble_beats_each_part_and_is_calibrated():
    table, y, groups = _data()
    oof = cross_fitted(table, y, groups, BLOCKS, folds=3)
    assert list(oof.columns) == ["ensemble", "foundation", "motion"] and oof.notna().all().all()
    scores = {name: auroc(y, oof[name].to_numpy()) for name in oof.columns}
    assert scores["ensemble"] > max(scores["foundation"], scores["motion"]) + 0.03, scores
    assert abs(calibration_intercept(y, oof["ensemble"].to_numpy())) < 0.3
    assert 0.7 < calibration_slope(y, oof["ensemble"].to_numpy()) < 1.3


def test_cross_fitted_predictions_do_not_see_their_own_labels():
    # pure noise: a model that saw the labels scores well in-sample; cross-fitted predictions must not
    rng = np.random.default_rng(1)
    n = 160
    table = pd.DataFrame(rng.normal(size=(n, 40)), columns=[f"emb_{i}" for i in range(40)])
    table["e_prime"], table["s_prime"] = rng.normal(size=n), rng.normal(size=n)
    y = (rng.random(n) < 0.5).astype(float)
    blocks = {"foundation": [f"emb_{i}" for i in range(40)], "motion": ["e_prime", "s_prime"]}
    fitted = fit_ensemble(table, y, {"foundation": blocks["foundation"]}, folds=3)
    in_sample = auroc(y, fitted.predict(table)["foundation"].to_numpy())
    oof = cross_fitted(table, y, np.arange(n), blocks, folds=3)
    assert in_sample > 0.7
    assert 0.35 < auroc(y, oof["ensemble"].to_numpy()) < 0.65
    assert set(fit_ensemble(*_data(n=200)[:2], BLOCKS, folds=3).weights) == {"foundation", "motion"}


def test_clear_errors_for_missing_columns_and_labels():
    table, y, groups = _data(n=100)
    with pytest.raises(EnsembleError, match="e_prime"):
        fit_ensemble(table.drop(columns="e_prime"), y, BLOCKS)
    y_missing = y.copy()
    y_missing[3] = np.nan
    with pytest.raises(EnsembleError, match="missing"):
        cross_fitted(table, y_missing, groups, BLOCKS)
    with pytest.raises(EnsembleError, match="0/1"):
        fit_ensemble(table, np.zeros(len(y)), BLOCKS)


def test_ensemble_command_cross_fits_applies_and_feeds_evaluate(tmp_path):
    from typer.testing import CliRunner

    from ecgscope.cli import app

    table, y, groups = _data(n=300)
    ids = [str(i) for i in range(len(table))]
    cohort = pd.DataFrame({"ecg_id": ids, "patient_id": groups.astype(str), "risk": y,
                           "age": np.random.default_rng(2).normal(60, 10, len(table)), "sex": "F"})
    cohort.to_parquet(tmp_path / "cohort.parquet")
    table.assign(ecg_id=ids)[["ecg_id", *BLOCKS["foundation"]]].to_parquet(tmp_path / "emb.parquet")
    motion = table.assign(ecg_id=ids, curve=[[0.0, 1.0]] * len(table))[["ecg_id", "e_prime", "s_prime", "curve"]]
    motion.to_parquet(tmp_path / "motion.parquet")
    args = ["ensemble", "--cohort", str(tmp_path / "cohort.parquet"), "--label", "risk", "--out", str(tmp_path / "out"),
            "--features", f"foundation={tmp_path / 'emb.parquet'}",
            "--features", f"motion={tmp_path / 'motion.parquet'}",
            "--covariate", "age", "--folds", "3", "--apply", str(tmp_path / "cohort.parquet"),
            "--apply-features", f"foundation={tmp_path / 'emb.parquet'}",
            "--apply-features", f"motion={tmp_path / 'motion.parquet'}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    for stem in ("cross_fitted", "cross_fitted_foundation", "cross_fitted_motion", "cross_fitted_covariates",
                 "applied", "applied_motion"):
        frame = pd.read_parquet(out / f"{stem}.parquet")
        assert list(frame.columns) == ["ecg_id", "patient_id", "risk_true", "risk_pred"] and len(frame) == 300
    evaluated = CliRunner().invoke(app, ["evaluate", str(out / "cross_fitted.parquet"), "--out", str(tmp_path / "ev"),
                                         "--baseline", str(out / "cross_fitted_foundation.parquet"),
                                         "--n-boot", "20", "--no-age-bands"])
    assert evaluated.exit_code == 0, evaluated.output
    comparison = pd.read_csv(tmp_path / "ev" / "comparison.csv")
    assert comparison.loc[comparison.measure == "continuous NRI", "estimate"].iloc[0] > 0

    motion.iloc[:-1].to_parquet(tmp_path / "short.parquet")  # one ECG without generated motion
    short = CliRunner().invoke(app, args[:7] + ["--features", f"motion={tmp_path / 'short.parquet'}", "--overwrite"])
    assert short.exit_code != 0 and "lacks 1 of the cohort's ECGs" in short.output


def test_every_inner_split_is_grouped_by_patient(monkeypatch):
    from ecgscope.ensemble import stacking

    table, y, groups = _data(n=240)
    seen = []
    original = stacking.PatientFolds.split

    def recording(self, X, y, groups=None):
        for train, test in original(self, X, y, groups):
            ids = X[stacking.PATIENT_COLUMN].to_numpy()
            seen.append(set(ids[train]) & set(ids[test]))
            yield train, test

    monkeypatch.setattr(stacking.PatientFolds, "split", recording)
    fit_ensemble(table, y, BLOCKS, folds=3, groups=groups)
    # the stack's own folds and each base learner's penalty search, each grouped: no patient on both sides
    assert len(seen) > 3 * (1 + len(BLOCKS)) and all(not shared for shared in seen)
    assert len(set(groups)) < len(groups)  # the data do repeat patients
