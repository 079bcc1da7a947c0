"""Where training data come from: a store plus a cohort table, split by patient, with augmentations.

Every random choice (order, augmentation) is a function of (seed, epoch, index), so a resumed run sees
exactly the batches an uninterrupted one would have.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ecgscope.config import AugmentConfig
from ecgscope.signal import Pipeline
from ecgscope.store.layout import Store


class EpochSeededSampler(Sampler):
    """Yields (index, epoch): a permutation drawn from (seed, epoch); Lightning calls ``set_epoch``."""

    def __init__(self, n: int, seed: int, shuffle: bool):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n) if self.shuffle else range(self.n)
        return iter((int(i), self.epoch) for i in order)


def augment(x: np.ndarray, fs: float, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Amplitude scaling, baseline wander, noise, lead dropout and a circular time shift (leads, samples)."""
    n_leads, n = x.shape
    x = x * np.exp(rng.normal(0, cfg.amplitude_scale_sd, (n_leads, 1))) if cfg.amplitude_scale_sd else x
    if cfg.baseline_wander_mv:
        t = np.arange(n) / fs
        x = x + cfg.baseline_wander_mv * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 6.3))
    if cfg.noise_mv:
        x = x + rng.normal(0, cfg.noise_mv, x.shape)
    if cfg.lead_dropout_p:
        x = x * (rng.random((n_leads, 1)) >= cfg.lead_dropout_p)
    if cfg.random_shift_s:
        x = np.roll(x, int(rng.integers(-cfg.random_shift_s * fs, cfg.random_shift_s * fs + 1)), axis=-1)
    return x.astype(np.float32)


class CohortDataset(Dataset):
    """Signals of ``rows`` of a store through ``pipeline``, with encoded targets; augmented if asked."""

    def __init__(self, store: Store, rows: np.ndarray, targets: np.ndarray, pipeline: Pipeline,
                 aug: AugmentConfig | None, seed: int):
        self.store, self.rows, self.targets = store, rows, targets.astype(np.float32)
        self.pipeline, self.aug, self.seed = pipeline, aug, seed

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item):
        index, epoch = item if isinstance(item, tuple) else (item, 0)
        x = self.pipeline(self.store.read(int(self.rows[index])), self.store.config.fs)
        if self.aug is not None:
            x = augment(x, self.pipeline.fs, self.aug, np.random.default_rng([self.seed, epoch, index]))
        return torch.from_numpy(x), torch.from_numpy(self.targets[index])


class CohortDataModule(L.LightningDataModule):
    """Train / validation loaders over a store for the rows of a cohort table's splits."""

    def __init__(self, datasets: dict[str, CohortDataset], batch_size: int, num_workers: int, seed: int):
        super().__init__()
        self.datasets, self.batch_size, self.num_workers, self.seed = datasets, batch_size, num_workers, seed

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        data = self.datasets[split]
        return DataLoader(data, batch_size=self.batch_size, sampler=EpochSeededSampler(len(data), self.seed, shuffle),
                          num_workers=self.num_workers, persistent_workers=False)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)
