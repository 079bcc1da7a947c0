"""What every reader shares: the ``Source`` handle, unit conversion, and record validation.

A reader module has ``discover(path, **options) -> Iterator[Source]`` (cheap: names the records a path
holds) and ``load(source) -> ECG`` (reads one). Loading each source on its own lets ingest report a
corrupt record and carry on with the rest.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgscope.ecg import ECG
from ecgscope.errors import EcgscopeError, InvalidRecord

#: Factors to millivolts, by unit spelling (lower case).
_TO_MV = {"mv": 1.0, "millivolt": 1.0, "millivolts": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3,
          "microvolt": 1e-3, "microvolts": 1e-3, "v": 1e3, "volt": 1e3, "volts": 1e3, "nv": 1e-6}
#: A resting ECG lead above this peak amplitude (mV, 99.9th percentile of |x|) is not in mV.
MAX_PLAUSIBLE_MV = 25.0
#: No surface ECG sample reaches this (mV): a larger one is a corrupt value, however few there are.
MAX_SAMPLE_MV = 50.0
#: Gain check on the median over leads of each lead's robust peak-to-peak (0.5th to 99.5th percentile, mV):
#: a resting 12-lead ECG sits between these (benchmarks/amplitude_check.py measures the false alarms on real
#: records); a gain off by 10x in either direction leaves it.
GAIN_P2P_MV = (0.15, 8.0)
#: Shortest record accepted: under two seconds there may be no two beats to measure.
MIN_SECONDS = 2.0
#: Largest single-record file a reader opens (an XML, DICOM, CSV or NumPy record of 10 s is well under 1 MB;
#: 64 MB holds minutes of 12-lead signal at 1 kHz in any of them).
MAX_RECORD_FILE_BYTES = 64 * 2**20
#: Most samples per lead a reader allocates for one record (an hour at 500 Hz); declared lengths beyond are
#: refused before any allocation.
MAX_SAMPLES_PER_LEAD = 1_800_000


@dataclass(frozen=True)
class Source:
    """One record to read: its format, the file it lives in, and its key inside that file (if any)."""

    format: str
    path: str
    key: str = ""
    options: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def id(self) -> str:
        """A stable identifier: ``path`` or ``path#key``."""
        return f"{self.path}#{self.key}" if self.key else self.path

    def option(self, name: str, default: Any = None) -> Any:
        """Look up a reader option given at discovery (sampling rate, units, ...)."""
        return dict(self.options).get(name, default)


def file_problem(path: str | Path) -> str | None:
    """Why ``path`` must not be opened as a record file (a pipe, device, socket, folder, symlink loop, missing
    or too large), found from its metadata alone; None when it is a regular file of a plausible size."""
    try:
        info = os.stat(path)  # follows symbolic links; a loop raises ELOOP
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop: the link never reaches a file"
        if exc.errno == errno.ENOENT:
            return "no such file (or a symbolic link to nothing)"
        return f"cannot be inspected ({exc.strerror})"
    mode = info.st_mode
    kinds = {stat.S_ISFIFO: "a named pipe", stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
             stat.S_ISSOCK: "a socket", stat.S_ISDIR: "a folder"}
    for test, kind in kinds.items():
        if test(mode):
            return f"{kind}, not a regular file: refused without opening it"
    return None


def check_file(path: str | Path, where: str, max_bytes: int = MAX_RECORD_FILE_BYTES) -> None:
    """Raise ``InvalidRecord`` unless ``path`` is a regular file no larger than ``max_bytes``."""
    problem = file_problem(path)
    if problem:
        raise InvalidRecord(where, problem)
    size = os.stat(path).st_size
    if size > max_bytes:
        raise InvalidRecord(where, f"file of {size / 2**20:,.0f} MB is larger than any single ECG record "
                                   f"({max_bytes / 2**20:,.0f} MB limit): not read")


def check_declared_samples(n: Any, where: str, what: str = "samples per lead") -> int:
    """A declared length as an int, refused when missing, not positive or beyond ``MAX_SAMPLES_PER_LEAD``."""
    try:
        value = int(n)
    except (TypeError, ValueError, OverflowError):
        raise InvalidRecord(where, f"declared {what} {n!r} is not a whole number") from None
    if value <= 0:
        raise InvalidRecord(where, f"declares {value} {what}: no signal")
    if value > MAX_SAMPLES_PER_LEAD:
        raise InvalidRecord(where, f"declares {value:,} {what}, more than the {MAX_SAMPLES_PER_LEAD:,} a resting "
                                   "ECG reader allocates: not read")
    return value


def real_samples(values: Any, where: str) -> np.ndarray:
    """``values`` as an array, refused unless its samples are real numbers (not boolean, complex, text)."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiu":
        kind = "boolean" if arr.dtype.kind == "b" else "not real numbers"
        raise InvalidRecord(where, f"samples are of type {arr.dtype} ({kind}); an ECG holds real-valued samples")
    return arr


def mv_factor(unit: str, where: str) -> float:
    """Multiplier that turns values in ``unit`` into millivolts; ``where`` names the file for errors."""
    key = str(unit).strip().lower().replace(" ", "")
    if key not in _TO_MV:
        raise InvalidRecord(where, f"unknown amplitude unit {unit!r}; expected mV, uV or V")
    return _TO_MV[key]


def typical_p2p_mv(signal: np.ndarray) -> float:
    """Median over leads of each lead's robust peak-to-peak (0.5th to 99.5th percentile), in the signal's unit."""
    if np.isfinite(signal).all():  # the usual case, in one pass: nanpercentile works lead by lead
        low, high = np.percentile(signal, [0.5, 99.5], axis=1)
        return float(np.median(high - low))
    finite = np.where(np.isfinite(signal), signal, np.nan)
    return float(np.nanmedian(np.nanpercentile(finite, 99.5, axis=1) - np.nanpercentile(finite, 0.5, axis=1)))


def quantile_exceeds(values: np.ndarray, q: float, threshold: float) -> bool:
    """``np.quantile(values, q) > threshold`` (1-D, linear interpolation), by counting where counting decides it.

    The quantile lies between the sorted values at positions ``floor(q * (n - 1))`` and the next (NumPy's
    interpolation never leaves them), so it exceeds ``threshold`` when enough values do and cannot when too
    few do; a position of margin either side covers how NumPy rounds ``q * (n - 1)``. Only a count in between
    sorts. Ingest asks this of every record, where sorting cost more than the rest of the amplitude check.
    """
    n = values.size
    k = int(np.floor(q * (n - 1)))
    above = int(np.count_nonzero(values > threshold))  # the sorted value at position i exceeds it iff above >= n - i
    if above >= n - k + 1:  # position k - 1 already above
        return True
    if above < n - k - 2:  # position k + 2 not above
        return False
    return bool(np.quantile(values, q) > threshold)


def check_amplitude(signal: np.ndarray, where: str) -> None:
    """Reject a signal whose amplitude cannot be millivolts: microvolts labelled mV, or a gain off by 10x.

    Three rules: the 99.9th percentile of |x| within ``MAX_PLAUSIBLE_MV``, no sample beyond ``MAX_SAMPLE_MV``,
    and the median over leads
    of each lead's robust peak-to-peak must lie in ``GAIN_P2P_MV`` (a resting ECG's leads swing about 0.3 to
    3 mV; a gain ten times too high or too low moves most of them out of range together).
    """
    finite = np.abs(signal[np.isfinite(signal)])
    if finite.size and quantile_exceeds(finite, 0.999, MAX_PLAUSIBLE_MV):
        peak = float(np.quantile(finite, 0.999))
        raise InvalidRecord(where, f"amplitude {peak:.0f} is implausible for mV (a resting ECG stays within "
                                   f"+-{MAX_PLAUSIBLE_MV:g} mV); the values look like microvolts labelled as "
                                   "millivolts: check the unit or gain")
    if finite.size and finite.max() > MAX_SAMPLE_MV:
        raise InvalidRecord(where, f"a sample of {finite.max():.3g} mV: no surface ECG reaches {MAX_SAMPLE_MV:g} mV, "
                                   "so the file holds corrupt values (or a wrong unit or gain)")
    if signal.ndim != 2 or signal.shape[0] < 3 or not finite.size:
        return  # the gain rule is a median over leads; too few leads say nothing
    p2p = typical_p2p_mv(signal)
    low, high = GAIN_P2P_MV
    if not low <= p2p <= high:
        hint = "ten times too high" if p2p > high else "ten times too low (or the unit wrong)"
        raise InvalidRecord(where, f"typical lead peak-to-peak {p2p:.3g} mV is outside the {low:g}-{high:g} mV "
                                   f"of a resting ECG: the gain looks {hint}; check the gain or unit")


def make_ecg(signal: Any, fs: Any, leads: Any, where: str, **fields: Any) -> ECG:
    """Build an ``ECG`` (mV) and turn any validation failure into ``InvalidRecord`` naming ``where``."""
    try:
        arr = real_samples(signal, where).astype(np.float32)
        rate = float(fs)
        if arr.ndim == 2 and np.isfinite(rate) and rate > 0 and arr.shape[1] / rate < MIN_SECONDS:
            raise InvalidRecord(where, f"{arr.shape[1]} samples at {rate:g} Hz is {arr.shape[1] / rate:.2f} s, "
                                       f"shorter than the {MIN_SECONDS:g} s a record needs")
        if not fields.get("meta", {}).get("normalized"):
            check_amplitude(arr, where)
        return ECG(arr, fs, tuple(leads), source=where, **fields)
    except InvalidRecord:
        raise
    except (EcgscopeError, ValueError, TypeError) as exc:
        raise InvalidRecord(where, str(exc)) from exc

