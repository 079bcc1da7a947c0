"""From the cardiac state to the ECG: heart-vector beat templates, the RR process, and rendering.

The heart vector (X left, Y feet, Z back; mV) is a sum of Gaussians per axis (Sameni et al. 2007,
REFERENCE.md section 4). Each subject's template is stretched to its PR, P duration, QRS duration
and QT, its QRS is rotated in the frontal and horizontal planes, and extra Gaussians add an R' in V1,
a terminal negative P in V1 and right-precordial T inversion. Beats are placed on an RR series with
heart-rate variability (LF 0.1 Hz, HF 0.25 Hz, LF/HF 0.5; McSharry et al. 2003) or an irregular AF
series, summed, and projected to I, II, V1-V6 with the Dower matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecgscope.leads import DOWER

MS_PER_RAD = 1000.0 / (2 * np.pi)  # phase -> ms at 60 bpm
QRS_REF_MS, P_DUR_REF_MS, QT_REF_MS = 92.0, 92.0, 370.0
QRS_ONSET_RAD, P_ONSET_RAD = -0.28, -1.24
#: The published parameters give a 0.06 mV P wave in II; clinical P waves are ~0.1-0.15 mV.
P_GAIN = 2.2

# (axis, theta rad, alpha mV, b rad) of the normal beat, REFERENCE.md section 4.
_X = ([-1.09, -0.83, -0.19, -0.07, 0, 0.06, 0.22, 1.2, 1.42, 1.68, 2.9],
      [0.03, 0.08, -0.13, 0.85, 1.11, 0.75, 0.06, 0.1, 0.17, 0.39, 0.03],
      [0.0906, 0.1057, 0.0453, 0.0378, 0.0332, 0.0302, 0.0378, 0.604, 0.302, 0.1812, 0.5])
_Y = ([-1.1, -0.9, -0.76, -0.11, -0.01, 0.065, 0.8, 1.58, 2.9],
      [0.035, 0.015, -0.019, 0.32, 0.51, -0.32, 0.04, 0.08, 0.014],
      [0.07, 0.07, 0.04, 0.055, 0.037, 0.0604, 0.45, 0.3, 0.5])
_Z = ([-1.1, -0.93, -0.7, -0.4, -0.15, 0.095, 1.05, 1.25, 1.55, 2.8],
      [-0.03, -0.14, -0.035, 0.045, -0.4, 0.46, -0.12, -0.2, -0.35, -0.035],
      [0.03, 0.12, 0.04, 0.4, 0.045, 0.05, 0.8, 0.4, 0.2, 0.4])


def _gaussian_table() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    axis, theta, alpha, width = [], [], [], []
    for k, (th, al, bw) in enumerate((_X, _Y, _Z)):
        axis += [k] * len(th)
        theta += th
        alpha += al
        width += bw
    theta = np.asarray(theta)
    group = np.where(theta < -0.3, 0, np.where(theta <= 0.3, 1, 2))  # 0 = P, 1 = QRS, 2 = T
    return np.asarray(axis), theta, np.asarray(alpha), np.asarray(width), group


AXIS, THETA, ALPHA, WIDTH, GROUP = _gaussian_table()

#: Columns of the oracle table: the noise-free parameters that shape each ECG's waveform.
ORACLE_COLUMNS = (
    "hr_bpm", "rr_variability", "af_rhythm", "pr_ms", "p_duration_ms", "p_amplitude_scale", "ptf_v1_mv",
    "qrs_duration_ms", "frontal_rotation_deg", "horizontal_rotation_deg", "qrs_amplitude_scale",
    "rprime_v1_mv", "t_amplitude_scale", "t_right_precordial_mv", "qtc_ms", "f_wave_mv",
)


def draw_ecg_parameters(state: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Draw each ECG's waveform parameters from its subject's state (one row per row of ``state``).

    Disease acts weakly and noisily (REFERENCE.md section 4): each sign's coupling to the state is of the
    size reported in the clinic, and biological variability of the same order hides it.
    """
    n = len(state)
    female = (state["sex"] == "F").to_numpy()
    age_z = (state["age"].to_numpy() - 60.0) / 12.0
    rvedvi, rvef = state["rvedvi"].to_numpy(), state["rvef"].to_numpy()
    lvmi, lavi = state["lvmi"].to_numpy(), state["lavi"].to_numpy()
    diastolic = state["diastolic_score"].to_numpy()
    pressure = state["pulmonary_pressure"].to_numpy()
    lvef = state["lvef"].to_numpy()
    af = state["af"].to_numpy().astype(bool)
    tr_velocity = state["tr_velocity"].to_numpy()

    rv_load = 0.75 * pressure + 0.4 * np.clip((rvedvi - 95.0) / 55.0, 0, 1.5)
    lvh = np.clip((lvmi - 75.0) / 40.0, 0, 2)
    # LV systolic dysfunction: conduction delay and lower voltage, the signs AI-ECG reads a low LVEF from
    lv_failure = np.clip(55.0 - lvef, 0, None)

    hr = 64.0 + 2.5 * np.clip(diastolic, -1, 4) + 0.15 * np.clip(55 - lvef, 0, None) + 4.0 * pressure
    hr = np.clip(hr + 6.0 * af + rng.normal(0, 9.0, n), 42, 135)
    rbbb = rng.random(n) < 1 / (1 + np.exp(-(-4.0 + 0.035 * (rvedvi - 85.0) + 1.0 * pressure)))
    qrs = (86.0 + 5.0 * ~female + 0.45 * (rvedvi - 82.0) + 0.06 * (lvmi - 65.0) + 0.35 * lv_failure
           + 26.0 * rbbb + rng.normal(0, 10.0, n))
    frontal = rng.normal(6.0, 26.0, n) + 115.0 * rv_load - 10.0 * lvh
    horizontal = rng.normal(0.0, 24.0, n) - 70.0 * rv_load
    qrs_amp = (np.exp(rng.normal(0, 0.17, n)) * (1 + 0.006 * (lvmi - 65.0)) * np.where(female, 0.9, 1.0)
               * np.sqrt(1.9 / state["bsa"].to_numpy()) * (1 - 0.006 * np.clip(lv_failure, 0, 40)))
    rprime = np.where(rbbb, rng.uniform(0.25, 0.8, n), np.clip(rng.normal(0.0, 0.03, n), 0, None))
    t_rv = 0.15 * np.clip((50.0 - rvef) / 15.0, 0, 2) + rng.normal(0, 0.12, n)
    t_amp = np.exp(rng.normal(0, 0.18, n)) * (1 - 0.2 * np.clip(lvh - 0.5, 0, 1))
    p_dur = 96.0 + 0.9 * (lavi - 28.0) + rng.normal(0, 8.0, n)
    p_amp = np.exp(rng.normal(0, 0.18, n)) * (1 + 0.8 * np.clip(tr_velocity - 2.6, 0, 2))
    ptf = 0.02 + 0.006 * np.clip(lavi - 28.0, 0, None) + np.abs(rng.normal(0, 0.02, n))
    pr = 155.0 + 6.0 * age_z + 0.3 * (p_dur - 96.0) + rng.normal(0, 18.0, n)
    qtc = 410.0 + 12.0 * female + 0.3 * (qrs - 90.0) + rng.normal(0, 16.0, n)

    return pd.DataFrame({
        "hr_bpm": hr,
        "rr_variability": np.where(af, rng.uniform(0.12, 0.22, n), rng.uniform(0.015, 0.06, n)),
        "af_rhythm": af,
        "pr_ms": np.where(af, np.nan, np.clip(pr, 100, 320)),
        "p_duration_ms": np.where(af, np.nan, np.clip(p_dur, 60, 180)),
        "p_amplitude_scale": np.where(af, 0.0, p_amp),
        "ptf_v1_mv": np.where(af, 0.0, ptf),
        "qrs_duration_ms": np.clip(qrs, 66, 190),
        "frontal_rotation_deg": frontal,
        "horizontal_rotation_deg": horizontal,
        "qrs_amplitude_scale": qrs_amp,
        "rprime_v1_mv": rprime,
        "t_amplitude_scale": t_amp,
        "t_right_precordial_mv": t_rv,
        "qtc_ms": np.clip(qtc, 340, 560),
        "f_wave_mv": np.where(af, rng.uniform(0.03, 0.1, n), 0.0),
    })


def jitter_parameters(params: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Day-to-day variation of the same person's ECG (rate, amplitude, electrode placement)."""
    out = params.copy()
    n = len(out)
    out["hr_bpm"] = np.clip(out["hr_bpm"] + rng.normal(0, 5.0, n), 42, 140)
    out["qrs_amplitude_scale"] *= np.exp(rng.normal(0, 0.06, n))
    out["frontal_rotation_deg"] += rng.normal(0, 4.0, n)
    out["horizontal_rotation_deg"] += rng.normal(0, 6.0, n)
    return out


@dataclass
class Templates:
    """One beat per subject around its R peak: heart vector (B, 3, L) at ``fs``; R at index ``pre``."""

    vcg: np.ndarray
    pre: int
    qrs_onset_ms: np.ndarray
    qrs_duration_ms: np.ndarray


def _rotation(frontal_deg: np.ndarray, horizontal_deg: np.ndarray) -> np.ndarray:
    """(B, 3, 3) rotations: horizontal (X toward -Z is anterior), then frontal (X toward Y is rightward-down).

    This order reproduces the reference check: 90 deg frontal and -40 deg horizontal give an axis of ~107 deg.
    """
    f, h = np.deg2rad(frontal_deg), np.deg2rad(horizontal_deg)
    cf, sf, ch, sh = np.cos(f), np.sin(f), np.cos(h), np.sin(h)
    zero, one = np.zeros_like(f), np.ones_like(f)
    rz = np.stack([np.stack([cf, -sf, zero], -1), np.stack([sf, cf, zero], -1), np.stack([zero, zero, one], -1)], -2)
    ry = np.stack([np.stack([ch, zero, -sh], -1), np.stack([zero, one, zero], -1), np.stack([sh, zero, ch], -1)], -2)
    return rz @ ry


def build_templates(params: pd.DataFrame, fs: float) -> Templates:
    """Render each row's beat template (heart vector around the R peak) at sampling rate ``fs``."""
    b = len(params)
    col = {c: params[c].to_numpy(dtype=float) for c in params.columns if c in ORACLE_COLUMNS}
    rr_s = 60.0 / col["hr_bpm"]
    qrs_scale = col["qrs_duration_ms"] / QRS_REF_MS
    p_scale = np.nan_to_num(col["p_duration_ms"], nan=P_DUR_REF_MS) / P_DUR_REF_MS
    qt_scale = col["qtc_ms"] * np.sqrt(rr_s) / QT_REF_MS
    pr = np.nan_to_num(col["pr_ms"], nan=160.0)
    q_on = QRS_ONSET_RAD * MS_PER_RAD * qrs_scale  # ms, negative

    # Centres and widths (ms) of the base Gaussians, per subject: shape (B, K).
    th, wd = THETA[None, :], WIDTH[None, :]
    p_on = q_on - pr
    centre = np.where(GROUP == 0, p_on[:, None] + (th - P_ONSET_RAD) * MS_PER_RAD * p_scale[:, None],
                      np.where(GROUP == 1, th * MS_PER_RAD * qrs_scale[:, None],
                               q_on[:, None] + (th - QRS_ONSET_RAD) * MS_PER_RAD * qt_scale[:, None]))
    width = wd * MS_PER_RAD * np.where(GROUP == 0, p_scale[:, None],
                                       np.where(GROUP == 1, qrs_scale[:, None], qt_scale[:, None]))
    gain = np.where(GROUP == 0, P_GAIN * col["p_amplitude_scale"][:, None],
                    np.where(GROUP == 1, col["qrs_amplitude_scale"][:, None], col["t_amplitude_scale"][:, None]))
    amp = np.zeros((b, len(THETA), 3))
    amp[:, np.arange(len(THETA)), AXIS] = ALPHA[None, :] * gain

    # Extra Gaussians: terminal negative P in V1 (posterior, late P), R' in V1 (rightward-anterior, end
    # of QRS), right-precordial T inversion (posterior T force).
    p_late = p_on + (-0.72 - P_ONSET_RAD) * MS_PER_RAD * p_scale
    r_prime_at = q_on + col["qrs_duration_ms"] - 18.0
    t_peak = q_on + (1.5 - QRS_ONSET_RAD) * MS_PER_RAD * qt_scale
    rprime_dir = np.array([-0.45, 0.05, -0.9]) / (DOWER[2] @ np.array([-0.45, 0.05, -0.9]))
    x_centre = np.stack([p_late, r_prime_at, t_peak], 1)
    x_width = np.stack([0.06 * MS_PER_RAD * p_scale, np.full(b, 14.0), 0.25 * MS_PER_RAD * qt_scale], 1)
    x_amp = np.zeros((b, 3, 3))
    x_amp[:, 0, 2] = col["ptf_v1_mv"] / -DOWER[2, 2]
    x_amp[:, 1, :] = col["rprime_v1_mv"][:, None] * rprime_dir[None, :]
    x_amp[:, 2, 2] = col["t_right_precordial_mv"] / -DOWER[3, 2]

    pre, post = int(round(0.55 * fs)), int(round(0.85 * fs))
    t_ms = (np.arange(-pre, post) / fs * 1000.0)[None, None, :]
    shape = np.exp(-0.5 * ((t_ms - centre[:, :, None]) / width[:, :, None]).astype(np.float32) ** 2)  # (B, K, L)
    is_qrs = GROUP == 1
    qrs_part = np.einsum("bkl,bkd->bdl", shape[:, is_qrs], amp[:, is_qrs])
    t_part = np.einsum("bkl,bkd->bdl", shape[:, GROUP == 2], amp[:, GROUP == 2])
    p_part = np.einsum("bkl,bkd->bdl", shape[:, GROUP == 0], amp[:, GROUP == 0])
    x_shape = np.exp(-0.5 * ((t_ms - x_centre[:, :, None]) / x_width[:, :, None]) ** 2)
    extra = np.einsum("bkl,bkd->bdl", x_shape, x_amp)

    rot_qrs = _rotation(col["frontal_rotation_deg"], col["horizontal_rotation_deg"])
    rot_t = _rotation(0.5 * col["frontal_rotation_deg"], np.zeros(b))
    vcg = rot_qrs @ qrs_part + rot_t @ t_part + p_part + extra
    # Taper the window edges so that a beat's far tail never steps at the next R peak.
    taper = np.ones(pre + post)
    ramp = int(0.08 * fs)
    taper[:ramp] = np.sin(np.linspace(0, np.pi / 2, ramp)) ** 2
    taper[-ramp:] = taper[:ramp][::-1]
    return Templates((vcg * taper).astype(np.float32), pre, q_on, col["qrs_duration_ms"])


def beat_positions(params: pd.DataFrame, fs: float, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """R-peak sample positions (B, max_beats), padded with a large sentinel; beats start before 0."""
    b = len(params)
    rr = 60.0 / params["hr_bpm"].to_numpy(dtype=float)
    var = params["rr_variability"].to_numpy(dtype=float)
    af = params["af_rhythm"].to_numpy().astype(bool)
    duration = n_samples / fs
    max_beats = int(np.ceil((duration + 2.0) / 0.3)) + 2
    # Sinus: RR modulated by a sum of LF (0.1 Hz) and HF (0.25 Hz) sinusoids, LF/HF power 0.5.
    freqs = np.stack([rng.normal(0.1, 0.01, b), rng.normal(0.1, 0.01, b),
                      rng.normal(0.25, 0.01, b), rng.normal(0.25, 0.01, b)], 1)
    power = np.array([0.5, 0.5, 1.0, 1.0]) / 3.0
    phases = rng.uniform(0, 2 * np.pi, (b, 4))
    af_steps = np.exp(rng.normal(0, 1.0, (b, max_beats)) * var[:, None])
    t = -rng.uniform(0, 1, b) * rr
    times = np.empty((b, max_beats))
    for k in range(max_beats):
        times[:, k] = t
        mod = (np.sqrt(2 * power)[None, :] * np.sin(2 * np.pi * freqs * t[:, None] + phases)).sum(1)
        step = np.where(af, rr * af_steps[:, k] / np.exp(0.5 * var**2), rr * (1.0 + var * mod))
        t = t + np.maximum(step, 0.3)
    pos = np.round(times * fs)
    sentinel = n_samples + 10 * fs
    pos[times > duration + 1.2] = sentinel
    return pos.astype(np.int64)


def render(templates: Templates, positions: np.ndarray, n_samples: int) -> np.ndarray:
    """Sum beat templates at R positions into heart-vector signals (B, 3, n_samples)."""
    b, _, length = templates.vcg.shape
    samples = np.arange(n_samples)
    big = np.int64(1) << 40
    offs = (np.arange(b, dtype=np.int64) * big)[:, None]
    flat = (positions + offs).ravel()
    prev = np.searchsorted(flat, (samples[None, :] + offs).ravel(), side="right").reshape(b, n_samples) - 1
    prev -= (np.arange(b) * positions.shape[1])[:, None]
    prev = np.clip(prev, 0, positions.shape[1] - 2)
    out = np.zeros((b, 3, n_samples), dtype=np.float32)
    for beat in (prev, prev + 1):
        idx = samples[None, :] - np.take_along_axis(positions, beat, 1) + templates.pre
        valid = (idx >= 0) & (idx < length)
        vals = np.take_along_axis(templates.vcg, np.clip(idx, 0, length - 1)[:, None, :], 2)
        out += vals * valid[:, None, :]
    return out


def atrial_fibrillation_waves(params: pd.DataFrame, fs: float, n_samples: int,
                              rng: np.random.Generator) -> np.ndarray:
    """Fibrillatory f-waves (4-8 Hz) as a heart-vector signal (B, 3, n_samples), zero in sinus rhythm."""
    b = len(params)
    amp = params["f_wave_mv"].to_numpy(dtype=float)
    out = np.zeros((b, 3, n_samples), dtype=np.float32)
    draws = rng.uniform(0, 1, (b, 4))  # drawn for every row so that sinus rows do not shift the stream
    if not (amp > 0).any():
        return out
    t = np.arange(n_samples) / fs
    rows = np.flatnonzero(amp > 0)
    f0, f_drift, ph_drift, ph = (4.0 + 4.0 * draws[rows, 0], 0.05 + 0.25 * draws[rows, 1],
                                 2 * np.pi * draws[rows, 2], 2 * np.pi * draws[rows, 3])
    drift = 0.4 * np.sin(2 * np.pi * f_drift[:, None] * t + ph_drift[:, None])
    wave = np.sin(2 * np.pi * f0[:, None] * t + drift * 2 * np.pi + ph[:, None])
    direction = np.array([-0.2, 0.5, -0.85])
    out[rows] = (amp[rows, None] * wave)[:, None, :] * direction[None, :, None]
    return out


def vcg_to_eight(vcg: np.ndarray) -> np.ndarray:
    """Project (B, 3, T) heart vector to the eight independent leads I, II, V1..V6 (B, 8, T)."""
    return np.einsum("lk,bkt->blt", DOWER.astype(vcg.dtype), vcg)
