"""Lead-order and electrode-placement checks, run on every record at ingest.

Two different faults, two different checks:

**Mislabelled leads** (a converter that writes I, II, III, aVF, aVL, aVR; an array stored in another order).
A 12-lead machine records I and II and computes III, aVR, aVL and aVF from them, so where a file stores the
derived leads, Einthoven's and Goldberger's identities hold to rounding:
III = II - I, aVR = -(I + II) / 2, aVL = I - II / 2, aVF = II - I / 2. :func:`limb_identity_problem` measures
each identity's residual (RMS of its 95 % smallest samples, so a pacing spike does not count, relative to the
RMS of I and II; every real record in ``../shared/data`` but LUDB's stays within the tolerance, which a test
checks) and calls the record mislabelled when one exceeds :data:`IDENTITY_TOLERANCE`; it
then tries every swap of two limb-lead labels and names the pair whose swap makes all four identities hold.
Ingest quarantines a record one swap explains (its numbers are in the wrong rows; ``--input-leads`` declares
the real order) and stores, with a ``lead_warning``, one that no swap explains (per-lead gains or a device
that records the leads separately, as LUDB's record 1 does).

**Reversed limb electrodes** (in the clinic). The identities still hold, since the machine derived the leads
from what it recorded, so the check reads the morphology of the median beat instead (:func:`limb_reversal`):

- **LA/RA** (lead I inverted, aVR and aVL exchanged): the beat a correctly placed aVR shows (inverted P wave
  and negative QRS) appears in aVL instead, and lead I has an inverted P wave and a negative QRS;
- **RA/LL** (lead II inverted, aVR and aVF exchanged): that aVR-like beat appears in aVF, and lead II has an
  inverted P wave and a negative QRS;
- **LA/LL** (I and II exchanged, III inverted, aVL and aVF exchanged): the P wave upright in II, taller in I
  by :data:`P_RATIO`, and inverted in III by more than :data:`P_III_MV`. This reversal leaves a plausible ECG
  and is rarely caught.

The P-wave conditions mean a reversal is not detected in atrial fibrillation. The rules are simple on
purpose and their error rates are measured, not assumed: ``benchmarks/lead_check_benchmark.py`` prints the
sensitivity per reversal and the false-alarm rate on correctly placed ECGs of the simulator (whose
``electrode_reversal`` option misplaces electrodes with known truth). Ingest stores a suspected reversal
with the suspicion in the manifest's ``lead_warning`` column (a reading to check, not an unreadable file).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.signal import butter, find_peaks

from ecgscope.leads import LIMB_DERIVED_LEADS, STANDARD_LEADS
from ecgscope.signal.zerophase import sosfiltfilt

#: Largest identity residual (RMS, relative to the RMS of I and II) of a correctly labelled record.
IDENTITY_TOLERANCE = 0.05
#: LA/LL: how much taller the P wave in I must be than in II, and how deep the inverted P wave in III (mV);
#: strict, because ordinary P-wave axes come close to the reversed pattern.
P_RATIO, P_III_MV = 1.5, 0.05
LIMB_LEADS = ("I", "II", *LIMB_DERIVED_LEADS)
REVERSALS = ("LA/RA", "LA/LL", "RA/LL")


def _trimmed_rms(x: np.ndarray) -> float:
    """RMS of the 95 % smallest values: a pacing spike or a corrupt tail does not decide a whole record."""
    squared = np.sort(np.square(x))
    return float(np.sqrt(np.mean(squared[: max(1, int(0.95 * len(squared)))])))


def _identity_residuals(have: dict[str, np.ndarray]) -> dict[str, float]:
    lead_i, lead_ii = have["I"].astype(np.float64), have["II"].astype(np.float64)
    scale = max(float(np.sqrt(np.mean(lead_i**2))), float(np.sqrt(np.mean(lead_ii**2))), 1e-6)
    expected = {"III": lead_ii - lead_i, "aVR": -(lead_i + lead_ii) / 2, "aVL": lead_i - lead_ii / 2,
                "aVF": lead_ii - lead_i / 2}
    return {name: _trimmed_rms(have[name] - value) / scale for name, value in expected.items() if name in have}


@dataclass(frozen=True)
class IdentityProblem:
    """Limb leads that break the identities: why, and the two labels one swap of which explains it (if any)."""

    reason: str
    swapped: tuple[str, str] | None


def limb_identity_problem(signal: np.ndarray, leads: tuple[str, ...]) -> IdentityProblem | None:
    """How the stored limb leads break Einthoven's or Goldberger's identities, naming the pair that looks
    swapped when one swap explains it; None when they hold or the file stores no derived limb lead."""
    have = {name: np.asarray(signal[i], dtype=np.float64) for i, name in enumerate(leads) if name in LIMB_LEADS}
    if not {"I", "II"} <= have.keys() or not set(LIMB_DERIVED_LEADS) & have.keys():
        return None
    residuals = _identity_residuals(have)
    worst = max(residuals, key=residuals.get)
    if residuals[worst] <= IDENTITY_TOLERANCE:
        return None
    broken = (f"the limb leads break Einthoven's and Goldberger's identities ({worst} is off by "
              f"{residuals[worst]:.0%} of lead I/II)")
    for a, b in combinations(sorted(have, key=LIMB_LEADS.index), 2):
        swapped = {**have, a: have[b], b: have[a]}
        if max(_identity_residuals(swapped).values()) <= IDENTITY_TOLERANCE:
            return IdentityProblem(f"{broken}, and swapping {a} and {b} makes them hold: the file has {a} and {b} "
                                   "exchanged (declare the real order with --input-leads, or fix its header)", (a, b))
    return IdentityProblem(f"{broken} and no single swap of two leads explains it: the lead labels or the "
                           "per-lead gains are wrong, or the device records the limb leads separately", None)


def reverse_limb_electrodes(signal: np.ndarray, reversal: str) -> np.ndarray:
    """The 12 standard leads (..., 12, samples) as they read with two limb electrodes exchanged (``"LA/RA"``,
    ``"LA/LL"`` or ``"RA/LL"``); the chest leads do not change (Wilson's terminal is the mean of all three)."""
    x = np.asarray(signal)
    i, ii, iii, avr, avl, avf = (x[..., STANDARD_LEADS.index(n), :] for n in LIMB_LEADS)
    limb = {"LA/RA": (-i, iii, ii, avl, avr, avf),
            "LA/LL": (ii, i, -iii, avr, avf, avl),
            "RA/LL": (-iii, -ii, -i, avf, avl, avr)}
    if reversal not in limb:
        raise ValueError(f"unknown electrode reversal {reversal!r}; one of {', '.join(REVERSALS)}")
    out = x.copy()
    for name, values in zip(LIMB_LEADS, limb[reversal], strict=True):
        out[..., STANDARD_LEADS.index(name), :] = values
    return out


@functools.lru_cache(maxsize=16)
def _band(fs: float, low: float, high: float) -> np.ndarray:
    """A second-order Butterworth band-pass (designing one costs more than filtering a record with it)."""
    return butter(2, [low, min(high, 0.45 * fs)], btype="band", fs=fs, output="sos")


def beat_centres(signal: np.ndarray, fs: float) -> tuple[np.ndarray, list[int], int, int]:
    """QRS alignment points of a standard-order record: the band-passed signal, the centres (each beat's
    largest total deflection near a peak of the summed slope across leads), and the samples kept before and
    after each centre for a beat."""
    x = sosfiltfilt(_band(float(fs), 0.5, 40.0), signal, axis=-1)
    slope = np.abs(np.diff(sosfiltfilt(_band(float(fs), 8.0, 20.0), signal, axis=-1), axis=-1)).sum(0)
    height = 0.35 * np.percentile(slope, 99.5)
    peaks, _ = find_peaks(slope, height=height, distance=int(0.3 * fs))
    before, after = int(0.35 * fs), int(0.4 * fs)
    peaks = peaks[(peaks >= before) & (peaks < x.shape[-1] - after)]
    # align each beat on its largest total deflection near the slope peak, so the QRS windows overlap
    centre = [p - int(0.06 * fs) + int(np.argmax(np.abs(x[:, p - int(0.06 * fs):p + int(0.06 * fs)]).sum(0)))
              for p in peaks]
    return x, [c for c in centre if before <= c < x.shape[-1] - after], before, after


def median_beat(signal: np.ndarray, fs: float, found: tuple | None = None) -> tuple[np.ndarray, int] | None:
    """The median beat (12, samples) of a standard-order record, aligned on QRS peaks of the summed slope
    across leads, and the index of the alignment point; None when fewer than three beats are found.
    ``found``: :func:`beat_centres` of the record, when the caller has it already."""
    x, centre, before, after = found if found is not None else beat_centres(signal, fs)
    if len(centre) < 3:
        return None
    beats = np.stack([x[:, c - before:c + after] for c in centre])
    return np.median(beats, axis=0), before


def _deflections(beat: np.ndarray, r: int, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Per lead: QRS net deflection (largest positive plus largest negative, +-60 ms around the peak) and P-wave
    amplitude (the extreme between 300 and 80 ms before it), both from the PR-segment baseline."""
    baseline = beat[:, r - int(0.06 * fs) - int(0.02 * fs):r - int(0.06 * fs)].mean(1, keepdims=True)
    qrs = beat[:, r - int(0.06 * fs):r + int(0.06 * fs)] - baseline
    net = qrs.max(1) + qrs.min(1)
    p_window = beat[:, r - int(0.3 * fs):r - int(0.08 * fs)] - beat[:, r - int(0.3 * fs):r - int(0.28 * fs)].mean(
        1, keepdims=True)
    p = p_window[np.arange(len(beat)), np.argmax(np.abs(p_window), axis=1)]
    return net, p


def limb_reversal(signal: np.ndarray, fs: float, found: tuple | None = None) -> str | None:
    """Which limb-electrode reversal the morphology suggests (see the module's rules), or None (``found`` as
    for :func:`median_beat`)."""
    found = median_beat(np.asarray(signal, dtype=np.float64), fs, found)
    if found is None:
        return None
    net, p = _deflections(*found, fs)
    lead = {name: k for k, name in enumerate(STANDARD_LEADS)}
    qrs = {name: net[k] for name, k in lead.items()}
    pw = {name: p[k] for name, k in lead.items()}
    # where the aVR-like beat (inverted P and QRS) landed: aVR when placed right, aVL after LA/RA, aVF after RA/LL
    inverted = min(("aVR", "aVL", "aVF"), key=pw.get)
    if pw[inverted] < 0 and qrs[inverted] < 0:
        if inverted == "aVL" and pw["I"] < 0 and qrs["I"] < 0:
            return "LA/RA"
        if inverted == "aVF" and pw["II"] < 0 and qrs["II"] < 0:
            return "RA/LL"
    if pw["II"] > 0 and pw["I"] > P_RATIO * pw["II"] and pw["III"] < -P_III_MV:
        return "LA/LL"
    return None


def reversal_warning(signal: np.ndarray, fs: float) -> str:
    """The manifest's ``lead_warning`` text for a standard-order record ('' when nothing is suspected)."""
    kind = limb_reversal(signal, fs)
    if kind is None:
        return ""
    return (f"possible {kind} limb-electrode reversal (median-beat rule, ecgscope.signal.leadcheck): check the "
            "electrode placement before reading the limb leads")
