"""Evaluation metrics checked against reference implementations and known values."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from ecgscope.evaluate import (
    age_bands,
    auprc,
    auroc,
    bland_altman,
    brier,
    calibration_intercept,
    calibration_slope,
    choose_threshold,
    concordance_correlation,
    delong_test,
    evaluate_table,
    idi,
    mae,
    net_benefit,
    nri_categorical,
    nri_continuous,
    pr_band,
    predictive_values_at,
    roc_band,
    threshold_metrics,
)


def _binary(rng, n=400, shift=1.0):
    y = rng.integers(0, 2, n)
    score = rng.normal(size=n) + shift * y
    return y, score, 1 / (1 + np.exp(-(score - shift / 2) * shift))


def test_auroc_and_brier_equal_scikit_learn():
    y, score, prob = _binary(np.random.default_rng(0))
    assert auroc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    tied = np.round(score)  # many ties: mid-ranks must agree with sklearn's trapezoids
    assert auroc(y, tied) == pytest.approx(roc_auc_score(y, tied), abs=1e-12)
    for s in (score, tied):
        assert auprc(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert brier(y, prob) == pytest.approx(brier_score_loss(y, prob), abs=1e-15)


def test_numpy_metrics_equal_their_reference_implementations():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    from ecgscope.evaluate import pearson_r, r2, rmse

    rng = np.random.default_rng(7)
    y, pred = rng.normal(50, 10, 300), rng.normal(50, 10, 300)
    assert mae(y, pred) == pytest.approx(mean_absolute_error(y, pred))
    assert r2(y, pred) == pytest.approx(r2_score(y, pred))
    assert rmse(y, pred) == pytest.approx(np.sqrt(mean_squared_error(y, pred)))
    assert pearson_r(y, pred) == pytest.approx(stats.pearsonr(y, pred)[0])
    labels, _, prob = _binary(rng)
    logit = np.log(prob / (1 - prob))
    reference = LogisticRegression(C=np.inf, max_iter=1000, tol=1e-10).fit(logit[:, None], labels)
    assert calibration_slope(labels, prob) == pytest.approx(reference.coef_[0, 0], rel=1e-5)
    separated = np.array([0.01, 0.02, 0.03, 0.97, 0.98, 0.99])  # a resample can separate the classes
    assert np.isnan(calibration_slope([0, 0, 0, 1, 1, 1], separated))
    assert np.isnan(calibration_slope([0, 0, 0, 0, 0, 1], np.full(6, 0.5)))


def test_operating_points_do_what_they_say():
    y, score, _ = _binary(np.random.default_rng(1))
    at90 = threshold_metrics(y, score, choose_threshold(y, score, "sensitivity:0.9"))
    assert at90["sensitivity"] >= 0.9
    spec = threshold_metrics(y, score, choose_threshold(y, score, "specificity:0.8"))
    assert spec["specificity"] >= 0.8
    youden = choose_threshold(y, score, "youden")
    j = {t: sum(threshold_metrics(y, score, t)[k] for k in ("sensitivity", "specificity")) for t in score}
    assert sum(threshold_metrics(y, score, youden)[k] for k in ("sensitivity", "specificity")) == max(j.values())
    assert choose_threshold(y, score, "threshold:0.3") == 0.3
    with pytest.raises(ValueError, match="unknown operating point"):
        choose_threshold(y, score, "best")


def test_calibration_of_calibrated_and_overconfident_probabilities():
    rng = np.random.default_rng(2)
    prob = rng.uniform(0.05, 0.95, 20000)
    y = rng.uniform(size=prob.size) < prob  # calibrated by construction
    assert calibration_intercept(y, prob) == pytest.approx(0, abs=0.05)
    assert calibration_slope(y, prob) == pytest.approx(1, abs=0.05)
    logit = np.log(prob / (1 - prob))
    overconfident = 1 / (1 + np.exp(-2 * logit))
    assert calibration_slope(y, overconfident) == pytest.approx(0.5, abs=0.05)


def test_delong_matches_sklearn_auroc_and_its_variance_matches_the_bootstrap():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    shared = rng.normal(size=500)
    a = y + shared + 0.5 * rng.normal(size=500)
    b = 0.6 * y + shared + 0.5 * rng.normal(size=500)
    result = delong_test(y, a, b)
    assert result["auroc_a"] == pytest.approx(roc_auc_score(y, a))
    assert result["auroc_b"] == pytest.approx(roc_auc_score(y, b))
    diffs = []
    for _ in range(400):
        pick = rng.integers(0, 500, 500)
        diffs.append(roc_auc_score(y[pick], a[pick]) - roc_auc_score(y[pick], b[pick]))
    assert result["se"] == pytest.approx(np.std(diffs), rel=0.15)
    assert result["p"] < 0.05 and result["ci_low"] > 0
    same = delong_test(y, a, a)
    assert same["difference"] == 0 and same["p"] == 1.0


def test_agreement_metrics_on_known_data():
    y = np.array([10.0, 20, 30, 40])
    assert concordance_correlation(y, y) == pytest.approx(1)
    assert concordance_correlation(y, y + 5) < 1  # correlated perfectly, but off the identity line
    ba = bland_altman(y, y + np.array([1.0, -1, 1, -1]) + 2)
    assert ba["bias"] == pytest.approx(2)
    assert ba["loa_high"] - ba["bias"] == pytest.approx(1.96 * np.std([1, -1, 1, -1], ddof=1))
    assert stats.pearsonr(y, 2 * y)[0] == pytest.approx(1)


def test_reclassification_counts_moves_in_the_right_direction():
    y = np.array([1, 1, 0, 0])
    old = np.array([0.1, 0.3, 0.3, 0.1])
    new = np.array([0.3, 0.3, 0.1, 0.1])  # one event moves up, one non-event moves down
    cat = nri_categorical(y, old, new, [0.2])
    assert cat == {"nri": 1.0, "nri_events": 0.5, "nri_nonevents": 0.5}
    assert nri_continuous(y, old, new)["nri"] == 1.0
    assert idi(y, old, new) == pytest.approx((0.3 - 0.1) - (0.2 - 0.2))
    assert nri_continuous(y, new, old)["nri"] == -1.0


def test_net_benefit_of_treat_all_and_a_perfect_model():
    y = np.array([1] * 20 + [0] * 80)
    curve = net_benefit(y, y.astype(float), thresholds=np.array([0.1, 0.2]))
    assert curve.model.tolist() == pytest.approx([0.2, 0.2])  # no false positives: the whole prevalence
    assert curve.treat_all.tolist() == pytest.approx([0.2 - 0.8 / 9, 0.2 - 0.8 * 0.25])


def test_evaluate_table_has_every_metric_overall_and_by_subgroup():
    rng = np.random.default_rng(5)
    n = 300
    y, score, prob = _binary(rng, n)
    frame = pd.DataFrame({"patient_id": np.arange(n), "sex": rng.choice(["F", "M"], n),
                          "age": rng.uniform(30, 90, n), "dys_true": y, "dys_pred": prob,
                          "ef_true": rng.normal(50, 8, n)})
    frame["ef_pred"] = frame.ef_true + rng.normal(0, 4, n)
    frame.loc[:9, "ef_true"] = np.nan  # ragged labels are skipped, not fatal
    frame["age_band"] = age_bands(frame.age)
    table = evaluate_table(frame, {"dys": "binary", "ef": "regression"}, ["sex", "age_band"], n_boot=50)
    overall = table[(table.subgroup == "all")].set_index(["target", "metric"])
    assert overall.loc[("dys", "AUROC"), "estimate"] == pytest.approx(roc_auc_score(y, prob))
    assert {"AUPRC", "Brier", "sensitivity", "specificity", "PPV", "NPV", "calibration slope",
            "threshold"} <= set(overall.loc["dys"].index)
    assert {"MAE", "RMSE", "R2", "Pearson r", "CCC", "bias", "LoA low", "LoA high"} <= set(overall.loc["ef"].index)
    assert overall.loc[("ef", "MAE"), "n"] == n - 10
    levels = table[(table.subgroup == "age_band") & (table.metric == "AUROC")].level
    assert set(levels) == {"<50", "50-64", "65-74", "75+"}
    row = overall.loc[("dys", "AUROC")]
    assert row.ci_low < row.estimate < row.ci_high


def test_roc_and_pr_bands_contain_their_curves():
    y, score, _ = _binary(np.random.default_rng(6))
    band = roc_band(y, score, n_boot=50)
    assert (band.tpr_low <= band.tpr + 1e-9).all() and (band.tpr <= band.tpr_high + 1e-9).all()
    assert band.auroc.iloc[0] == pytest.approx(roc_auc_score(y, score))
    pr = pr_band(y, score, n_boot=50)
    inside = (pr.precision_low <= pr.precision + 1e-9) & (pr.precision <= pr.precision_high + 1e-9)
    assert inside.mean() > 0.95 and pr.precision.is_monotonic_decreasing
    assert pr.prevalence.iloc[0] == pytest.approx(y.mean())


def test_pr_curve_of_a_random_score_sits_at_the_prevalence():
    rng = np.random.default_rng(8)
    y = rng.uniform(size=4000) < 0.2
    curve = pr_band(y, rng.uniform(size=4000), n_boot=20)
    middle = curve[(curve.recall > 0.1) & (curve.recall < 0.9)]
    assert middle.precision.to_numpy() == pytest.approx(0.2, abs=0.04)  # not a flat line at 1.0
    good = pr_band(y, y + rng.normal(0, 0.5, 4000), n_boot=20)
    assert good.precision.iloc[50] > 0.5 and good.precision.iloc[-1] < good.precision.iloc[1]


def test_predictive_values_at_a_stated_prevalence_follow_bayes_rule():
    rng = np.random.default_rng(9)
    for prevalence in (0.18, 0.01):
        n_pos = int(200_000 * prevalence)
        y = np.r_[np.ones(n_pos), np.zeros(200_000 - n_pos)]
        positive = np.where(y == 1, rng.uniform(size=y.size) < 0.8, rng.uniform(size=y.size) < 0.1)
        direct = threshold_metrics(y, positive.astype(float), 0.5)
        assert predictive_values_at(0.8, 0.9, prevalence) == pytest.approx(
            {"ppv": direct["ppv"], "npv": direct["npv"]}, abs=0.01)
    assert predictive_values_at(0.8, 0.9, 0.01)["ppv"] < 0.1 < predictive_values_at(0.8, 0.9, 0.18)["ppv"]


def test_a_given_threshold_is_reported_at_and_an_apparent_one_is_flagged():
    rng = np.random.default_rng(10)
    n = 300
    y, _, prob = _binary(rng, n)
    frame = pd.DataFrame({"patient_id": np.arange(n), "dys_true": y, "dys_pred": prob,
                          "ward": np.where(np.arange(n) < 20, "A", "B")})
    frame.loc[frame.ward == "A", "dys_true"] = 0  # ward A has no positive patient
    given = evaluate_table(frame, {"dys": "binary"}, ["ward"], thresholds={"dys": 0.7}, n_boot=50)
    rows = given.set_index(["subgroup", "level", "metric"])
    assert rows.loc[("all", "all", "threshold"), "estimate"] == 0.7
    assert "given" in rows.loc[("all", "all", "threshold"), "note"]
    expected = threshold_metrics(frame.dys_true, frame.dys_pred, 0.7)["sensitivity"]
    assert rows.loc[("all", "all", "sensitivity"), "estimate"] == pytest.approx(expected)
    assert {"PPV at 18 % prevalence", "NPV at 1 % prevalence"} <= set(given.metric)
    assert "no positive patients" in rows.loc[("ward", "A", "AUROC"), "note"]
    assert np.isnan(rows.loc[("ward", "A", "AUROC"), "ci_low"])  # a missing bound stays missing, never 0
    apparent = evaluate_table(frame, {"dys": "binary"}, n_boot=50).set_index("metric")
    assert "apparent" in apparent.loc["threshold", "note"]


def test_delong_per_patient_equals_delong_on_one_row_per_patient():
    y, a, _ = _binary(np.random.default_rng(11), 200)
    b = a + np.random.default_rng(12).normal(0, 1, 200)
    single = delong_test(y, a, b)
    assert delong_test(y, a, b, groups=np.arange(200)) == pytest.approx(single | {"patients": 200})
    assert single["patients"] == 200


def test_baseline_is_matched_to_the_model_by_ecg_id_not_by_row(tmp_path):
    from ecgscope.evaluate.evaluation import run_evaluation

    rng = np.random.default_rng(13)
    y, _, prob = _binary(rng, 300)
    frame = pd.DataFrame({"ecg_id": np.arange(300), "patient_id": np.arange(300), "dys_true": y, "dys_pred": prob})
    baseline = frame.assign(dys_pred=rng.uniform(size=300))
    run_evaluation(frame, tmp_path / "a", baseline=baseline, n_boot=20)
    run_evaluation(frame, tmp_path / "b", baseline=baseline.sample(frac=1, random_state=0), n_boot=20)
    first, shuffled = (pd.read_csv(tmp_path / d / "comparison.csv") for d in ("a", "b"))
    pd.testing.assert_frame_equal(first, shuffled)
    with pytest.raises(ValueError, match="same ECGs"):
        run_evaluation(frame, tmp_path / "c", baseline=baseline.iloc[:200], n_boot=20)
