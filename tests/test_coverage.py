"""Every interval ecgscope reports, checked for coverage over repeated simulated data sets with a known truth.

Each test is small (a few hundred patients, 100-400 repetitions), so its band is wide enough for the
repetition count: with R repetitions the empirical coverage of a correct 95 % interval has a standard error
of sqrt(0.95 * 0.05 / R), 0.022 at R = 100, and the bands below are about three of those either side.
Several also check that the reported standard error matches the spread of the estimates, which is what a
1.7x too-wide interval (the old Fine-Gray one) or a too-narrow one (DeLong ignoring repeated ECGs) fails.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from scipy import stats

from ecgscope.evaluate import SplitConformal, auroc, bootstrap_metrics, delong_test, mae
from ecgscope.survival import cox_hazard_ratio, event_rate_at, fine_gray
from ecgscope.survival.cox import fine_gray_data


def _band(repetitions: int, level: float = 0.95, width: float = 3.0) -> tuple[float, float]:
    """Coverage band: ``width`` binomial standard errors around ``level``."""
    se = np.sqrt(level * (1 - level) / repetitions)
    return level - width * se, min(level + width * se, 1.0)


def fine_gray_sample(rng, n: int, beta: float = 0.8, p: float = 0.4, censor_max: float = 3.0) -> pd.DataFrame:
    """Fine & Gray (1999) design with a continuous covariate: P(cause 1 by t | x) = 1 - (1 - p (1 - e^-t))^e^(bx),
    so the true subdistribution log-HR is ``beta``; cause 2 is exponential; uniform censoring."""
    x = rng.normal(size=n)
    e = np.exp(beta * x)
    u = rng.uniform(size=n)
    cause1 = u < 1 - (1 - p) ** e
    t = np.empty(n)
    t[cause1] = -np.log(1 - (1 - (1 - u[cause1]) ** (1 / e[cause1])) / p)
    t[~cause1] = rng.exponential(1 / np.exp(0.5 * x[~cause1]))
    censor = rng.uniform(0, censor_max, n)
    return pd.DataFrame({"x": x, "time": np.minimum(t, censor), "event": np.where(t <= censor, 2 - cause1, 0)})


def test_fine_gray_interval_covers_the_true_subdistribution_hazard_ratio():
    rng = np.random.default_rng(0)
    estimates, ses, covered = [], [], []
    for _ in range(120):
        result = fine_gray(fine_gray_sample(rng, 400), "x")
        estimates.append(np.log(result["shr"]))
        ses.append(result["se_log"])
        covered.append(result["ci_low"] < np.exp(0.8) < result["ci_high"])
    low, high = _band(120)
    assert low <= np.mean(covered) <= high
    # the reported SE is the estimates' spread (the old lifelines sandwich reported ~1.7x it)
    assert np.mean(ses) / np.std(estimates) == pytest.approx(1.0, abs=0.2)
    assert np.mean(estimates) == pytest.approx(0.8, abs=0.05)


def test_fine_gray_fit_equals_lifelines_where_lifelines_is_right():
    data = fine_gray_sample(np.random.default_rng(1), 400)
    rows = fine_gray_data(data.time.to_numpy(), data.event.to_numpy(), 1)
    rows = rows[rows.stop > rows.start].assign(x=lambda r: data.x.to_numpy()[r.row])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weighted = CoxPHFitter().fit(rows[["start", "stop", "event", "weight", "x"]], "stop", "event",
                                     entry_col="start", weights_col="weight")
    # untied times: Breslow (here) and Efron (lifelines) give the same point estimate
    assert np.log(fine_gray(data, "x")["shr"]) == pytest.approx(weighted.params_["x"], abs=1e-6)
    # without competing events there are no entry times, and lifelines' robust SE is the right one
    single = data[data.event != 2].reset_index(drop=True)
    reference = CoxPHFitter().fit(single.assign(id=np.arange(len(single)))[["time", "event", "x", "id"]],
                                  "time", "event", robust=True, cluster_col="id")
    assert fine_gray(single, "x")["se_log"] == pytest.approx(reference.standard_errors_["x"], rel=0.01)


def test_cox_wald_interval_covers_the_true_hazard_ratio():
    rng = np.random.default_rng(2)
    covered = []
    for _ in range(100):
        x = rng.normal(size=300)
        t = rng.exponential(1 / np.exp(0.5 * x))
        c = rng.uniform(0, 2, 300)
        frame = pd.DataFrame({"x": x, "time": np.minimum(t, c), "event": (t <= c).astype(int)})
        result = cox_hazard_ratio(frame, "x", check_ph=False)
        covered.append(result["ci_low"] < np.exp(0.5) < result["ci_high"])
    low, high = _band(100)
    assert low <= np.mean(covered) <= high


def test_aalen_johansen_interval_covers_the_true_cumulative_incidence():
    rng = np.random.default_rng(3)
    rate1, rate2, horizon = 0.3, 0.2, 1.5
    truth = rate1 / (rate1 + rate2) * (1 - np.exp(-(rate1 + rate2) * horizon))
    covered = []
    for _ in range(100):
        t = rng.exponential(1 / (rate1 + rate2), 300)
        cause = np.where(rng.uniform(size=300) < rate1 / (rate1 + rate2), 1, 2)
        c = rng.uniform(0, 4, 300)
        _, low, high = event_rate_at(np.minimum(t, c), np.where(t <= c, cause, 0), horizon, cause=1)
        covered.append(low < truth < high)
    band_low, band_high = _band(100)
    assert band_low <= np.mean(covered) <= band_high


def test_patient_bootstrap_covers_the_true_auroc_and_mae():
    rng = np.random.default_rng(4)
    separation, noise_sd = 1.0, 2.0
    true_auroc = stats.norm.cdf(separation / np.sqrt(2))  # binormal, unit variances
    true_mae = noise_sd * np.sqrt(2 / np.pi)
    covered = {"AUROC": [], "MAE": []}
    for _ in range(100):
        # two ECGs per patient sharing the patient's effect: resampling rows instead of patients would be
        # too narrow
        patients = np.repeat(np.arange(150), 2)
        y = np.repeat(rng.uniform(size=150) < 0.3, 2)
        shared = np.repeat(rng.normal(size=150), 2)
        score = separation * y + np.sqrt(0.5) * shared + np.sqrt(0.5) * rng.normal(size=300)
        error = noise_sd * (np.sqrt(0.5) * shared + np.sqrt(0.5) * rng.normal(size=300))
        found = bootstrap_metrics({"AUROC": auroc}, y, score, patients, n_boot=200, seed=0)
        found |= bootstrap_metrics({"MAE": mae}, np.zeros(300), error, patients, n_boot=200, seed=0)
        for name, truth in (("AUROC", true_auroc), ("MAE", true_mae)):
            covered[name].append(found[name][1] < truth < found[name][2])
    low, high = _band(100, width=3.5)  # percentile intervals run a little short at this size
    for name, hits in covered.items():
        assert low <= np.mean(hits) <= high, name


def test_delong_covers_a_zero_difference_per_patient_when_patients_repeat():
    rng = np.random.default_rng(5)
    covered, naive_covered = [], []
    for _ in range(150):
        patients = np.repeat(np.arange(120), 3)
        y = np.repeat(rng.uniform(size=120) < 0.4, 3)
        shared = np.repeat(rng.normal(size=(120, 2)), 3, axis=0)  # each score's patient-level part
        a = y + shared[:, 0] + 0.5 * rng.normal(size=360)
        b = y + shared[:, 1] + 0.5 * rng.normal(size=360)  # same AUROC as a: true difference 0
        clustered, naive = delong_test(y, a, b, groups=patients), delong_test(y, a, b)
        covered.append(clustered["ci_low"] < 0 < clustered["ci_high"])
        naive_covered.append(naive["ci_low"] < 0 < naive["ci_high"])
    low, high = _band(150)
    assert low <= np.mean(covered) <= high
    assert np.mean(naive_covered) < low  # treating three ECGs as three patients is too narrow


@pytest.mark.parametrize("n_calibration", [19, 59])
def test_conformal_coverage_is_the_exact_order_statistics_level(n_calibration):
    # with n calibration points, P(covered) = ceil((n + 1)(1 - alpha)) / (n + 1) exactly: 18/20 and 54/60;
    # the old np.quantile(..., "higher") took the next score up and gave 19/20 and 55/60
    rng = np.random.default_rng(6)
    repetitions, n_test = 1500, 200
    coverage = []
    for _ in range(repetitions):
        y, pred = rng.normal(size=n_calibration + n_test), np.zeros(n_calibration + n_test)
        conformal = SplitConformal(0.1).fit(y[:n_calibration], pred[:n_calibration])
        low, high = conformal.interval(pred[n_calibration:])
        coverage.append(np.mean((y[n_calibration:] >= low) & (y[n_calibration:] <= high)))
    expected = np.ceil((n_calibration + 1) * 0.9) / (n_calibration + 1)
    # the per-repetition coverage is Beta-distributed with SD about 0.05-0.06 at these sizes
    assert np.mean(coverage) == pytest.approx(expected, abs=4 * 0.06 / np.sqrt(repetitions))


def test_conformal_interval_is_infinite_when_calibration_is_too_small_for_the_level():
    conformal = SplitConformal(0.1).fit(np.arange(5.0), np.zeros(5))  # needs ceil(6 * 0.9) = 6 > 5 points
    low, high = conformal.interval(np.zeros(3))
    assert np.isneginf(low).all() and np.isposinf(high).all()
    assert np.isfinite(SplitConformal(0.1).fit(np.arange(9.0), np.zeros(9)).interval(np.zeros(1))[1]).all()


def test_random_effects_pool_over_seeds_covers_the_mean_a_fixed_effect_pool_misses():
    from ecgscope.evaluate.metrics import random_effects_pool

    rng = np.random.default_rng(7)
    truth, tau, within_se, seeds = 0.02, 0.015, 0.008, 5  # training seeds move the difference more than noise
    covered, fixed_covered = [], []
    for _ in range(400):
        per_seed = truth + tau * rng.normal(size=seeds) + within_se * rng.normal(size=seeds)
        half = 1.959964 * within_se
        pooled = random_effects_pool(per_seed, per_seed - half, per_seed + half)
        covered.append(pooled["ci_low"] < truth < pooled["ci_high"])
        fixed_half = 1.959964 * within_se / np.sqrt(seeds)
        fixed_covered.append(abs(per_seed.mean() - truth) < fixed_half)
    low, high = _band(400)
    assert low <= np.mean(covered) <= high
    assert np.mean(fixed_covered) < 0.8  # the old inverse-variance pool, blind to seed variance (about 0.64)
