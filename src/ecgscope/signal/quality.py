"""Signal quality metrics for one record (leads x samples, mV): what ingest stores and what it rejects."""

from __future__ import annotations

import functools

import numpy as np
from scipy.signal import butter

from ecgscope.signal.zerophase import sosfiltfilt


def flat_leads(signal: np.ndarray, leads: tuple[str, ...], tolerance_mv: float = 1e-4) -> list[str]:
    """Leads whose peak-to-peak stays within ``tolerance_mv``: disconnected or missing electrodes."""
    return [lead for lead, row in zip(leads, signal, strict=True) if np.ptp(row) <= tolerance_mv]


def saturated_fraction(signal: np.ndarray, run: int = 10) -> float:
    """Fraction of samples sitting in runs of ``run`` or more at a lead's own extreme (amplifier clipping)."""
    signal = np.asarray(signal)
    n_leads, n = signal.shape
    # one row per (lead, extreme), padded with zeros so that every run has a start and an end in its own row
    at = np.zeros((2 * n_leads, n + 2), dtype=np.int8)
    at[:n_leads, 1:-1] = signal == signal.max(axis=1, keepdims=True)
    at[n_leads:, 1:-1] = signal == signal.min(axis=1, keepdims=True)
    edges = np.diff(at, axis=1)
    starts, ends = np.nonzero(edges == 1)[1], np.nonzero(edges == -1)[1]  # row by row, so they pair up
    lengths = ends - starts
    return float(lengths[lengths >= run].sum() / signal.size)


@functools.lru_cache(maxsize=16)
def _wander_filter(fs: float) -> np.ndarray:
    """The 0.5 Hz low-pass that isolates baseline wander (designing it costs more than filtering a record)."""
    return butter(2, 0.5, btype="low", fs=fs, output="sos")


def noise_levels(signal: np.ndarray, fs: float) -> dict[str, float]:
    """High-frequency noise (SD of first differences / sqrt 2) and baseline wander (SD below 0.5 Hz), mV."""
    hf = float(np.median(np.diff(signal, axis=1).std(axis=1) / np.sqrt(2)))
    sos = _wander_filter(float(fs))
    padlen = min(signal.shape[1] - 1, 3 * fs)
    wander = float(np.median(sosfiltfilt(sos, signal, axis=1, padlen=int(padlen)).std(axis=1)))
    return {"hf_noise_mv": hf, "baseline_wander_mv": wander}


def quality_metrics(signal: np.ndarray, fs: float) -> dict[str, float]:
    """All metrics ingest stores in the manifest."""
    return {"max_abs_mv": float(np.abs(signal).max()), "saturated_fraction": saturated_fraction(signal),
            **noise_levels(signal, fs)}


def beat_snr_db(signal: np.ndarray, fs: float, found: tuple | None = None) -> np.ndarray | None:
    """Per lead of a standard-order record (mV), the signal-to-noise ratio estimated from its beats, in dB by
    the MIT-BIH noise-stress rule the simulator uses: signal power (median-beat QRS peak-to-peak)^2 / 8, noise
    power the median over beats of each beat's mean squared departure from the median beat (0.5-40 Hz, so
    baseline wander and mains are left to the model's filters and an ectopic beat does not decide it).
    None when fewer than three beats are found. ``found``: ``leadcheck.beat_centres`` of the record, when the
    caller has it already."""
    from ecgscope.signal.leadcheck import beat_centres

    x, centres, before, after = found if found is not None else beat_centres(np.asarray(signal, np.float64), fs)
    if len(centres) < 3:
        return None
    beats = np.stack([x[:, c - before:c + after] for c in centres])  # (beats, leads, samples)
    template = np.median(beats, axis=0)
    qrs = template[:, before - int(0.06 * fs):before + int(0.06 * fs)]
    signal_power = np.ptp(qrs, axis=1) ** 2 / 8
    noise_power = np.median(((beats - template) ** 2).mean(axis=2), axis=0)
    return 10 * np.log10(np.maximum(signal_power, 1e-12) / np.maximum(noise_power, 1e-12))


def pacing_spikes(signal: np.ndarray, fs: float, min_mv: float = 1.0, min_leads: int = 4,
                  noise_multiple: float = 16.0) -> int | None:
    """How many pacemaker spikes a record shows: moments (>= 200 ms apart) at which at least ``min_leads``
    leads jump away from their own 8 ms running median and back (a spike lasts 0.5-2 ms; no QRS is that
    narrow) by more than ``min_mv`` and more than ``noise_multiple`` times that lead's own sample-to-sample
    noise (robust SD of the departures), so that muscle noise, which also departs from a running median, does
    not count (the simulator's noise at 0 dB SNR, with its cross-lead bursts, still gives 1 false alarm in
    100 at these defaults; ``benchmarks/ood_benchmark.py``). None below 250 Hz, where a spike is not resolved
    and a tall R wave would look like one."""
    from scipy.ndimage import median_filter

    if fs < 250:
        return None
    width = max(3, int(round(0.008 * fs)) | 1)
    x = np.asarray(signal, dtype=np.float64)
    departure = np.abs(x - median_filter(x, size=(1, width), mode="nearest"))
    noise_sd = 1.4826 * np.median(departure, axis=1, keepdims=True)
    spikes = (departure > min_mv) & (departure > noise_multiple * noise_sd)
    hits = np.flatnonzero(spikes.sum(axis=0) >= min_leads)
    if not hits.size:
        return 0
    return int(1 + np.count_nonzero(np.diff(hits) > int(0.2 * fs)))
