"""The latent cardiac state of each simulated subject: demographics, RV/LV volumes, diastolic state.

Distributions follow REFERENCE.md section 5 (CMR normal ranges by sex and age, ASE echo ranges). Disease
strata shift the state by a severity drawn per subject; nothing here knows about ECG waveforms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgscope.simulate.presets import STRATA, Preset

RV_DYSFUNCTION_RVEF = 40.0  # %, RVEF <= this
RV_DILATION_RVEDVI = 120.0  # mL/m2, RVEDVi > this


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def draw_state(preset: Preset, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw ``n`` subjects' true cardiac state for ``preset`` (one row per subject)."""
    lo, hi = preset.age_range
    age = np.clip(rng.normal(preset.age_mean, preset.age_sd, n), lo, hi)
    female = rng.random(n) < preset.female_fraction
    age_z = (age - 60.0) / 12.0

    height = np.where(female, rng.normal(163, 7, n), rng.normal(176, 7, n))
    bmi = np.clip(rng.lognormal(np.log(27.0), 0.16, n), 16, 55)
    weight = bmi * (height / 100) ** 2
    bsa = np.sqrt(height * weight / 3600.0)  # Mosteller

    probs = np.array([preset.strata.get(s, 0.0) for s in STRATA[1:]])
    probs = np.concatenate([[1.0 - probs.sum()], probs])
    stratum_idx = rng.choice(len(STRATA), size=n, p=probs)
    stratum = np.asarray(STRATA)[stratum_idx]
    severity = np.where(stratum_idx > 0, rng.uniform(0.3, 1.0, n), 0.0)

    def sev(name: str) -> np.ndarray:
        return np.where(stratum == name, severity, 0.0)

    s_press, s_vol, s_lvsys, s_hfpef = (sev(s) for s in STRATA[1:])

    hypertension = rng.random(n) < np.clip(preset.hypertension_rate * np.exp(0.5 * age_z) + 0.5 * s_hfpef, 0, 0.95)
    ckd = rng.random(n) < np.clip(preset.ckd_rate * np.exp(0.6 * age_z) + 0.15 * (s_hfpef + s_lvsys), 0, 0.9)

    # --- RV (CMR): volumes fall and RVEF rises with age; men have larger RVs.
    rvedvi = np.where(female, 78.0, 88.0) - 3.0 * age_z + rng.normal(0, 12.5, n)
    rvef = 57.0 + 2.5 * female + 1.0 * age_z + rng.normal(0, 5.5, n)
    # Pressure load (pulmonary hypertension): RV fails and dilates moderately.
    rvef = rvef - 36.0 * s_press - 7.0 * s_vol - 22.0 * s_lvsys + rng.normal(0, 7.0, n) * (severity > 0)
    rvedvi = rvedvi + 38.0 * s_press + 62.0 * s_vol + 14.0 * s_lvsys
    rvef = np.clip(rvef, 12.0, 80.0)
    rvedvi = np.clip(rvedvi, 40.0, 260.0)
    rvesvi = rvedvi * (1.0 - rvef / 100.0)
    pulmonary_pressure = np.clip(s_press + 0.4 * s_lvsys + 0.25 * s_hfpef + rng.normal(0, 0.05, n), 0, None)
    pulmonary_hypertension = pulmonary_pressure > 0.3

    # --- LV
    lvedvi = np.where(female, 66.0, 76.0) - 2.0 * age_z + rng.normal(0, 10, n) + 35.0 * s_lvsys
    lvef = np.where(female, 61.0, 58.0) + rng.normal(0, 5, n) - 32.0 * s_lvsys
    lvef = np.clip(lvef, 10.0, 80.0)
    lvesvi = lvedvi * (1.0 - lvef / 100.0)
    lvmi = (np.where(female, 58.0, 70.0) + rng.normal(0, 10, n) + 9.0 * hypertension
            + 35.0 * s_hfpef + 15.0 * s_lvsys)
    lv_wall = np.clip(6.5 + 0.075 * (lvmi - 50.0) + rng.normal(0, 0.8, n), 5, 25)

    # --- Diastolic state: one latent score; higher is worse.
    diastolic = (0.55 * age_z + 0.5 * hypertension + 0.35 * ckd + 0.02 * (lvmi - 65.0)
                 + 1.7 * s_hfpef + 0.9 * s_lvsys + 0.5 * s_press + rng.normal(0, 0.6, n))
    af = rng.random(n) < np.clip(_sigmoid(-4.6 + 0.8 * diastolic + 0.3 * age_z), 0, 0.6)

    septal_e = np.clip(9.5 - 1.5 * diastolic + rng.normal(0, 1.0, n), 2.5, 18.0)
    lateral_e = np.clip(1.3 * septal_e + rng.normal(0, 1.0, n), 3.0, 22.0)
    e_wave = np.clip(72.0 + 12.0 * np.maximum(diastolic - 1.0, 0) + rng.normal(0, 13, n), 30, 160)
    a_wave = np.clip(60.0 + 9.0 * age_z + 4.0 * diastolic + rng.normal(0, 11, n), 20, 140)
    a_wave = np.where(af, np.nan, a_wave)
    e_over_a = e_wave / a_wave
    e_over_e_prime = e_wave / ((septal_e + lateral_e) / 2.0)
    lavi = np.clip(26.0 + 5.0 * diastolic + 9.0 * af + rng.normal(0, 5, n), 12, 90)
    tr_velocity = np.clip(2.25 + 0.12 * diastolic + 1.5 * pulmonary_pressure + rng.normal(0, 0.2, n), 1.5, 5.0)
    # s' follows longitudinal systolic function: about 5-6 cm/s when LVEF is 30 %, 9 in health
    s_prime = np.clip(9.0 + 0.12 * (lvef - 60.0) + 0.04 * (rvef - 57) + rng.normal(0, 1.0, n), 3, 16)
    a_prime = np.clip(8.0 + 1.0 * age_z + 0.4 * diastolic + rng.normal(0, 1.2, n), 3, 16)
    a_prime = np.where(af, np.nan, a_prime)

    return pd.DataFrame({
        "age": age.round(1),
        "sex": np.where(female, "F", "M"),
        "height_cm": height.round(1),
        "weight_kg": weight.round(1),
        "bsa": bsa.round(3),
        "stratum": stratum,
        "severity": severity,
        "hypertension": hypertension,
        "ckd": ckd,
        "pulmonary_hypertension": pulmonary_hypertension,
        "pulmonary_pressure": pulmonary_pressure,
        "af": af,
        "rvedvi": rvedvi, "rvesvi": rvesvi, "rvef": rvef,
        "lvedvi": lvedvi, "lvesvi": lvesvi, "lvef": lvef, "lvmi": lvmi,
        "lv_wall_thickness_mm": lv_wall,
        "diastolic_score": diastolic,
        "septal_e_prime": septal_e, "lateral_e_prime": lateral_e,
        "e_wave": e_wave, "a_wave": a_wave, "e_over_a": e_over_a, "e_over_e_prime": e_over_e_prime,
        "lavi": lavi, "tr_velocity": tr_velocity,
        "s_prime": s_prime, "a_prime": a_prime,
        "rv_dysfunction": rvef <= RV_DYSFUNCTION_RVEF,
        "rv_dilation": rvedvi > RV_DILATION_RVEDVI,
    })
