"""EchoNext layout: ``EchoNext_{split}_waveforms.npy`` (N, 1, 2500, 12) at 250 Hz, clipped and z-scored per
lead, ``EchoNext_{split}_tabular_features.npy`` (N, 7), and ``echonext_metadata_100k.csv``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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
