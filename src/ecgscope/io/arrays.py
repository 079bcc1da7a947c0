"""Plain arrays: CSV (one column per lead, named in the header) and NumPy ``.npy`` (leads x samples).

These files carry no sampling rate or unit, so the user must give both; nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ecgscope.ecg import ECG
from ecgscope.errors import InvalidRecord
from ecgscope.io.base import Source, check_file, make_ecg, mv_factor, real_samples
from ecgscope.leads import STANDARD_LEADS


def discover(path: str | Path, fs: float | None = None, units: str | None = None,
             leads: tuple[str, ...] | None = None) -> Iterator[Source]:
    """One record per file; ``fs`` (Hz) and ``units`` (mV, uV, V) are required, ``leads`` names the rows of a
    .npy (default: the standard 12-lead order)."""
    if fs is None or units is None:
        raise ValueError(f"{path}: CSV and NumPy files carry no sampling rate or unit; give both to ingest "
                         "(--input-fs 500 --input-units uV), and for a .npy not in the standard lead order "
                         "its order (--input-leads I,II,III,aVR,aVF,aVL,...)")
    yield Source("array", str(path), options=(("fs", float(fs)), ("units", units), ("leads", leads)))


def load(source: Source) -> ECG:
    """Read one CSV or .npy record with the user's sampling rate and units."""
    where = source.path
    factor = mv_factor(source.option("units"), where)
    leads = source.option("leads")
    check_file(where, where)
    try:
        if where.lower().endswith(".csv"):
            table = pd.read_csv(where)
            if leads is None:
                leads = tuple(table.columns)
            signal = real_samples(table.to_numpy(), where).astype(np.float64).T
        else:
            # memory-mapped first: a header may declare a shape far larger than the file holds
            signal = real_samples(np.asarray(np.load(where, mmap_mode="r", allow_pickle=False)), where)
            signal = signal.astype(np.float64)
            if signal.ndim == 2 and signal.shape[0] > signal.shape[1]:
                signal = signal.T  # (samples, leads) stored: leads are the short axis
            leads = leads or STANDARD_LEADS[: signal.shape[0]]
    except (OSError, ValueError, EOFError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InvalidRecord(where, f"unreadable array file ({exc})") from exc
    return make_ecg(signal * factor, source.option("fs"), leads, where, ecg_id=Path(where).stem,
                    meta={"units_conversion": f"{source.option('units')} -> mV"})
