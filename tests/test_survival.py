"""Survival analysis checked against lifelines and against what the simulator put in."""

import numpy as np
import pandas as pd
import pytest
from lifelines import AalenJohansenFitter, CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test, proportional_hazard_test
from lifelines.utils import concordance_index

from ecgscope.simulate import simulate_cohort
from ecgscope.simulate.outcomes import HF_LOG_HR, true_cumulative_incidence
from ecgscope.survival import (
    cox_hazard_ratio,
    cumulative_incidence,
    event_rate_at,
    fine_gray,
    harrell_c,
    kaplan_meier,
    logrank,
    risk_group_table,
    risk_groups,
    time_dependent_auc,
    uno_c,
)


def _exponential(rng, n=600, beta=0.7):
    x = rng.normal(size=n)
    t_event = rng.exponential(1 / np.exp(beta * x))
    t_censor = rng.uniform(0, 3, n)
    return pd.DataFrame({"x": x, "z": rng.normal(size=n), "time": np.minimum(t_event, t_censor),
                         "event": (t_event <= t_censor).astype(int)})


def test_concordance_sign_convention_and_lifelines_agreement():
    data = _exponential(np.random.default_rng(0))
    risk = data.x.to_numpy()
    assert harrell_c(data.time, data.event, risk) == pytest.approx(concordance_index(data.time, -risk, data.event))
    assert harrell_c(data.time, data.event, risk) > 0.6  # higher x, earlier events
    uncensored = np.ones(len(data), bool)
    perfect = -data.time.to_numpy()  # earlier event = higher risk
    assert harrell_c(data.time, uncensored, perfect) == 1.0
    assert harrell_c(data.time, uncensored, -perfect) == 0.0
    assert uno_c(data.time, uncensored, perfect) == pytest.approx(1.0)
    assert uno_c(data.time, data.event, risk) == pytest.approx(harrell_c(data.time, data.event, risk), abs=0.03)
    auc = time_dependent_auc(data.time, data.event, risk, [0.5, 1.0])
    assert auc.auc.between(0.6, 1).all() and len(auc) == 2


def test_cox_hazard_ratio_is_lifelines_coefficient_per_unit():
    data = _exponential(np.random.default_rng(1))
    result = cox_hazard_ratio(data, "x", per=-10, covariates=["z"])
    reference = CoxPHFitter().fit(data[["time", "event", "x", "z"]], "time", "event")
    assert result["hr"] == pytest.approx(np.exp(-10 * reference.params_["x"]))
    low, high = np.exp(-10 * reference.confidence_intervals_.loc["x"].to_numpy())[::-1]
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((low, high), rel=1e-4)
    assert result["events"] == data.event.sum()
    ph = proportional_hazard_test(reference, data[["time", "event", "x", "z"]], time_transform="rank").summary
    assert result["ph_p"] == pytest.approx(ph.loc["x", "p"]) and result["ph_p_min"] == pytest.approx(ph["p"].min())
    assert cox_hazard_ratio(data, "x")["ci_low"] < np.exp(0.7) < cox_hazard_ratio(data, "x")["ci_high"]


def test_kaplan_meier_log_rank_and_aalen_johansen_equal_lifelines():
    rng = np.random.default_rng(2)
    data = _exponential(rng)
    group = np.where(data.x > 0, "high", "low")
    curves, at_risk = kaplan_meier(data.time, data.event, group, at=[0, 1])
    mask = group == "high"
    km = KaplanMeierFitter().fit(data.time[mask], data.event[mask])
    mine = curves[curves.group == "high"].set_index("time").survival
    assert np.allclose(mine.to_numpy(), km.survival_function_.iloc[:, 0].to_numpy())
    assert at_risk.set_index(["group", "time"]).at_risk[("high", 0)] == mask.sum()
    reference = multivariate_logrank_test(data.time, group, data.event)
    assert logrank(data.time, data.event, group)["p"] == pytest.approx(reference.p_value)

    code = np.where(data.event == 1, rng.integers(1, 3, len(data)), 0)
    cif = cumulative_incidence(data.time, code, cause=1)
    aj = AalenJohansenFitter(seed=0).fit(data.time, code, event_of_interest=1)
    assert np.allclose(cif.incidence.to_numpy(), aj.cumulative_density_.iloc[:, 0].to_numpy())
    rate, low, high = event_rate_at(data.time, code, 1.0, cause=1)
    assert low < rate < high
    naive, _, _ = event_rate_at(data.time, code, 1.0, cause=1, competing=False)
    assert naive > rate  # censoring the competing deaths overstates the incidence


def _fine_gray_sample(rng, n, beta, p=0.4):
    """Fine & Gray (1999) design: P(cause 1 by t | x) = 1 - (1 - p (1 - e^-t))^exp(beta x)."""
    x = rng.binomial(1, 0.5, n).astype(float)
    e = np.exp(beta * x)
    p1 = 1 - (1 - p) ** e
    cause = np.where(rng.uniform(size=n) < p1, 1, 2)
    u = rng.uniform(size=n)
    t1 = -np.log(1 - (1 - (1 - u * p1) ** (1 / e)) / p)
    t2 = rng.exponential(1 / np.exp(0.3 * x))
    t = np.where(cause == 1, t1, t2)
    censor = rng.uniform(0, 4, n)
    return pd.DataFrame({"x": x, "time": np.minimum(t, censor), "event": np.where(t <= censor, cause, 0)})


def test_fine_gray_recovers_a_known_subdistribution_hazard_ratio():
    data = _fine_gray_sample(np.random.default_rng(3), 1500, beta=0.8)
    result = fine_gray(data, "x", cause=1)
    assert result["ci_low"] < np.exp(0.8) < result["ci_high"]
    assert result["shr"] == pytest.approx(np.exp(0.8), rel=0.25)
    assert result["competing"] > 100
    no_competing = data[data.event != 2]  # without competing events Fine-Gray is the Cox model
    assert fine_gray(no_competing, "x")["shr"] == pytest.approx(
        cox_hazard_ratio(no_competing.assign(event=no_competing.event > 0), "x")["hr"], rel=1e-4)


def test_risk_groups_and_their_event_rates():
    score = np.arange(10.0)
    assert list(risk_groups(score, quantiles=[0.8])) == ["low"] * 8 + ["high"] * 2
    assert list(risk_groups(score, thresholds=[3, 6]))[::4] == ["group 1", "group 2", "group 3"]
    with pytest.raises(ValueError, match="exactly one"):
        risk_groups(score)


@pytest.fixture(scope="module")
def hospital():
    cohort = simulate_cohort("hospital", n=4000, seed=21)
    return cohort.preset, cohort.patients


def test_recovered_hazard_ratio_agrees_with_what_the_simulator_put_in(hospital):
    _, patients = hospital
    data = patients.assign(time=patients.followup_years, hf=patients.event == 1,
                           lv_low=(patients.lvef < 40).astype(float), age12=patients.age / 12.0,
                           ckd=patients.ckd.astype(float))
    # the HF-death hazard is log-linear in these, so the cause-specific Cox model is correctly specified
    result = cox_hazard_ratio(data, "rvef", event="hf", per=-10,
                              covariates=["diastolic_score", "age12", "ckd", "lv_low"])
    truth = np.exp(HF_LOG_HR["rvef_per_10_lower"])
    assert result["ci_low"] < truth < result["ci_high"]


def test_recovered_event_rates_by_risk_group_agree_with_the_simulator(hospital):
    preset, patients = hospital
    group = np.where(patients.diastolic_high_risk, "high", "low")
    table = risk_group_table(patients.followup_years, patients.event, group, horizon=4.0).set_index("group")
    truth = true_cumulative_incidence(patients, preset, 4.0)
    for level in ("high", "low"):
        expected = truth[group == level].mean()
        assert table.loc[level, "ci_low"] < expected < table.loc[level, "ci_high"]
    assert table.loc["high", "rate"] > 1.5 * table.loc["low", "rate"]
