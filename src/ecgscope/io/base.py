"""What every reader shares: the ``Source`` handle, unit conversion, and record validation.

A reader module has ``discover(path, **options) -> Iterator[Source]`` (cheap: names the records a path
holds) and ``load(source) -> ECG`` (reads one). Loading each source on its own lets ingest report a
corrupt record and carry on with the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecgscope.ecg import ECG
from ecgscope.errors import EcgscopeError, InvalidRecord

#: Factors to millivolts, by unit spelling (lower case).
_TO_MV = {"mv": 1.0, "millivolt": 1.0, "millivolts": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3,
          "microvolt": 1e-3, "microvolts": 1e-3, "v": 1e3, "volt": 1e3, "volts": 1e3, "nv": 1e-6}
#: A resting ECG lead above this peak amplitude (mV, 99.9th percentile of |x|) is not in mV.
MAX_PLAUSIBLE_MV = 25.0


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


def mv_factor(unit: str, where: str) -> float:
    """Multiplier that turns values in ``unit`` into millivolts; ``where`` names the file for errors."""
    key = str(unit).strip().lower().replace(" ", "")
    if key not in _TO_MV:
        raise InvalidRecord(where, f"unknown amplitude unit {unit!r}; expected mV, uV or V")
    return _TO_MV[key]


def check_amplitude(signal: np.ndarray, where: str) -> None:
    """Reject a signal whose amplitude cannot be millivolts (for example microvolts labelled mV)."""
    finite = np.abs(signal[np.isfinite(signal)])
    if finite.size and np.quantile(finite, 0.999) > MAX_PLAUSIBLE_MV:
        peak = float(np.quantile(finite, 0.999))
        raise InvalidRecord(where, f"amplitude {peak:.0f} is implausible for mV (a resting ECG stays within "
                                   f"+-{MAX_PLAUSIBLE_MV:g} mV); the values look like microvolts labelled as "
                                   "millivolts: check the unit or gain")


def make_ecg(signal: Any, fs: Any, leads: Any, where: str, **fields: Any) -> ECG:
    """Build an ``ECG`` (mV) and turn any validation failure into ``InvalidRecord`` naming ``where``."""
    try:
        arr = np.asarray(signal, dtype=np.float32)
        if not fields.get("meta", {}).get("normalized"):
            check_amplitude(arr, where)
        return ECG(arr, fs, tuple(leads), source=where, **fields)
    except InvalidRecord:
        raise
    except (EcgscopeError, ValueError, TypeError) as exc:
        raise InvalidRecord(where, str(exc)) from exc

