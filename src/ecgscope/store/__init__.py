"""The dataset store: immutable HDF5 waveform parts, a Parquet manifest and quarantine; streaming ingest."""

from ecgscope.store.ingest import IngestReport, ingest
from ecgscope.store.layout import Store, StoreConfig, StoreError

__all__ = ["IngestReport", "Store", "StoreConfig", "StoreDataset", "StoreError", "ingest"]


def __getattr__(name: str):
    # torch is imported only by whoever asks for the Dataset: ingest workers stay small
    if name == "StoreDataset":
        from ecgscope.store.dataset import StoreDataset

        return StoreDataset
    raise AttributeError(f"module 'ecgscope.store' has no attribute {name!r}")
