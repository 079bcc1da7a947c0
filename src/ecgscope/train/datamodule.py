"""Where training data come from: a store plus a cohort table, split by patient, with augmentations.

Every random choice (order, augmentation) is a function of (seed, epoch, index), so a resumed run sees
exactly the batches an uninterrupted one would have.
"""

from __future__ import annotations

import os

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ecgscope.config import AugmentConfig
from ecgscope.contract import StoreInput


def _rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0 and 1 outside distributed training)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class EpochSeededSampler(Sampler):
    """Yields (index, epoch): a permutation drawn from (seed, epoch); Lightning calls ``set_epoch``.

    With ``shard`` under distributed training, each of W ranks takes every W-th index of the same order
    (rank r: positions r, r + W, ...), so the ranks together see each index once. A shuffled (training) order
    is first padded with its own head to a multiple of W, so every rank takes the same number of steps (a few
    ECGs are seen twice an epoch, as with PyTorch's ``DistributedSampler``); an unshuffled (validation) order
    is not padded, so gathered validation predictions hold every ECG exactly once.
    """

    def __init__(self, n: int, seed: int, shuffle: bool, shard: bool = False):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0
        self.rank, self.world = _rank_and_world() if shard else (0, 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        if self.shuffle and self.world > 1 and self.n % self.world:
            order = np.concatenate([order, order[: self.world - self.n % self.world]])
        return order[self.rank::self.world]

    def __len__(self) -> int:
        # derived, not by drawing the order: the loader asks every epoch, and an order of millions costs seconds
        if self.shuffle:  # padded to a multiple of the ranks
            return -(-self.n // self.world)
        return self.n // self.world + int(self.rank < self.n % self.world)

    def __iter__(self):
        return iter((int(i), self.epoch) for i in self._order())


#: Waveform parts shuffled together in part-blocked order: with 512-ECG parts, each batch is drawn from
#: about a thousand ECGs (a WebDataset-style shuffle buffer), and a reader holds this many parts at once
#: (``ecgscope.store.layout.REMOTE_PARTS_CACHED``).
BLOCK_PARTS = 2


class PartBlockSampler(EpochSeededSampler):
    """Yields (index, epoch) in an order that reads a store's waveform parts sequentially (for object stores).

    ``parts`` gives each index's waveform part. Shuffled: the parts in an order drawn from (seed, epoch),
    taken :data:`BLOCK_PARTS` at a time, the ECGs of each block shuffled together. Unshuffled: storage order.
    Under distributed training each rank takes a contiguous slice of that order (padded like
    :class:`EpochSeededSampler` when shuffled), so ranks read different parts; and the slice's batches are
    dealt to the ``workers`` DataLoader processes so that each reads a contiguous run of it (the loader hands
    batch j to worker j mod workers), downloading each part once rather than once per worker.
    """

    def __init__(self, parts: np.ndarray, seed: int, shuffle: bool, shard: bool = False, batch_size: int = 1,
                 workers: int = 0):
        super().__init__(len(parts), seed, shuffle, shard)
        self.parts, self.batch_size, self.workers = np.asarray(parts), batch_size, max(workers, 1)

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.array_split(np.argsort(self.parts, kind="stable"), self.world)[self.rank]
        rng = np.random.default_rng([self.seed, self.epoch])
        blocks = rng.permutation(np.unique(self.parts))
        block_of_part = np.empty(int(blocks.max()) + 1, dtype=np.int64)
        block_of_part[blocks] = np.arange(len(blocks)) // BLOCK_PARTS
        # by block, and within a block in a random order (a sort, not a scan per block: millions of ECGs)
        order = np.lexsort((rng.random(self.n), block_of_part[self.parts]))
        if self.world > 1 and self.n % self.world:
            order = np.concatenate([order, order[: self.world - self.n % self.world]])
        share = len(order) // self.world
        return self._dealt(order[self.rank * share:(self.rank + 1) * share])

    def _dealt(self, order: np.ndarray) -> np.ndarray:
        """``order``'s full batches split into one contiguous run per worker, interleaved so the loader's
        round-robin gives each worker its own run; a last, partial batch stays last."""
        full = len(order) // self.batch_size
        if self.workers == 1 or full < 2:
            return order
        batches = order[: full * self.batch_size].reshape(full, self.batch_size)
        runs = np.array_split(np.arange(full), self.workers)
        dealt = [batches[run[k]] for k in range(len(runs[0])) for run in runs if k < len(run)]
        return np.concatenate([*dealt, order[full * self.batch_size:]])


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


class StoreDataset(Dataset):
    """The one torch ``Dataset`` over a store: the records of ``rows`` (default all) as float32 (leads,
    samples), with their row of ``targets`` when given.

    ``source`` is a ``Store`` (or its path), read as stored, or a :class:`~ecgscope.contract.StoreInput`,
    read through a model's input contract (what training, validation and prediction use). ``aug`` augments
    each read with a generator seeded by (``seed``, epoch, index): the epoch comes from
    :class:`EpochSeededSampler`, so a resumed run sees the batches an uninterrupted one would have.

    >>> data = StoreDataset("stores/ptbxl", rows=train_rows, targets=y)     # doctest: +SKIP
    """

    def __init__(self, source, rows: np.ndarray | None = None, targets: np.ndarray | None = None,
                 aug: AugmentConfig | None = None, seed: int = 0):
        from ecgscope.store import Store

        self.source = Store(source) if isinstance(source, str | os.PathLike) else source
        self.fs = self.source.pipeline.fs if isinstance(self.source, StoreInput) else self.store.config.fs
        self.rows = np.arange(len(self.store)) if rows is None else np.asarray(rows, dtype=np.int64)
        self.targets = None if targets is None else np.asarray(targets, dtype=np.float32)
        if self.targets is not None and len(self.targets) != len(self.rows):
            raise ValueError(f"{len(self.targets)} target rows for {len(self.rows)} records")
        self.aug, self.seed = aug, seed

    @property
    def store(self):
        """The store the records come from."""
        return self.source.store if isinstance(self.source, StoreInput) else self.source

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item):
        index, epoch = item if isinstance(item, tuple) else (item, 0)
        x = self.source.read(int(self.rows[index]))
        if self.aug is not None:
            x = augment(x, self.fs, self.aug, np.random.default_rng([self.seed, epoch, index]))
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return x if self.targets is None else (x, torch.from_numpy(self.targets[index]))


def loader_workers(requested: int | None = None) -> int:
    """DataLoader worker processes: ``requested``, or by default one per spare core up to 8 on a GPU machine
    (reading, resampling and augmenting must keep up with the GPU: one core prepares about 55 ECGs/s through
    ECGFounder's contract) and none on a CPU-only one, where a worker takes a core from the training step
    itself (``benchmarks/loader_benchmark.py`` measures both)."""
    if requested is not None:
        return int(requested)
    return min(8, max((os.cpu_count() or 1) - 1, 0)) if torch.cuda.is_available() else 0


def make_loader(data: Dataset, batch_size: int, sampler: Sampler, num_workers: int | None = None) -> DataLoader:
    """The one way ecgscope builds a training or validation loader: workers kept alive across epochs (the
    sampler, not the workers, carries the epoch), pinned memory when batches go to a GPU."""
    workers = loader_workers(num_workers)
    return DataLoader(data, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      persistent_workers=workers > 0, pin_memory=torch.cuda.is_available(),
                      prefetch_factor=4 if workers > 0 else None)


class CohortDataModule(L.LightningDataModule):
    """Train / validation loaders over a store for the rows of a cohort table's splits (``num_workers`` None:
    :func:`loader_workers` chooses)."""

    def __init__(self, datasets: dict[str, StoreDataset], batch_size: int, num_workers: int | None, seed: int,
                 order: str = "auto"):
        super().__init__()
        self.datasets, self.batch_size, self.num_workers, self.seed = datasets, batch_size, num_workers, seed
        self.order = order

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        data = self.datasets[split]
        store = data.store
        if self.order == "part_blocks" or (self.order == "auto" and not store.location.local):
            sampler = PartBlockSampler(store.part_of(data.rows), self.seed, shuffle, shard=True,
                                       batch_size=self.batch_size, workers=loader_workers(self.num_workers))
        else:  # a shard per rank under DDP
            sampler = EpochSeededSampler(len(data), self.seed, shuffle, shard=True)
        return make_loader(data, self.batch_size, sampler, self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)
