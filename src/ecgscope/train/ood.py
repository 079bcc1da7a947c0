"""How far an ECG lies from the data a model was trained on: a Mahalanobis distance on the model's own pooled
embedding (Lee et al., NeurIPS 2018), read as a percentile of held-out ECGs.

The mean and a shrunk covariance (Ledoit-Wolf) are fitted on the training split's embeddings (at most
:data:`REFERENCE_MAX_ECGS` of them); the distances of the calibration split (patients set aside from
training) give the reference. An ECG's ``ood_percentile`` is the share of those calibration ECGs lying
closer to the training data than it does; beyond :data:`FAR_PERCENTILE` the service and ``predict --input``
answer ``cannot_assess`` (so about 1 % of ECGs like the calibration ones are refused by construction;
``benchmarks/ood_benchmark.py`` prints the refusal rate on held-out presets and on real recordings). Stored
beside the weights as ``ood.safetensors``, with its checksum in ``model.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

#: An ECG farther than this percentile of held-out in-distribution ECGs is out of distribution.
FAR_PERCENTILE = 99.0
#: At most this many training ECGs (a seeded draw) fit the mean and covariance: plenty for a covariance of a
#: few hundred dimensions, and it keeps the memory and time of the fit flat in the cohort size (fitting on
#: every ECG of a 100,000-ECG cohort held about 0.5 GiB of embeddings).
REFERENCE_MAX_ECGS = 10_000
FILE = "ood.safetensors"


@dataclass
class OODReference:
    """Mean, precision matrix and sorted calibration distances of a model's embedding."""

    mean: np.ndarray
    precision: np.ndarray
    calibration_distances: np.ndarray

    @classmethod
    def fit(cls, train_features: np.ndarray, calibration_features: np.ndarray) -> OODReference:
        """Fit on training embeddings; take the reference distances from the calibration embeddings."""
        from sklearn.covariance import LedoitWolf

        train = np.asarray(train_features, dtype=np.float64)
        if len(train) < 2 or len(calibration_features) < 1:
            raise ValueError("the out-of-distribution reference needs >= 2 training and >= 1 calibration ECGs")
        cov = LedoitWolf().fit(train)
        ref = cls(cov.location_, cov.precision_, np.empty(0))
        ref.calibration_distances = np.sort(ref.distance(calibration_features))
        return ref

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row of ``features`` from the training mean."""
        d = np.asarray(features, dtype=np.float64) - self.mean
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, self.precision, d), 0.0))

    def percentile(self, features: np.ndarray) -> np.ndarray:
        """Per row, the percentage of calibration ECGs closer to the training data (0-100)."""
        ranks = np.searchsorted(self.calibration_distances, self.distance(features), side="left")
        return 100.0 * ranks / len(self.calibration_distances)

    def save(self, path: Path) -> None:
        """Write ``ood.safetensors`` at ``path``."""
        from safetensors.numpy import save_file

        save_file({"mean": self.mean, "precision": self.precision,
                   "calibration_distances": self.calibration_distances}, str(path))

    @classmethod
    def load(cls, path: Path) -> OODReference:
        """Read what :meth:`save` wrote."""
        from safetensors.numpy import load_file

        arrays = load_file(str(path))
        return cls(arrays["mean"], arrays["precision"], arrays["calibration_distances"])


def reference_rows(rows: np.ndarray, seed: int) -> np.ndarray:
    """The training rows the reference is fitted on: all of them, or a seeded draw of
    :data:`REFERENCE_MAX_ECGS` (in their original order)."""
    rows = np.asarray(rows)
    if len(rows) <= REFERENCE_MAX_ECGS:
        return rows
    return rows[np.sort(np.random.default_rng(seed).choice(len(rows), REFERENCE_MAX_ECGS, replace=False))]


def embeddings(model: nn.Module, batches) -> np.ndarray:
    """The pooled embedding (``forward_features``) of every signal in ``batches``, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        out = [model.forward_features(torch.as_tensor(b).to(device)).float().cpu().numpy() for b in batches]
    return np.concatenate(out) if out else np.empty((0, getattr(model, "num_features", 0)), np.float32)
