"""Competing-risk outcomes: time to heart-failure death and to other death, with censoring.

Cause-specific hazards are exponential in time and log-linear in the state: heart-failure death rises
with lower RVEF, worse diastolic state, age, kidney disease and reduced LVEF; other death with age and
kidney disease (and weakly with RVEF). The coefficients are set so that the studies' effects are
recoverable (about HR 1.5-1.8 per 10 % lower true RVEF for all-cause death; about 3x the 4-year HF death
in the high- against the low-risk diastolic group); ``benchmarks/simulator_calibration.py`` prints them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgscope.simulate.presets import Preset

#: log hazard ratios of HF death and other death, per unit of each covariate.
HF_LOG_HR = {"rvef_per_10_lower": 0.85, "diastolic_score": 0.32, "age_per_12y": 0.35, "ckd": 0.3,
             "lvef_below_40": 0.5}
OTHER_LOG_HR = {"rvef_per_10_lower": 0.25, "age_per_12y": 0.75, "ckd": 0.35}
#: Diastolic score above which a subject belongs to the high-risk diastolic group (about a fifth).
DIASTOLIC_HIGH_RISK_SCORE = 1.0


def cause_specific_hazards(state: pd.DataFrame, preset: Preset) -> tuple[np.ndarray, np.ndarray]:
    """Each subject's yearly hazard of heart-failure death and of other death (constant in time)."""
    rv = (60.0 - state["rvef"].to_numpy()) / 10.0
    age = (state["age"].to_numpy() - 60.0) / 12.0
    ckd = state["ckd"].to_numpy().astype(float)
    dia = state["diastolic_score"].to_numpy()
    lv = (state["lvef"].to_numpy() < 40).astype(float)
    log_hf = (HF_LOG_HR["rvef_per_10_lower"] * rv + HF_LOG_HR["diastolic_score"] * dia
              + HF_LOG_HR["age_per_12y"] * age + HF_LOG_HR["ckd"] * ckd + HF_LOG_HR["lvef_below_40"] * lv)
    log_other = OTHER_LOG_HR["rvef_per_10_lower"] * rv + OTHER_LOG_HR["age_per_12y"] * age + OTHER_LOG_HR["ckd"] * ckd
    return preset.hf_hazard * np.exp(log_hf), preset.other_hazard * np.exp(log_other)


def true_cumulative_incidence(state: pd.DataFrame, preset: Preset, horizon: float, cause: int = 1) -> np.ndarray:
    """Each subject's true probability of dying of ``cause`` (1 HF, 2 other) by ``horizon`` years, with the
    other cause competing and no censoring: h_c / (h_1 + h_2) * (1 - exp(-(h_1 + h_2) t))."""
    hf, other = cause_specific_hazards(state, preset)
    total = hf + other
    return (hf if cause == 1 else other) / total * (1 - np.exp(-total * horizon))


def draw_outcomes(state: pd.DataFrame, preset: Preset, rng: np.random.Generator) -> pd.DataFrame:
    """Draw follow-up time and event (0 censored, 1 heart-failure death, 2 other death) per subject."""
    n = len(state)
    hf, other = cause_specific_hazards(state, preset)
    t_hf = rng.exponential(1.0 / hf)
    t_other = rng.exponential(1.0 / other)
    lo, hi = preset.followup_years
    t_admin = rng.uniform(lo, hi, n)
    t_loss = rng.exponential(1.0 / max(preset.yearly_loss_to_followup, 1e-9), n)
    t_censor = np.minimum(t_admin, t_loss)
    time = np.minimum.reduce([t_hf, t_other, t_censor])
    event = np.select([time == t_hf, time == t_other], [1, 2], 0)
    return pd.DataFrame({
        "followup_years": time.round(4),
        "event": event.astype(np.int8),
        "hf_death": event == 1,
        "death": event > 0,
    })
