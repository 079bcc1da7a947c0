"""A serialisable preprocessing pipeline: the exact signal steps a model expects, saved beside its weights.

Each step is a name and its parameters; ``Pipeline.to_json`` / ``from_json`` round-trip exactly, so the
pipeline in ``preprocess.json`` is what prediction runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import butter, iirnotch, medfilt, tf2sos

from ecgscope.leads import STANDARD_LEADS, normalize_lead_names
from ecgscope.signal.resample import resample
from ecgscope.signal.zerophase import sosfiltfilt


def _remove_mean(x: np.ndarray, fs: float) -> np.ndarray:
    return x - x.mean(-1, keepdims=True)


def _clip(x: np.ndarray, fs: float, limit_mv: float = 5.0) -> np.ndarray:
    return np.clip(x, -limit_mv, limit_mv)


def _bandpass(x: np.ndarray, fs: float, low_hz: float = 0.67, high_hz: float = 40.0, order: int = 4) -> np.ndarray:
    sos = butter(order, [low_hz, min(high_hz, 0.45 * fs)], btype="band", fs=fs, output="sos")
    return sosfiltfilt(sos, x, axis=-1)


def _notch(x: np.ndarray, fs: float, freq_hz: float = 50.0, quality: float = 30.0) -> np.ndarray:
    if freq_hz >= fs / 2:
        return x
    b, a = iirnotch(freq_hz, quality, fs=fs)
    return sosfiltfilt(tf2sos(b, a), x, axis=-1)


def _median_baseline(x: np.ndarray, fs: float, window_s: float = 0.6) -> np.ndarray:
    width = int(window_s * fs) // 2 * 2 + 1
    return x - np.stack([medfilt(row, width) for row in x.reshape(-1, x.shape[-1])]).reshape(x.shape)


def _zscore_global(x: np.ndarray, fs: float) -> np.ndarray:
    return (x - x.mean(axis=(-2, -1), keepdims=True)) / np.maximum(x.std(axis=(-2, -1), keepdims=True), 1e-6)


def _zscore_lead(x: np.ndarray, fs: float) -> np.ndarray:
    return (x - x.mean(-1, keepdims=True)) / np.maximum(x.std(-1, keepdims=True), 1e-6)


STEPS: dict[str, Callable[..., np.ndarray]] = {
    "remove_mean": _remove_mean, "clip": _clip, "bandpass": _bandpass, "notch": _notch,
    "median_baseline": _median_baseline, "zscore_global": _zscore_global, "zscore_lead": _zscore_lead,
}


#: What ecgscope's own models do to a mV signal at the store's rate: mean removed per lead, clipped to +-5 mV.
DEFAULT_STEPS: tuple[dict, ...] = ({"name": "remove_mean"}, {"name": "clip", "limit_mv": 5.0})
UNITS = ("mV", "z-score")


@dataclass
class Pipeline:
    """A model's input contract: ``leads`` in ``units``, resampled to ``fs``, cropped or zero-padded to
    ``n_samples``, then ``steps`` applied in order. It is saved as ``preprocess.json`` beside the weights and
    is the only description of a model's input anything reads (see :mod:`ecgscope.contract`)."""

    fs: float
    n_samples: int
    steps: list[dict] = field(default_factory=list)
    leads: tuple[str, ...] = STANDARD_LEADS
    units: str = "mV"

    def __post_init__(self) -> None:
        self.steps = [dict(step) for step in self.steps]
        unknown = [s.get("name") for s in self.steps if s.get("name") not in STEPS]
        if unknown:
            raise ValueError(f"unknown preprocessing step(s) {unknown}; known: {', '.join(STEPS)}")
        if self.units not in UNITS:
            raise ValueError(f"input units must be one of {UNITS}, not {self.units!r}")
        self.leads = tuple(normalize_lead_names(self.leads))

    @property
    def seconds(self) -> float:
        """Length of the input in seconds."""
        return self.n_samples / self.fs

    def describe(self) -> str:
        """One line for error messages and model cards."""
        steps = ", ".join(s["name"] for s in self.steps) or "none"
        return (f"{self.fs:g} Hz x {self.n_samples} samples ({self.seconds:g} s), {len(self.leads)} leads "
                f"({', '.join(self.leads)}) in {self.units}, steps: {steps}")

    def __call__(self, signal: np.ndarray, fs: float) -> np.ndarray:
        """Apply to (..., leads, samples) sampled at ``fs``; returns float32 at ``self.fs``."""
        x = resample(np.asarray(signal, dtype=np.float64), fs, self.fs)
        if x.shape[-1] >= self.n_samples:
            x = x[..., : self.n_samples]
        else:
            x = np.concatenate([x, np.zeros((*x.shape[:-1], self.n_samples - x.shape[-1]))], axis=-1)
        for step in self.steps:
            params = {k: v for k, v in step.items() if k != "name"}
            x = STEPS[step["name"]](x, self.fs, **params)
        return x.astype(np.float32)

    def to_dict(self) -> dict:
        """JSON-ready form (``preprocess.json``, and ``input`` in ``model.json``)."""
        return {"fs": self.fs, "n_samples": self.n_samples, "leads": list(self.leads), "units": self.units,
                "steps": self.steps}

    def to_json(self) -> str:
        """The ``preprocess.json`` text."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> Pipeline:
        """Rebuild from :meth:`to_dict`'s form; files written before leads and units were recorded mean the
        12 standard leads in mV, which is what every ecgscope model took then."""
        return cls(float(data["fs"]), int(data["n_samples"]), list(data["steps"]),
                   tuple(data.get("leads", STANDARD_LEADS)), data.get("units", "mV"))

    @classmethod
    def from_json(cls, text: str) -> Pipeline:
        """Rebuild from ``preprocess.json``."""
        return cls.from_dict(json.loads(text))


def default_pipeline(fs: float, n_samples: int) -> Pipeline:
    """The contract of a model ecgscope trains from scratch on a store of ``fs`` Hz x ``n_samples``."""
    return Pipeline(float(fs), int(n_samples), list(DEFAULT_STEPS))


#: ECGFounder's documented preprocessing (REFERENCE.md section 3).
ECGFOUNDER_PIPELINE = Pipeline(500.0, 5000, [{"name": "notch", "freq_hz": 50.0},
                                             {"name": "bandpass", "low_hz": 0.67, "high_hz": 40.0},
                                             {"name": "median_baseline"}, {"name": "zscore_global"}])
