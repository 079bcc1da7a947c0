"""The ECG record every part of ecgscope agrees on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from ecgscope.errors import InvalidSignalError, LeadMismatchError
from ecgscope.leads import STANDARD_LEADS, normalize_lead_names

#: Sampling rates outside this range are rejected as implausible for a diagnostic ECG.
MIN_FS_HZ, MAX_FS_HZ = 50.0, 20_000.0


@dataclass
class ECG:
    """One ECG recording.

    Parameters
    ----------
    signal : ndarray of shape (n_leads, n_samples), float32, millivolts
    fs : float
        Sampling rate in Hz.
    leads : tuple of str
        Lead names in canonical spelling, one per row of ``signal``.
    ecg_id, patient_id : str
        Identifiers of the recording and of the person.
    acquired_at : datetime or None
        When the ECG was taken.
    source : str
        Where the record came from (a file path, or ``simulated:<preset>``).
    meta : dict
        Demographics and anything else a reader knows (``age``, ``sex``, ``units_conversion``, ...).
    """

    signal: np.ndarray
    fs: float
    leads: tuple[str, ...] = STANDARD_LEADS
    ecg_id: str = ""
    patient_id: str = ""
    acquired_at: datetime | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checked = check_ecg(self.signal, self.fs, self.leads, name=self.ecg_id or self.source)
        self.signal, self.fs, self.leads = checked

    @property
    def n_samples(self) -> int:
        """Number of samples per lead."""
        return int(self.signal.shape[1])

    @property
    def duration_s(self) -> float:
        """Recording length in seconds."""
        return self.n_samples / self.fs

    def lead(self, name: str) -> np.ndarray:
        """The samples of one lead, by any spelling of its name."""
        from ecgscope.leads import lead_index

        return self.signal[lead_index(self.leads, name)]

    def to_standard(self) -> ECG:
        """Return this record with exactly the 12 standard leads in canonical order.

        Missing limb leads (III, aVR, aVL, aVF) are derived from I and II; extra leads are dropped.
        """
        from ecgscope.leads import derive_limb_leads

        have = {name: self.signal[i] for i, name in enumerate(self.leads)}
        if any(n not in have for n in ("III", "aVR", "aVL", "aVF")) and {"I", "II"} <= have.keys():
            for name, values in derive_limb_leads(have["I"], have["II"]).items():
                have.setdefault(name, values)
        missing = [n for n in STANDARD_LEADS if n not in have]
        if missing:
            raise LeadMismatchError(
                f"{self.ecg_id or self.source}: cannot build the 12 standard leads, missing {missing}"
            )
        signal = np.stack([have[n] for n in STANDARD_LEADS])
        return ECG(signal, self.fs, STANDARD_LEADS, self.ecg_id, self.patient_id,
                   self.acquired_at, self.source, dict(self.meta))


def check_ecg(signal: Any, fs: Any, leads: Any, name: str = "") -> tuple[np.ndarray, float, tuple[str, ...]]:
    """Coerce and validate an ECG's signal, sampling rate and lead names.

    Returns the signal as C-contiguous float32 (leads, samples), fs as float, and canonical lead names.
    Raises ``InvalidSignalError`` or ``LeadMismatchError`` naming ``name`` and what is wrong.
    """
    where = f"{name}: " if name else ""
    try:
        arr = np.asarray(signal, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidSignalError(f"{where}signal is not numeric ({exc})") from exc
    if arr.ndim != 2:
        raise InvalidSignalError(f"{where}signal must be 2-D (leads, samples), got shape {arr.shape}")
    lead_names = tuple(normalize_lead_names(leads))
    if len(lead_names) != arr.shape[0]:
        raise LeadMismatchError(
            f"{where}{len(lead_names)} lead names for {arr.shape[0]} signal rows; is the array "
            "transposed (samples, leads)?"
        )
    if arr.shape[1] == 0:
        raise InvalidSignalError(f"{where}signal has no samples")
    try:
        fs_val = float(fs)
    except (TypeError, ValueError) as exc:
        raise InvalidSignalError(f"{where}sampling rate {fs!r} is not a number") from exc
    if not (MIN_FS_HZ <= fs_val <= MAX_FS_HZ):
        raise InvalidSignalError(
            f"{where}sampling rate {fs_val:g} Hz is outside {MIN_FS_HZ:g}-{MAX_FS_HZ:g} Hz"
        )
    if not np.isfinite(arr).all():
        bad = [lead_names[i] for i in np.flatnonzero(~np.isfinite(arr).all(axis=1))]
        raise InvalidSignalError(f"{where}non-finite samples (NaN or inf) in lead(s) {', '.join(bad)}")
    return np.ascontiguousarray(arr), fs_val, lead_names
