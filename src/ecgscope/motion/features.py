"""Features of one cardiac cycle of mitral annular motion, measured or generated (REFERENCE.md section 5).

A cycle runs R peak to R peak, resampled to a fixed number of points; velocity in cm/s (toward the apex
positive), displacement in mm. Features: ``s_prime`` (peak systolic velocity), ``e_prime`` (early diastolic)
and ``a_prime`` (late diastolic, after atrial contraction; NaN when there is no distinct late wave, as in
atrial fibrillation) as positive speeds, ``e_over_a_prime``, ``displacement_mm`` (peak annular excursion),
and the times from the R peak to the s' and e' peaks in ms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.signal import find_peaks

FEATURES = ("s_prime", "e_prime", "a_prime", "e_over_a_prime", "displacement_mm", "time_to_s_ms", "time_to_e_ms")


def _one(velocity: np.ndarray, displacement: np.ndarray, rr_ms: float) -> dict[str, float]:
    n = len(velocity)
    # s' lies in the first half of the cycle (systole is shorter than diastole at resting rates)
    s_at = int(np.argmax(velocity[: n // 2]))
    # diastolic waves are negative; the earliest deep trough after systole is e', a later distinct one a'
    # the cycle is periodic: a few samples of the next one let a late a' peaking at the R wave be found
    diastole = -np.concatenate([velocity[s_at:], velocity[:3]])
    troughs, _ = find_peaks(diastole, prominence=0.5, height=0.5)
    troughs = troughs[troughs < n - s_at]
    if len(troughs) == 0:
        e_at, a_speed = s_at + int(np.argmax(diastole[: n - s_at])), np.nan  # this cycle only, not the wrap
    else:
        e_at = s_at + int(troughs[0])
        late = troughs[1:][troughs[1:] > 0.6 * (n - s_at)] if len(troughs) > 1 else []
        a_speed = float(diastole[late[np.argmax(diastole[late])]]) if len(late) else np.nan
    e_speed = float(-velocity[e_at])
    return {
        "s_prime": float(velocity[s_at]), "e_prime": e_speed, "a_prime": a_speed,
        "e_over_a_prime": e_speed / a_speed if a_speed and np.isfinite(a_speed) else np.nan,
        "displacement_mm": float(displacement.max() - displacement.min()),
        "time_to_s_ms": s_at / n * rr_ms, "time_to_e_ms": e_at / n * rr_ms,
    }


def motion_features(velocity: np.ndarray, displacement: np.ndarray, rr_ms: np.ndarray) -> pd.DataFrame:
    """One row of features per cycle from velocity (n, T) in cm/s, displacement (n, T) in mm, RR (n,) in ms."""
    velocity, displacement = np.atleast_2d(velocity), np.atleast_2d(displacement)
    rr_ms = np.broadcast_to(np.asarray(rr_ms, float), (len(velocity),))
    rows = [_one(v, d, r) for v, d, r in zip(velocity, displacement, rr_ms, strict=True)]
    return pd.DataFrame(rows, columns=list(FEATURES))


def curve_errors(true: np.ndarray, generated: np.ndarray) -> pd.DataFrame:
    """Per cycle: RMSE and Pearson correlation of a generated curve against the true one (same units)."""
    true, generated = np.atleast_2d(true).astype(float), np.atleast_2d(generated).astype(float)
    rmse = np.sqrt(((true - generated) ** 2).mean(1))
    tc, gc = true - true.mean(1, keepdims=True), generated - generated.mean(1, keepdims=True)
    corr = (tc * gc).sum(1) / np.sqrt((tc**2).sum(1) * (gc**2).sum(1) + 1e-12)
    return pd.DataFrame({"rmse": rmse, "correlation": corr})
