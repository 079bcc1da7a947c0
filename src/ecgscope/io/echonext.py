"""EchoNext layout: ``EchoNext_{split}_waveforms.npy`` (N, 1, 2500, 12) at 250 Hz, clipped and z-scored per
lead, ``EchoNext_{split}_tabular_features.npy`` (N, 7), and ``echonext_metadata_100k.csv``."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ecgscope.ecg import ECG
from ecgscope.errors import InvalidRecord
from ecgscope.io.base import Source, make_ecg, real_samples
from ecgscope.leads import STANDARD_LEADS

ECHONEXT_FS = 250.0
ECHONEXT_SAMPLES = 2500
#: Columns of the tabular features array, in order.
TABULAR_FEATURES = ("sex", "age", "ventricular_rate", "atrial_rate", "pr_interval", "qrs_duration", "qtc")
CLIP_MV = 5.0


def normalize_waveforms(signal_mv: np.ndarray) -> np.ndarray:
    """Clip to +-5 mV and z-score each lead of each record: (B, 12, T) mV -> (B, 1, T, 12) float32."""
    x = np.clip(signal_mv, -CLIP_MV, CLIP_MV)
    x = (x - x.mean(-1, keepdims=True)) / np.maximum(x.std(-1, keepdims=True), 1e-6)
    return np.transpose(x, (0, 2, 1))[:, None].astype(np.float32)


def open_waveform_array(path: str | Path, n: int) -> np.memmap:
    """Create an .npy file of shape (n, 1, 2500, 12) float32 to be filled batch by batch."""
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, 1, ECHONEXT_SAMPLES, 12))


# --- reading ----------------------------------------------------------------------------------------

SPLITS = ("train", "val", "test")


@functools.lru_cache(maxsize=4)
def _metadata(folder: str) -> pd.DataFrame:
    files = sorted(Path(folder).glob("echonext_metadata*.csv"))
    if not files:
        raise InvalidRecord(folder, "no echonext_metadata*.csv beside the waveform arrays")
    return pd.read_csv(files[0])


@functools.lru_cache(maxsize=8)
def _waves(path: str) -> np.ndarray:
    return np.load(path, mmap_mode="r")


def discover(path: str | Path) -> Iterator[Source]:
    """One source per ECG in each split's waveform array (key: row index)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    files = [folder / f"EchoNext_{s}_waveforms.npy" for s in SPLITS] if path.is_dir() else [path]
    for file in files:
        if not file.exists():
            continue
        shape = _waves(str(file)).shape
        if len(shape) != 4 or shape[1:] != (1, ECHONEXT_SAMPLES, 12):
            raise InvalidRecord(str(file), f"array of shape {shape}, expected (N, 1, {ECHONEXT_SAMPLES}, 12)")
        for i in range(shape[0]):
            yield Source("echonext", str(file), str(i))


def load(source: Source) -> ECG:
    """One EchoNext ECG: (12, 2500) at 250 Hz, already clipped and z-scored (marked ``normalized``)."""
    file = Path(source.path)
    split = file.name.removeprefix("EchoNext_").removesuffix("_waveforms.npy")
    i = int(source.key)
    meta_rows = _metadata(str(file.parent))
    rows = meta_rows[meta_rows["split"] == split]
    if i >= len(rows):
        raise InvalidRecord(f"{file}#{i}", f"row {i} has no metadata row in split {split!r}")
    row = rows.iloc[i]
    flags = {k: int(row[k]) for k in row.index if k.endswith("_flag") and pd.notna(row[k])}
    meta = {"normalized": "clipped and z-scored per lead by EchoNext", "units_conversion": "none (not mV)",
            "split": split, "sex": row.get("sex"), "age": row.get("age_at_ecg"), **flags}
    signal = real_samples(_waves(str(file))[i, 0], f"{file}#{i}").astype(np.float32).T
    # the public metadata may leave the acquisition time out; exports that keep it can be linked by date
    when = pd.to_datetime(row.get("acquisition_datetime"), errors="coerce")
    return make_ecg(signal, ECHONEXT_FS, STANDARD_LEADS, f"{file}#{i}", ecg_id=str(row["ecg_key"]),
                    patient_id=str(row["patient_key"]), acquired_at=None if pd.isna(when) else when.to_pydatetime(),
                    meta=meta)
