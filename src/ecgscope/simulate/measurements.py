"""What an imaging export would hold: measured values (true value plus reader variability) and dates.

MRI tables carry CMR volumetrics; echo tables carry the diastolic measurements and the EchoNext-style
structural heart disease flags. Each row is one study, keyed by ``patient_id`` and ``study_date``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgscope.simulate.presets import Preset

#: EchoNext label flags, in the dataset's own column names (REFERENCE.md section 2).
ECHONEXT_FLAGS = (
    "lvef_lte_45_flag", "lvwt_gte_13_flag", "aortic_stenosis_moderate_or_greater_flag",
    "aortic_regurgitation_moderate_or_greater_flag", "mitral_regurgitation_moderate_or_greater_flag",
    "tricuspid_regurgitation_moderate_or_greater_flag", "pulmonary_regurgitation_moderate_or_greater_flag",
    "rv_systolic_dysfunction_moderate_or_greater_flag", "pericardial_effusion_moderate_large_flag",
    "pasp_gte_45_flag", "tr_max_gte_32_flag", "shd_moderate_or_greater_flag",
)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def mri_table(state: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """CMR volumetrics as measured (inter-reader variability of a few % on each value)."""
    n = len(state)
    rvedvi = state["rvedvi"].to_numpy() * np.exp(rng.normal(0, 0.04, n))
    rvef = np.clip(state["rvef"].to_numpy() + rng.normal(0, 2.5, n), 5, 85)
    lvedvi = state["lvedvi"].to_numpy() * np.exp(rng.normal(0, 0.04, n))
    lvef = np.clip(state["lvef"].to_numpy() + rng.normal(0, 2.5, n), 5, 85)
    return pd.DataFrame({
        "rvedvi": rvedvi.round(1), "rvesvi": (rvedvi * (1 - rvef / 100)).round(1), "rvef": rvef.round(1),
        "lvedvi": lvedvi.round(1), "lvesvi": (lvedvi * (1 - lvef / 100)).round(1), "lvef": lvef.round(1),
        "lvmi": (state["lvmi"].to_numpy() * np.exp(rng.normal(0, 0.05, n))).round(1),
    })


def echo_table(state: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Transthoracic echo measurements (diastolic function, LV, RV) and structural disease flags."""
    n = len(state)

    def noisy(col, sd, digits=1):
        return (state[col].to_numpy() + rng.normal(0, sd, n)).round(digits)

    lvef = np.clip(noisy("lvef", 4.0), 5, 85)
    septal, lateral = np.clip(noisy("septal_e_prime", 0.6), 2, 20), np.clip(noisy("lateral_e_prime", 0.7), 2, 25)
    e_wave, a_wave = noisy("e_wave", 5.0), noisy("a_wave", 5.0)
    tr_v = np.clip(noisy("tr_velocity", 0.15, 2), 1.2, 5.5)
    lavi = np.clip(noisy("lavi", 3.0), 10, 100)
    lvwt = noisy("lv_wall_thickness_mm", 0.7)
    rvef = state["rvef"].to_numpy()
    pressure = state["pulmonary_pressure"].to_numpy()
    pasp = 4 * tr_v**2 + rng.uniform(3, 12, n)
    hfpef = np.where(state["stratum"] == "hfpef_lvh", state["severity"], 0.0)

    def flag(p):
        return rng.random(n) < p

    lvedvi, rvedvi = state["lvedvi"].to_numpy(), state["rvedvi"].to_numpy()
    p_mitral = _sigmoid(-4.2 + 0.05 * (lvedvi - 75) + 0.06 * (lavi - 30))
    p_tricuspid = _sigmoid(-4.0 + 0.035 * (rvedvi - 85) + 2.0 * pressure)
    flags = {
        "lvef_lte_45_flag": lvef <= 45,
        "lvwt_gte_13_flag": lvwt >= 13,
        "aortic_stenosis_moderate_or_greater_flag": flag(0.01 + 0.12 * hfpef),
        "aortic_regurgitation_moderate_or_greater_flag": flag(np.full(n, 0.012)),
        "mitral_regurgitation_moderate_or_greater_flag": flag(p_mitral),
        "tricuspid_regurgitation_moderate_or_greater_flag": flag(p_tricuspid),
        "pulmonary_regurgitation_moderate_or_greater_flag": flag(0.005 + 0.05 * pressure),
        "rv_systolic_dysfunction_moderate_or_greater_flag": rvef + rng.normal(0, 4, n) < 35,
        "pericardial_effusion_moderate_large_flag": flag(np.full(n, 0.008)),
        "pasp_gte_45_flag": pasp >= 45,
        "tr_max_gte_32_flag": tr_v >= 3.2,
    }
    flags["shd_moderate_or_greater_flag"] = np.logical_or.reduce(list(flags.values()))
    # LA reservoir strain (%), the ASE 2025 marker: about 39 % in health, lower with a stiff, loaded atrium and
    # in atrial fibrillation. Drawn last so that the columns above stay as earlier versions drew them.
    la_strain = 38.0 - 7.0 * state["diastolic_score"].to_numpy() - 10.0 * state["af"].to_numpy()
    la_strain = np.clip(la_strain + rng.normal(0, 4.0, n), 3, 60).round(1)
    table = pd.DataFrame({
        "lvef": lvef, "septal_e_prime": septal, "lateral_e_prime": lateral,
        "e_wave": e_wave, "a_wave": a_wave, "e_over_a": (e_wave / a_wave).round(2),
        "e_over_e_prime": (e_wave / ((septal + lateral) / 2)).round(2),
        "lavi": lavi, "la_strain": la_strain, "tr_velocity": tr_v, "pasp": pasp.round(1),
        "lv_wall_thickness_mm": lvwt,
        "s_prime": noisy("s_prime", 0.6), "a_prime": noisy("a_prime", 0.6),
    })
    for name in ECHONEXT_FLAGS:
        table[name] = flags[name].astype(np.int8)
    return table


def study_dates(preset: Preset, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Imaging study dates and index ECG datetimes per subject, with the preset's gap rule."""
    start = np.datetime64(f"{preset.start_year}-01-01T00:00:00", "s")
    day = np.timedelta64(86400, "s")
    imaging = start + (rng.uniform(0, 3 * 365, n) * day).astype("timedelta64[s]")
    imaging = imaging.astype("datetime64[D]").astype("datetime64[s]")
    kind, days = preset.imaging_gap
    if preset.imaging is None:
        gap = np.zeros(n)
    elif kind == "before":
        gap = -rng.uniform(0, days, n)
    else:
        gap = rng.uniform(-days, days, n)
    clock = rng.uniform(7.5, 18.0, n) / 24.0  # time of day of the ECG
    ecg = imaging + ((np.floor(gap) + clock) * day).astype("timedelta64[s]")
    return imaging, ecg


def extra_ecg_dates(preset: Preset, index_ecg: np.ndarray, imaging: np.ndarray,
                    counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dates of each patient's further ECGs (repeat ``index_ecg`` entries by ``counts``)."""
    day = np.timedelta64(86400, "s")
    base_idx = np.repeat(np.arange(len(counts)), counts)
    m = len(base_idx)
    kind, days = preset.imaging_gap
    if preset.imaging is not None and kind == "before":
        base, gap = imaging[base_idx], -rng.uniform(1, days, m)
    else:
        base, gap = index_ecg[base_idx], rng.uniform(30, 1000, m)
    return base + (gap * day).astype("timedelta64[s]")
