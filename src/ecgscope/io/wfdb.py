"""WFDB records (``.hea`` + ``.dat``) through the ``wfdb`` package, and PTB-XL's folder layout."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import wfdb

from ecgscope.ecg import ECG
from ecgscope.errors import InvalidRecord


def ptbxl_record_path(ecg_id: int, fs: float) -> str:
    """PTB-XL's relative record path: ``records500/00000/00001_hr`` (``records100/..._lr`` at 100 Hz)."""
    kind, suffix = ("records100", "lr") if int(fs) == 100 else (f"records{int(fs)}", "hr")
    return f"{kind}/{(ecg_id // 1000) * 1000:05d}/{ecg_id:05d}_{suffix}"


def write_record(path: str | Path, digital: np.ndarray, fs: float, leads: Sequence[str],
                 units_per_mv: float, comments: Sequence[str] = (), when: datetime | None = None) -> Path:
    """Write one record of int16 samples (leads, samples) as WFDB format 16, atomically.

    ``path`` is the record path without extension; the ``.dat`` lands before the ``.hea`` so a reader that
    sees a header always finds its signal.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_leads = digital.shape[0]
    tmp_dir = path.parent / f".{path.name}.partial"
    tmp_dir.mkdir(exist_ok=True)
    try:
        wfdb.wrsamp(path.name, fs=fs, units=["mV"] * n_leads, sig_name=list(leads),
                    d_signal=np.ascontiguousarray(digital.T).astype(np.int16, copy=False), fmt=["16"] * n_leads,
                    adc_gain=[float(units_per_mv)] * n_leads, baseline=[0] * n_leads, comments=list(comments),
                    base_datetime=when, write_dir=str(tmp_dir))
        os.replace(tmp_dir / f"{path.name}.dat", path.with_suffix(".dat"))
        os.replace(tmp_dir / f"{path.name}.hea", path.with_suffix(".hea"))
    finally:
        for leftover in tmp_dir.glob("*"):
            leftover.unlink()
        tmp_dir.rmdir()
    return path


def read(path: str | Path) -> Iterator[ECG]:
    """Read a WFDB record (path with or without ``.hea``) as one ECG in mV with canonical lead names."""
    path = Path(path)
    record_path = path.with_suffix("") if path.suffix in {".hea", ".dat", ".mat"} else path
    try:
        record = wfdb.rdrecord(str(record_path), physical=True)
    except Exception as exc:  # wfdb raises many types for broken files
        raise InvalidRecord(str(path), f"not a readable WFDB record ({type(exc).__name__}: {exc})") from exc
    units = [u.lower() for u in (record.units or ["mv"] * record.n_sig)]
    scale = np.array([{"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "v": 1e3}.get(u, np.nan) for u in units])
    if np.isnan(scale).any():
        raise InvalidRecord(str(path), f"unknown signal units {record.units}")
    signal = (record.p_signal * scale[None, :]).T
    conversion = "none (mV)" if set(units) == {"mv"} else f"{'/'.join(sorted(set(units)))} -> mV"
    meta = {"units_conversion": conversion, "comments": record.comments}
    yield ECG(signal, record.fs, record.sig_name, record_path.name, "", record.base_datetime if
              record.base_date else None, str(path), meta)

