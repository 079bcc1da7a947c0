"""The dataset store: immutable HDF5 waveform parts, a Parquet manifest and quarantine; streaming ingest."""

from ecgscope.store.ingest import IngestReport, ingest
from ecgscope.store.layout import Store, StoreConfig, StoreError

__all__ = ["IngestReport", "Store", "StoreConfig", "StoreError", "ingest"]
