"""CODE-15% layout: HDF5 shards with ``tracings`` (N, 4096, 12) at 400 Hz and ``exam_id``, plus ``exams.csv``.

Tracings are float32 on the same amplitude scale as the released files (about 1 per mV), centred and
zero-padded to 4096 samples; lead order I, II, III, aVR, aVL, aVF, V1-V6. The reader strips the padding,
rejects all-zero tracings, and checks the amplitude scale rather than trusting it (the original code
treats values as 1e-4 V).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ecgscope.ecg import ECG
from ecgscope.errors import InvalidRecord
from ecgscope.io.base import Source, make_ecg
from ecgscope.leads import STANDARD_LEADS

CODE15_FS = 400.0
CODE15_SAMPLES = 4096
EXAMS_COLUMNS = ("exam_id", "age", "is_male", "nn_predicted_age", "1dAVb", "RBBB", "LBBB", "SB", "AF", "ST",
                 "patient_id", "normal_ecg", "death", "timey", "trace_file")


def pad_centered(signal: np.ndarray, length: int = CODE15_SAMPLES) -> np.ndarray:
    """Zero-pad (B, samples, 12) to ``length`` samples with the signal centred, as CODE-15% does."""
    n = signal.shape[1]
    if n > length:
        raise ValueError(f"{n} samples do not fit in a {length}-sample CODE-15% tracing")
    left = (length - n) // 2
    out = np.zeros((signal.shape[0], length, signal.shape[2]), dtype=np.float32)
    out[:, left:left + n] = signal
    return out


class ShardWriter:
    """Append exams to one HDF5 shard; the shard is complete only after :meth:`close`."""

    def __init__(self, path: str | Path, n_exams: int):
        self.path = Path(path)
        self.file = h5py.File(self.path, "w")
        self.tracings = self.file.create_dataset("tracings", (n_exams, CODE15_SAMPLES, 12), dtype="f4",
                                                 chunks=(1, CODE15_SAMPLES, 12))
        self.exam_id = self.file.create_dataset("exam_id", (n_exams,), dtype="i8")
        self.filled = 0

    def append(self, exam_ids: np.ndarray, signal_mv: np.ndarray) -> None:
        """Add exams: ``signal_mv`` is (B, 12, samples) in mV at 400 Hz."""
        b = len(exam_ids)
        self.tracings[self.filled:self.filled + b] = pad_centered(np.transpose(signal_mv, (0, 2, 1)))
        self.exam_id[self.filled:self.filled + b] = exam_ids
        self.filled += b

    def close(self) -> None:
        """Flush and close the shard."""
        self.file.close()


# --- reading ----------------------------------------------------------------------------------------


def shards(path: str | Path) -> list[Path]:
    """The HDF5 shards at ``path`` (a shard file, or a folder of ``*.hdf5``)."""
    path = Path(path)
    return [path] if path.is_file() else sorted(path.glob("*.hdf5")) + sorted(path.glob("*.h5"))


@functools.lru_cache(maxsize=4)
def _exams(folder: str) -> pd.DataFrame | None:
    csv = Path(folder) / "exams.csv"
    return pd.read_csv(csv).set_index("exam_id") if csv.exists() else None


@functools.lru_cache(maxsize=4)
def _open(shard: str) -> h5py.File:
    return h5py.File(shard, "r")


def discover(path: str | Path) -> Iterator[Source]:
    """One source per exam in each shard (key: row index)."""
    for shard in shards(path):
        try:
            with h5py.File(shard, "r") as f:
                n = f["tracings"].shape[0]
        except (OSError, KeyError) as exc:
            raise InvalidRecord(str(shard), f"not a CODE-15% shard ({exc})") from exc
        for i in range(n):
            yield Source("code15", str(shard), str(i))


def strip_padding(tracing: np.ndarray) -> np.ndarray:
    """Remove the zero rows CODE-15% pads around a shorter (7 s) recording: (samples, leads) in, out."""
    moving = np.flatnonzero(np.any(tracing != 0, axis=1))
    return tracing[moving[0]:moving[-1] + 1] if moving.size else tracing[:0]


def amplitude_factor(signal: np.ndarray) -> tuple[float, str]:
    """Scale to mV, judged from the typical lead peak-to-peak: mV as released, 1e-4 V units, or volts."""
    p2p = np.median(np.percentile(signal, 99.5, axis=1) - np.percentile(signal, 0.5, axis=1))
    if p2p > 8.0:
        return 0.1, "1e-4 V units -> mV (x0.1)"
    if p2p < 0.01:
        return 1000.0, "V -> mV (x1000)"
    return 1.0, "none (mV scale, checked)"


def load(source: Source) -> ECG:
    """Read one CODE-15% exam at 400 Hz with its exams.csv row (age, sex, patient, death, follow-up)."""
    f = _open(source.path)
    i = int(source.key)
    where = f"{source.path}#{i}"
    tracing = np.asarray(f["tracings"][i], dtype=np.float32)
    exam_id = int(f["exam_id"][i]) if "exam_id" in f else i
    if tracing.ndim != 2 or tracing.shape[1] != 12:
        raise InvalidRecord(where, f"tracing has shape {tracing.shape}, expected (samples, 12)")
    tracing = strip_padding(tracing)
    if tracing.shape[0] == 0:
        raise InvalidRecord(where, f"exam {exam_id}: all-zero tracing (CODE-15% stores missing exams this way)")
    signal = tracing.T
    factor, conversion = amplitude_factor(signal)
    meta: dict = {"units_conversion": conversion}
    patient = ""
    exams = _exams(str(Path(source.path).parent))
    if exams is not None and exam_id in exams.index:
        row = exams.loc[exam_id]
        patient = str(row["patient_id"])
        meta.update(age=float(row["age"]), sex="M" if bool(row["is_male"]) else "F")
        meta.update({k: row[k] for k in ("death", "timey") if k in row and pd.notna(row[k])})
    return make_ecg(signal * factor, CODE15_FS, STANDARD_LEADS, where, ecg_id=str(exam_id), patient_id=patient,
                    meta=meta)
