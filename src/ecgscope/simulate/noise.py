"""Recording noise at a requested SNR, set with the MIT-BIH noise stress test rule.

Signal power is (mean QRS peak-to-peak amplitude)^2 / 8, measured per lead on the clean signal; noise
power is the variance of the added noise in that lead; SNR = 10 log10(S / N) (Moody et al. 1984).
Four kinds are mixed: baseline wander (< 0.5 Hz), powerline with its second harmonic, bursty broadband
EMG, and electrode motion (low-frequency random walks in bursts). Unlike the MIT-BIH records, the noise is
synthetic: it has the right spectra and burstiness, not the exact texture of recorded artefacts.
"""

from __future__ import annotations

import numpy as np


def qrs_peak_to_peak(clean: np.ndarray, positions: np.ndarray, qrs_onset_ms: np.ndarray,
                     qrs_duration_ms: np.ndarray, fs: float) -> np.ndarray:
    """Mean QRS peak-to-peak amplitude per record and lead (B, leads) over the beats inside the record."""
    b, n_leads, n = clean.shape
    start = np.round((qrs_onset_ms - 10.0) / 1000 * fs).astype(int)  # relative to R, negative
    width = np.round((qrs_duration_ms + 20.0) / 1000 * fs).astype(int)
    span = np.arange(int(width.max()))
    idx = positions[:, :, None] + start[:, None, None] + span[None, None, :]  # (B, beats, W)
    inside = (positions[:, :, None] + start[:, None, None] >= 0) & (idx[..., -1:] < n)
    in_window = span[None, None, :] < width[:, None, None]
    flat_idx = np.clip(idx, 0, n - 1).reshape(b, 1, -1)
    windows = np.take_along_axis(clean, np.broadcast_to(flat_idx, (b, n_leads, flat_idx.shape[-1])), 2)
    windows = windows.reshape(b, n_leads, positions.shape[1], span.size)
    mask = in_window[:, None, :, :]
    hi = np.where(mask, windows, -np.inf).max(-1)
    lo = np.where(mask, windows, np.inf).min(-1)
    pp = hi - lo  # (B, leads, beats)
    valid = inside[:, None, :, 0]
    return (np.where(valid, pp, 0.0).sum(-1) / np.maximum(valid.sum(-1), 1))


def template_qrs_peak_to_peak(template: np.ndarray, pre: int, qrs_onset_ms: np.ndarray,
                              qrs_duration_ms: np.ndarray, fs: float) -> np.ndarray:
    """QRS peak-to-peak per record and lead (B, leads) of one beat template (R peak at index ``pre``)."""
    t_ms = (np.arange(template.shape[-1]) - pre) / fs * 1000.0
    inside = (t_ms[None, :] >= qrs_onset_ms[:, None] - 10) & (t_ms[None, :] <= qrs_onset_ms[:, None]
                                                                + qrs_duration_ms[:, None] + 10)
    mask = inside[:, None, :]
    return np.where(mask, template, -np.inf).max(-1) - np.where(mask, template, np.inf).min(-1)


def _rough_std(x: np.ndarray) -> np.ndarray:
    """Per-row standard deviation from every 7th sample: the final SNR scaling is exact anyway."""
    return np.maximum(x[..., ::7].std(-1, keepdims=True), 1e-12)


def _upsample(coarse: np.ndarray, factor: int, n: int) -> np.ndarray:
    """Linear interpolation of (..., m) by an integer factor, cut to n samples."""
    w = (np.arange(factor, dtype=np.float32) / factor)
    fine = np.diff(coarse, axis=-1)[..., None] * w
    fine += coarse[..., :-1, None]
    return fine.reshape(*coarse.shape[:-1], -1)[..., :n]


def _bursts(b: int, n: int, fs: float, rng: np.random.Generator, floor: float) -> np.ndarray:
    """Smooth random envelopes (B, 1, n): a floor plus up to three Gaussian bursts."""
    t = (np.arange(n) / fs).astype(np.float32)
    env = np.full((b, n), floor, dtype=np.float32)
    for _ in range(3):
        on = rng.random(b) < 0.7
        centre = rng.uniform(0, n / fs, b).astype(np.float32)[:, None]
        width = rng.uniform(0.2, 1.2, b).astype(np.float32)[:, None]
        height = (on * rng.uniform(0.5, 2.5, b)).astype(np.float32)[:, None]
        env += height * np.exp(-0.5 * ((t - centre) / width) ** 2)
    return env[:, None, :]


def make_noise(b: int, n_leads: int, n: int, fs: float, mains_hz: float,
               mix: tuple[float, float, float, float], rng: np.random.Generator) -> np.ndarray:
    """Unscaled noise (B, leads, n), float32: the four kinds at about unit variance, randomly weighted."""
    f32 = np.float32
    weights = np.asarray(mix)[None, :] * rng.uniform(0.3, 1.0, (b, 4))
    weights = np.sqrt(weights / weights.sum(1, keepdims=True)).astype(f32)[:, :, None, None]
    t = (np.arange(n) / fs).astype(f32)
    # Slow kinds (baseline wander, electrode motion) live on a coarse grid of about 50 Hz.
    factor = max(int(fs // 50), 1)
    m = n // factor + 2
    tc = (np.arange(m) * factor / fs).astype(f32)
    freq = rng.uniform(0.05, 0.45, (b, 3, 1)).astype(f32)
    src = np.sin(2 * np.pi * freq * tc + rng.uniform(0, 2 * np.pi, (b, 3, 1)).astype(f32))
    wander = np.einsum("blk,bkt->blt", rng.normal(0, 1, (b, n_leads, 3)).astype(f32), src)
    walk = np.cumsum(rng.standard_normal((b, n_leads, m), dtype=f32), axis=-1)
    walk -= walk[..., -1:] * np.linspace(0.0, 1.0, m, dtype=f32)
    walk *= _bursts(b, m, fs / factor, rng, 0.1)
    slow = weights[:, 0] * wander / _rough_std(wander) + weights[:, 3] * walk / _rough_std(walk)
    out = _upsample(slow, factor, n)
    # EMG: white (broadband) in bursts. A triangular amplitude distribution (sum of two uniforms)
    # is spectrally the same as Gaussian white noise and five times cheaper to draw.
    emg = rng.random((b, n_leads, n), dtype=f32)
    emg -= rng.random((b, n_leads, n), dtype=f32)
    emg *= _bursts(b, n, fs, rng, 0.3)
    out += (weights[:, 2] / _rough_std(emg)) * emg
    # Powerline and its harmonic where below Nyquist, with a per-lead phase, as one matrix product:
    # sin(kwt + k phi) = sin(kwt) cos(k phi) + cos(kwt) sin(k phi).
    phase = rng.uniform(0, 2 * np.pi, (b, n_leads, 1))
    basis, coef = [], []
    for harmonic, amplitude in ((1, 1.0), (2, 0.3)):
        if harmonic * mains_hz < fs / 2:
            w = 2 * np.pi * harmonic * mains_hz * t
            basis += [np.sin(w), np.cos(w)]
            gain = weights[:, 1] * amplitude * np.sqrt(2)  # unit variance for amplitude 1
            coef += [gain * np.cos(harmonic * phase), gain * np.sin(harmonic * phase)]
    if basis:
        coef_mat = np.concatenate(coef, axis=-1).astype(f32).reshape(b * n_leads, -1)
        out += (coef_mat @ np.stack(basis).astype(f32)).reshape(b, n_leads, n)
    return out

def scale_to_snr(noise: np.ndarray, peak_to_peak: np.ndarray, snr_db: np.ndarray) -> np.ndarray:
    """Scale noise (B, leads, n) so that each lead's SNR equals ``snr_db`` (B,) under the MIT-BIH rule."""
    signal_power = peak_to_peak**2 / 8.0
    target = signal_power / 10 ** (np.asarray(snr_db, dtype=float)[:, None] / 10.0)
    current = noise.var(-1)
    return noise * np.sqrt(target / np.maximum(current, 1e-20)).astype(noise.dtype)[..., None]


def measured_snr_db(clean: np.ndarray, noisy: np.ndarray, peak_to_peak: np.ndarray) -> np.ndarray:
    """SNR in dB (B, leads) of ``noisy`` against ``clean`` under the MIT-BIH rule."""
    return 10 * np.log10((peak_to_peak**2 / 8.0) / (noisy - clean).var(-1))
