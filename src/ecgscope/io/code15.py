"""CODE-15% layout: HDF5 shards with ``tracings`` (N, 4096, 12) at 400 Hz and ``exam_id``, plus ``exams.csv``.

Tracings are float32 on the same amplitude scale as the released files (about 1 per mV), centred and
zero-padded to 4096 samples; lead order I, II, III, aVR, aVL, aVF, V1-V6.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

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
