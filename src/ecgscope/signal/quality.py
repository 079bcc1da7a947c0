"""Signal quality metrics for one record (leads x samples, mV): what ingest stores and what it rejects."""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfiltfilt


def flat_leads(signal: np.ndarray, leads: tuple[str, ...], tolerance_mv: float = 1e-4) -> list[str]:
    """Leads whose peak-to-peak stays within ``tolerance_mv``: disconnected or missing electrodes."""
    return [lead for lead, row in zip(leads, signal, strict=True) if np.ptp(row) <= tolerance_mv]


def saturated_fraction(signal: np.ndarray, run: int = 10) -> float:
    """Fraction of samples sitting in runs of ``run`` or more at a lead's own extreme (amplifier clipping)."""
    hits = 0
    for row in signal:
        for extreme in (row.max(), row.min()):
            at = np.concatenate([[0], (row == extreme).astype(np.int8), [0]])
            edges = np.flatnonzero(np.diff(at))
            lengths = edges[1::2] - edges[::2]
            hits += lengths[lengths >= run].sum()
    return float(hits / signal.size)


def noise_levels(signal: np.ndarray, fs: float) -> dict[str, float]:
    """High-frequency noise (SD of first differences / sqrt 2) and baseline wander (SD below 0.5 Hz), mV."""
    hf = float(np.median(np.diff(signal, axis=1).std(axis=1) / np.sqrt(2)))
    sos = butter(2, 0.5, btype="low", fs=fs, output="sos")
    padlen = min(signal.shape[1] - 1, 3 * fs)
    wander = float(np.median(sosfiltfilt(sos, signal, axis=1, padlen=int(padlen)).std(axis=1)))
    return {"hf_noise_mv": hf, "baseline_wander_mv": wander}


def quality_metrics(signal: np.ndarray, fs: float) -> dict[str, float]:
    """All metrics ingest stores in the manifest."""
    return {"max_abs_mv": float(np.abs(signal).max()), "saturated_fraction": saturated_fraction(signal),
            **noise_levels(signal, fs)}
