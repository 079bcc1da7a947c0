"""Simulate a whole cohort: subjects, their ECGs, imaging studies, outcomes and ground truth.

Tables are built eagerly (they are small); waveforms are rendered lazily in fixed, separately seeded
chunks, so a cohort of any size streams through bounded memory and the same seed gives the same bytes
whatever the caller's batch size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ecgscope.ecg import ECG
from ecgscope.leads import STANDARD_LEADS, twelve_from_eight
from ecgscope.signal.leadcheck import REVERSALS, reverse_limb_electrodes
from ecgscope.simulate import measurements, motion, outcomes, state, waveform
from ecgscope.simulate.noise import make_noise, scale_to_snr, template_qrs_peak_to_peak
from ecgscope.simulate.presets import Preset, get_preset

#: ECGs rendered per seeded chunk; part of the seed contract, so changing it changes the bytes.
CHUNK = 128
#: Digital resolution of stored signals: 1 uV per unit (limb leads I and II on a 2 uV grid so that
#: III, aVR, aVL and aVF derive from them exactly in integers).
UNITS_PER_MV = 1000


@dataclass
class WaveformBatch:
    """A chunk of rendered ECGs: ``digital`` (B, 12, T) int16 at 1 uV per unit, plus what made it."""

    ecg_ids: np.ndarray
    digital: np.ndarray
    #: Noise-free I, II, V1..V6 in mV (B, 8, T), float32.
    clean_eight: np.ndarray
    r_peaks: list[np.ndarray]
    #: Mean QRS peak-to-peak amplitude (mV) per record and independent lead, the SNR reference.
    qrs_peak_to_peak: np.ndarray

    @property
    def signal(self) -> np.ndarray:
        """Noisy recorded signal in mV, float32 (B, 12, T)."""
        return self.digital.astype(np.float32) / np.float32(UNITS_PER_MV)

    @property
    def clean(self) -> np.ndarray:
        """Noise-free 12-lead signal in mV, float32 (B, 12, T)."""
        return twelve_from_eight(self.clean_eight)


def quantize_eight(eight_mv: np.ndarray) -> np.ndarray:
    """Digitise (B, 8, T) I, II, V1..V6 in mV to int16 12-lead (B, 12, T) with exact limb-lead algebra."""
    b, _, n = eight_mv.shape
    out = np.empty((b, 12, n), dtype=np.int16)
    half = np.float32(UNITS_PER_MV / 2)
    limb = np.rint(np.clip(eight_mv[:, :2], -16.0, 16.0) * half).astype(np.int16)  # units of 2 uV
    lead_i, lead_ii = limb[:, 0], limb[:, 1]
    out[:, 0], out[:, 1] = 2 * lead_i, 2 * lead_ii
    out[:, 2] = 2 * (lead_ii - lead_i)
    out[:, 3] = -(lead_i + lead_ii)
    out[:, 4] = 2 * lead_i - lead_ii
    out[:, 5] = 2 * lead_ii - lead_i
    out[:, 6:] = np.rint(np.clip(eight_mv[:, 2:], -32.0, 32.0) * np.float32(UNITS_PER_MV))
    return out


@dataclass
class SimulatedCohort:
    """A simulated cohort: tables in memory, waveforms on demand (see :meth:`iter_batches`)."""

    preset: Preset
    seed: int
    fs: float
    n_samples: int
    #: One row per subject: patient_id, true cardiac state, outcomes, index date.
    patients: pd.DataFrame
    #: One row per ECG: ecg_id, patient_id, acquired_at, is_index, snr_db, and the oracle parameters.
    ecgs: pd.DataFrame
    #: One row per imaging study (MRI or echo, as measured), or None for outcome-only presets.
    imaging: pd.DataFrame | None
    #: Echo motion ground truth per subject: velocity (cm/s) and displacement (mm), (n, MOTION_SAMPLES).
    tdi_velocity: np.ndarray
    annular_displacement: np.ndarray
    motion_rr_ms: np.ndarray

    @property
    def oracle(self) -> pd.DataFrame:
        """The noise-free waveform parameters of every ECG, keyed by ecg_id."""
        return self.ecgs[["ecg_id", "patient_id", *waveform.ORACLE_COLUMNS]]

    @property
    def outcomes(self) -> pd.DataFrame:
        """Follow-up from the index ECG: years, event code (0 censored, 1 HF death, 2 other death)."""
        return self.patients[["patient_id", "index_date", "followup_years", "event", "hf_death", "death"]]

    def __len__(self) -> int:
        return len(self.ecgs)

    def iter_batches(self, start: int = 0, stop: int | None = None) -> Iterator[WaveformBatch]:
        """Render ECGs ``start:stop`` chunk by chunk (chunks of ``CHUNK``, each seeded on its own)."""
        stop = len(self.ecgs) if stop is None else min(stop, len(self.ecgs))
        first_chunk = start // CHUNK
        for chunk in range(first_chunk, (stop + CHUNK - 1) // CHUNK):
            lo, hi = chunk * CHUNK, min((chunk + 1) * CHUNK, len(self.ecgs))
            batch = self._render(lo, hi, np.random.default_rng([self.seed, 0xEC6, chunk]))
            a, b = max(start - lo, 0), min(stop, hi) - lo
            yield WaveformBatch(batch.ecg_ids[a:b], batch.digital[a:b], batch.clean_eight[a:b],
                                batch.r_peaks[a:b], batch.qrs_peak_to_peak[a:b])

    def _render(self, lo: int, hi: int, rng: np.random.Generator) -> WaveformBatch:
        rows = self.ecgs.iloc[lo:hi]
        params = rows[list(waveform.ORACLE_COLUMNS)].reset_index(drop=True)
        n = self.n_samples
        templates = waveform.build_templates(params, self.fs)
        positions = waveform.beat_positions(params, self.fs, n, rng)
        vcg = waveform.render(templates, positions, n)
        vcg += waveform.atrial_fibrillation_waves(params, self.fs, n, rng)
        clean = waveform.vcg_to_eight(vcg)
        pp = template_qrs_peak_to_peak(waveform.vcg_to_eight(templates.vcg), templates.pre,
                                       templates.qrs_onset_ms, templates.qrs_duration_ms, self.fs)
        noise = make_noise(len(rows), 8, n, self.fs, self.preset.mains_hz, self.preset.noise_mix, rng)
        noise = scale_to_snr(noise, pp, rows["snr_db"].to_numpy())
        noise += clean
        digital = quantize_eight(noise)
        reversal = rows["electrode_reversal"].to_numpy() if "electrode_reversal" in rows else ()
        for k, kind in enumerate(reversal):
            if kind != "none":  # misplaced electrodes: the machine derives its leads from the wrong potentials
                digital[k] = reverse_limb_electrodes(digital[k], kind)
        peaks = [p[(p >= 0) & (p < n)] for p in positions]
        return WaveformBatch(rows["ecg_id"].to_numpy(), digital, clean, peaks, pp)

    def records(self, start: int = 0, stop: int | None = None) -> Iterator[ECG]:
        """Yield ECGs ``start:stop`` as :class:`~ecgscope.ecg.ECG` records (noisy, as recorded)."""
        info = self.ecgs.set_index("ecg_id")
        demo = self.patients.set_index("patient_id")
        for batch in self.iter_batches(start, stop):
            signal = batch.signal
            for k, ecg_id in enumerate(batch.ecg_ids):
                row = info.loc[ecg_id]
                person = demo.loc[row["patient_id"]]
                yield ECG(signal[k], self.fs, STANDARD_LEADS, str(ecg_id), str(row["patient_id"]),
                          pd.Timestamp(row["acquired_at"]).to_pydatetime(), f"simulated:{self.preset.name}",
                          {"age": float(person["age"]), "sex": person["sex"], "units_conversion": "none (mV)"})


def simulate_cohort(preset: str | Preset = "ukb", n: int | None = None, seed: int = 0, *,
                    fs: float | None = None, duration_s: float | None = None,
                    snr_db: float | None = None, electrode_reversal: float = 0.0) -> SimulatedCohort:
    """Simulate a paired ECG / imaging / outcome cohort.

    Parameters
    ----------
    preset : str or Preset
        One of :func:`~ecgscope.simulate.list_presets` (``ukb``, ``hospital``, ...).
    n : int, optional
        Number of subjects; default the preset's size.
    seed : int
        Same seed, same cohort, byte for byte.
    fs, duration_s : float, optional
        Sampling rate (Hz) and length (s); default the preset's (500 Hz, 10 s for most).
    snr_db : float, optional
        One noise tier for every ECG; default a mix of the preset's tiers.
    electrode_reversal : float
        Share of ECGs recorded with two limb electrodes exchanged (LA/RA, LA/LL or RA/LL, equally often; the
        ``electrode_reversal`` column of ``ecgs`` says which), to measure lead-placement checks against truth.
        0 (the default) leaves every cohort byte for byte as before.

    Examples
    --------
    >>> cohort = simulate_cohort("hospital", n=20, seed=1)
    >>> cohort.patients["rvef"].between(10, 85).all()
    True
    """
    p = preset if isinstance(preset, Preset) else get_preset(preset)
    if fs is not None or duration_s is not None:
        p = replace(p, fs=fs or p.fs, duration_s=duration_s or p.duration_s)
    n = int(n if n is not None else p.n)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    streams = np.random.SeedSequence(seed).spawn(8)
    rngs = [np.random.default_rng(s) for s in streams]

    truth = state.draw_state(p, n, rngs[0])
    truth.insert(0, "patient_id", np.arange(1, n + 1, dtype=np.int64))
    truth["diastolic_high_risk"] = truth["diastolic_score"] > outcomes.DIASTOLIC_HIGH_RISK_SCORE
    imaging_date, index_ecg = measurements.study_dates(p, n, rngs[1])
    params = waveform.draw_ecg_parameters(truth, rngs[2])

    extra = rngs[3].poisson(p.extra_ecgs, n) if p.extra_ecgs > 0 else np.zeros(n, dtype=int)
    extra_dates = measurements.extra_ecg_dates(p, index_ecg, imaging_date, extra, rngs[3])
    owner = np.repeat(np.arange(n), extra)
    extra_params = waveform.jitter_parameters(params.iloc[owner].reset_index(drop=True), rngs[3])
    ecgs = pd.concat([params, extra_params], ignore_index=True)
    pids = truth["patient_id"].to_numpy()
    ecgs.insert(0, "patient_id", np.concatenate([pids, pids[owner]]))
    ecgs.insert(1, "acquired_at", np.concatenate([index_ecg, extra_dates]))
    ecgs.insert(2, "is_index", np.concatenate([np.ones(n, bool), np.zeros(len(owner), bool)]))
    ecgs = ecgs.sort_values(["patient_id", "acquired_at"], kind="stable").reset_index(drop=True)
    ecgs.insert(0, "ecg_id", np.arange(1, len(ecgs) + 1, dtype=np.int64))
    tiers = np.array(sorted(p.snr_tiers))
    probs = np.array([p.snr_tiers[t] for t in tiers])
    if snr_db is not None:
        snr = np.full(len(ecgs), float(snr_db))
    else:
        snr = rngs[4].choice(tiers, len(ecgs), p=probs / probs.sum())
    ecgs.insert(4, "snr_db", snr)
    if electrode_reversal:
        if not 0 <= electrode_reversal <= 1:
            raise ValueError(f"electrode_reversal is a share of ECGs, 0-1, not {electrode_reversal}")
        placed = rngs[7].random(len(ecgs)) < electrode_reversal
        ecgs["electrode_reversal"] = np.where(placed, rngs[7].choice(REVERSALS, len(ecgs)), "none")

    fate = outcomes.draw_outcomes(truth, p, rngs[5])
    truth["index_date"] = index_ecg.astype("datetime64[D]").astype("datetime64[s]")
    truth = pd.concat([truth, fate], axis=1)

    imaging = None
    if p.imaging == "mri":
        imaging = measurements.mri_table(truth, rngs[6])
    elif p.imaging == "echo":
        imaging = measurements.echo_table(truth, rngs[6])
    if imaging is not None:
        imaging.insert(0, "patient_id", truth["patient_id"].to_numpy())
        imaging.insert(1, "study_id", np.arange(1, n + 1, dtype=np.int64))
        imaging.insert(2, "study_date", imaging_date.astype("datetime64[D]"))
        imaging.insert(3, "modality", p.imaging)

    velocity, displacement, rr_ms = motion.motion_curves(truth, params)
    n_samples = int(round(p.fs * p.duration_s))
    return SimulatedCohort(p, seed, float(p.fs), n_samples, truth, ecgs, imaging, velocity, displacement, rr_ms)
