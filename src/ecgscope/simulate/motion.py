"""Echo motion ground truth: one cardiac cycle of tissue Doppler velocity and annular displacement.

The mitral annular velocity (cm/s, toward the apex positive) has a systolic s' wave, an early diastolic
e' wave after the end of T, and a late diastolic a' wave after atrial contraction (absent in atrial
fibrillation), timed to the subject's RR, QT and PR. Displacement (mm) is the running integral of the
velocity with its linear drift removed, so the annulus returns to its start at the end of the cycle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Samples per cardiac cycle in the motion curves (the time axis is RR / MOTION_SAMPLES apart).
MOTION_SAMPLES = 200


def motion_curves(state: pd.DataFrame, params: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Velocity (cm/s) and displacement (mm) curves (N, MOTION_SAMPLES) from R peak to R peak, and RR (ms)."""
    rr = 60.0 / params["hr_bpm"].to_numpy(dtype=float)
    qt = params["qtc_ms"].to_numpy(dtype=float) / 1000 * np.sqrt(rr)
    pr = np.nan_to_num(params["pr_ms"].to_numpy(dtype=float), nan=160.0) / 1000
    s_p = state["s_prime"].to_numpy(dtype=float)
    e_p = (state["septal_e_prime"].to_numpy(dtype=float) + state["lateral_e_prime"].to_numpy(dtype=float)) / 2
    a_p = np.nan_to_num(state["a_prime"].to_numpy(dtype=float), nan=0.0)
    frac = np.arange(MOTION_SAMPLES) / MOTION_SAMPLES
    t = frac[None, :] * rr[:, None]

    def wave(peak, centre, width):
        return peak[:, None] * np.exp(-0.5 * ((t - centre[:, None]) / width[:, None]) ** 2)

    ivc = wave(0.35 * s_p, np.full_like(rr, 0.04), np.full_like(rr, 0.012))
    systole = wave(s_p, 0.35 * qt, 0.14 * qt)
    early = wave(-e_p, np.minimum(qt + 0.07, 0.8 * rr), np.full_like(rr, 0.045))
    late = wave(-a_p, rr - pr + 0.09, np.full_like(rr, 0.035))
    velocity = ivc + systole + early + late
    dt = rr / MOTION_SAMPLES
    disp = np.cumsum(velocity, axis=1) * dt[:, None] * 10.0  # cm/s * s = cm -> mm
    disp -= frac[None, :] * disp[:, -1:]
    return velocity.astype(np.float32), disp.astype(np.float32), rr * 1000.0
