"""The waveform physics: axis, V1 morphology, disease effects, noise level, QRS width."""

import numpy as np
import pandas as pd
import pytest

from ecgscope.leads import STANDARD_LEADS, twelve_from_eight
from ecgscope.simulate import get_preset, simulate_cohort
from ecgscope.simulate.noise import measured_snr_db, qrs_peak_to_peak
from ecgscope.simulate.waveform import (
    MS_PER_RAD,
    ORACLE_COLUMNS,
    QRS_ONSET_RAD,
    QRS_REF_MS,
    build_templates,
    vcg_to_eight,
)

LEAD_I, AVF, V1 = (STANDARD_LEADS.index(n) for n in ("I", "aVF", "V1"))

NORMAL_BEAT = dict(hr_bpm=60.0, rr_variability=0.03, af_rhythm=False, pr_ms=160.0, p_duration_ms=92.0,
                   p_amplitude_scale=1.0, ptf_v1_mv=0.0, qrs_duration_ms=92.0, frontal_rotation_deg=0.0,
                   horizontal_rotation_deg=0.0, qrs_amplitude_scale=1.0, rprime_v1_mv=0.0, t_amplitude_scale=1.0,
                   t_right_precordial_mv=0.0, qtc_ms=400.0, f_wave_mv=0.0)


def qrs_measures(clean12: np.ndarray, r_peaks, oracle: pd.DataFrame, fs: float):
    """Frontal axis (net QRS area in I and aVF) and V1 R/S of each clean record, averaged over its beats."""
    axes, ratios = [], []
    for k, peaks in enumerate(r_peaks):
        onset = QRS_ONSET_RAD * MS_PER_RAD * oracle["qrs_duration_ms"].iloc[k] / QRS_REF_MS
        lo = int(round(onset / 1000 * fs))
        hi = lo + int(round(oracle["qrs_duration_ms"].iloc[k] / 1000 * fs))
        wins = [np.arange(p + lo, p + hi) for p in peaks if p + lo >= 0 and p + hi < clean12.shape[-1]]
        idx = np.concatenate(wins)
        axes.append(np.degrees(np.arctan2(clean12[k, AVF, idx].sum(), clean12[k, LEAD_I, idx].sum())))
        r = np.mean([clean12[k, V1, w].max() for w in wins])
        s = np.mean([-clean12[k, V1, w].min() for w in wins])
        ratios.append(r / max(s, 1e-6))
    return np.array(axes), np.array(ratios)


def test_normal_beat_axis_and_rs_in_v1():
    tpl = build_templates(pd.DataFrame([NORMAL_BEAT]), 500.0)
    twelve = twelve_from_eight(vcg_to_eight(tpl.vcg))[0]
    lo = tpl.pre + int(tpl.qrs_onset_ms[0] / 1000 * 500)
    hi = lo + int(tpl.qrs_duration_ms[0] / 1000 * 500)
    axis = np.degrees(np.arctan2(twelve[AVF, lo:hi].sum(), twelve[LEAD_I, lo:hi].sum()))
    assert 0 <= axis <= 60
    v1 = twelve[V1, lo:hi]
    assert 0 < v1.max() < -v1.min()  # small r, deep S: rS
    assert np.argmax(v1) < np.argmin(v1)  # r comes before S


@pytest.fixture(scope="module")
def strata_cohort():
    preset = get_preset("hospital", strata={"rv_pressure": 0.5}, snr_tiers={24.0: 1.0})
    cohort = simulate_cohort(preset, n=240, seed=5)
    batches = list(cohort.iter_batches())
    clean = np.concatenate([b.clean for b in batches])
    peaks = [p for b in batches for p in b.r_peaks]
    axes, ratios = qrs_measures(clean, peaks, cohort.ecgs, cohort.fs)
    stratum = cohort.patients.set_index("patient_id").loc[cohort.ecgs.patient_id, "stratum"].to_numpy()
    return axes, ratios, stratum


def test_normal_population_axis_is_normal(strata_cohort):
    axes, ratios, stratum = strata_cohort
    normal = stratum == "normal"
    assert 0 <= np.median(axes[normal]) <= 60
    assert np.median(ratios[normal]) < 1


def test_rv_pressure_overload_rotates_axis_right_and_raises_v1_rs(strata_cohort):
    axes, ratios, stratum = strata_cohort
    overloaded = stratum == "rv_pressure"
    assert overloaded.sum() > 50
    assert np.mean(axes[overloaded]) > 90
    assert np.median(ratios[overloaded]) > 1
    # ... and no single sign gives the diagnosis away: some normal subjects share it.
    assert 0 < np.mean(axes[stratum == "normal"] > 90) < 0.2


def test_qrs_duration_tracks_rvedvi_like_the_clinic():
    cohort = simulate_cohort("hospital", n=4000, seed=2)
    idx = cohort.ecgs[cohort.ecgs.is_index]
    rvedvi = cohort.patients.set_index("patient_id").loc[idx.patient_id, "rvedvi"]
    r = np.corrcoef(idx["qrs_duration_ms"], rvedvi)[0, 1]
    assert 0.3 <= r <= 0.75


def test_rendered_qrs_width_follows_its_parameter():
    beats = pd.DataFrame([{**NORMAL_BEAT, "qrs_duration_ms": q} for q in (80.0, 100.0, 130.0, 160.0)])
    tpl = build_templates(beats, 1000.0)
    magnitude = np.linalg.norm(tpl.vcg, axis=1)
    near_r = slice(tpl.pre - 150, tpl.pre + 150)
    widths = [(m[near_r] > 0.1 * m[near_r].max()).sum() for m in magnitude]
    assert np.all(np.diff(widths) > 0)


@pytest.mark.parametrize("tier", [24.0, 12.0, 6.0])
def test_measured_snr_matches_the_requested_tier(tier):
    cohort = simulate_cohort("ukb", n=24, seed=3, snr_db=tier)
    batch = next(cohort.iter_batches())
    eight = [STANDARD_LEADS.index(n) for n in ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")]
    pp = qrs_peak_to_peak(batch.clean_eight, np.stack([np.pad(p, (0, 40 - len(p)), constant_values=10**9)
                                                       for p in batch.r_peaks]),
                          QRS_ONSET_RAD * MS_PER_RAD * cohort.ecgs["qrs_duration_ms"].to_numpy() / QRS_REF_MS,
                          cohort.ecgs["qrs_duration_ms"].to_numpy(), cohort.fs)
    snr = measured_snr_db(batch.clean_eight, batch.signal[:, eight], pp)
    assert np.all(np.abs(snr - tier) < 1.0), snr.round(2)


def test_oracle_holds_the_waveform_parameters(hospital_cohort):
    oracle = hospital_cohort.oracle
    assert list(oracle.columns[2:]) == list(ORACLE_COLUMNS)
    assert len(oracle) == len(hospital_cohort.ecgs)
    assert oracle[list(ORACLE_COLUMNS)].drop(columns=["pr_ms", "p_duration_ms"]).notna().all().all()
