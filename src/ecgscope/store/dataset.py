"""A torch ``Dataset`` over a store: random records, read on demand in each DataLoader worker."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ecgscope.store.layout import Store


class StoreDataset(Dataset):
    """Records of a store as float32 tensors (leads, samples), with optional targets per record.

    Parameters
    ----------
    store : str, Path or Store
    rows : sequence of int, optional
        Manifest rows to serve (a split); default all.
    targets : ndarray of shape (len(rows), n_targets), optional
        Returned beside each signal.
    transform : callable, optional
        Applied to the (leads, samples) array before it becomes a tensor (augmentation, normalisation).
    """

    def __init__(self, store: str | Path | Store, rows: Sequence[int] | None = None,
                 targets: np.ndarray | None = None, transform: Callable[[np.ndarray], np.ndarray] | None = None):
        self.store = store if isinstance(store, Store) else Store(store)
        self.rows = np.arange(len(self.store)) if rows is None else np.asarray(rows, dtype=np.int64)
        self.targets = None if targets is None else np.asarray(targets, dtype=np.float32)
        if self.targets is not None and len(self.targets) != len(self.rows):
            raise ValueError(f"{len(self.targets)} target rows for {len(self.rows)} records")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        signal = self.store.read(int(self.rows[index]))
        if self.transform is not None:
            signal = self.transform(signal)
        x = torch.from_numpy(np.ascontiguousarray(signal, dtype=np.float32))
        return x if self.targets is None else (x, torch.from_numpy(self.targets[index]))
