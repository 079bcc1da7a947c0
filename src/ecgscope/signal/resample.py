"""Anti-aliased resampling between sampling rates."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly


def resample(x: np.ndarray, fs_in: float, fs_out: float, axis: int = -1) -> np.ndarray:
    """Resample ``x`` from ``fs_in`` to ``fs_out`` Hz along ``axis`` with a polyphase anti-aliasing filter."""
    if fs_in <= 0 or fs_out <= 0:
        raise ValueError(f"sampling rates must be positive, got {fs_in} -> {fs_out}")
    if fs_in == fs_out:
        return np.asarray(x)
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    out = resample_poly(np.asarray(x, dtype=np.float64), ratio.numerator, ratio.denominator, axis=axis)
    return out.astype(np.asarray(x).dtype if np.asarray(x).dtype.kind == "f" else np.float32)
