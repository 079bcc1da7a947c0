"""The on-disk store: ``store.json``, immutable HDF5 waveform parts, and Parquet manifest / quarantine parts.

::

    store.json                    schema version, sampling rate, samples, leads, dtype, units, length policy
    waveforms/part-000001.h5      dataset "signal" (rows, 12, samples), one row per ECG, chunked by row
    manifest.parquet/part-000001.parquet    one row per stored ECG (row, part, part_row, ids, quality, ...)
    quarantine.parquet/part-000001.parquet  one row per rejected input (source, reason)

A batch is committed by publishing its waveform part and then its manifest part (each appears whole or not
at all: a rename on a disk, one upload to an object store, :mod:`ecgscope.store.location`); the manifest is
the record of what exists. A waveform part with no manifest part (a killed ingest) is an orphan and is
removed when the store is next opened for writing, so no partial row is ever visible.

A store in an object store (``s3://...``) is read a whole part at a time, one sequential download kept in a
small per-process cache (:data:`REMOTE_PARTS_CACHED`): a record read by a ranged request costs a round trip
each (``benchmarks/remote_store_benchmark.py``), so training streams such a store in part-blocked order
(:class:`ecgscope.train.datamodule.PartBlockSampler`).
"""

from __future__ import annotations

import functools
import io
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa

from ecgscope.errors import EcgscopeError
from ecgscope.leads import STANDARD_LEADS
from ecgscope.privacy import PrivacyPolicy, Pseudonymizer
from ecgscope.store.location import Location

SCHEMA_VERSION = 1
#: Whole waveform parts a process keeps in memory when reading an object store (512 ECGs of 10 s at 500 Hz
#: in float16 are 61 MB each); part-blocked training order reads this many parts at a time.
REMOTE_PARTS_CACHED = 2


class StoreError(EcgscopeError, ValueError):
    """A store directory is missing, corrupt, or was created with other settings."""


@dataclass(frozen=True)
class StoreConfig:
    """What every record in a store has in common."""

    fs: float = 500.0
    n_samples: int = 5000
    leads: tuple[str, ...] = STANDARD_LEADS
    #: float16 keeps 11 significant bits (<= 0.5 uV error at 1 mV, <= 8 uV at 25 mV), is about half the size,
    #: and reads about 5x faster than lzf-compressed float32 (0.12 vs 0.65 ms per record in
    #: benchmarks/store_benchmark.py); choose float32 when the stored values must be bit-exact.
    dtype: str = "float16"
    units: str = "mV"
    length_policy: str = "keep the first n_samples; zero-pad shorter records at the end"
    schema_version: int = SCHEMA_VERSION
    part_size: int = field(default=512, compare=False)

    def to_json(self) -> str:
        """The ``store.json`` text."""
        return json.dumps({**asdict(self), "leads": list(self.leads)}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> StoreConfig:
        """Parse ``store.json``."""
        data = json.loads(text)
        data.pop("privacy", None)  # read by Store.privacy
        data["leads"] = tuple(data["leads"])
        return cls(**data)


def part_name(number: int) -> str:
    """File stem of part ``number``."""
    return f"part-{number:06d}"


def waveform_file(part: int) -> str:
    """Waveform part ``part``'s path relative to the store's root."""
    return f"waveforms/{part_name(part)}.h5"


@functools.lru_cache(maxsize=64)
def _signal(path: str, pid: int) -> h5py.Dataset:  # keyed by pid: handles are never shared across a fork
    return h5py.File(path, "r")["signal"]


@functools.lru_cache(maxsize=REMOTE_PARTS_CACHED)
def _remote_part(url: str, pid: int) -> np.ndarray:
    """A whole waveform part of an object store, downloaded in one sequential read."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    with h5py.File(io.BytesIO(fs.cat_file(path)), "r") as h5:
        return h5["signal"][:]


class Store:
    """Read access to a store directory: its config, manifest, quarantine and waveforms."""

    def __init__(self, root: str | Path):
        self.location = Location(root)
        #: the folder (a Path) or the object-store URL (a str)
        self.root = self.location.root
        if not self.location.exists("store.json"):
            raise StoreError(f"{self.root} is not an ecgscope store (no store.json); create one with "
                             "`ecgscope ingest SRC --store DIR`")
        text = self.location.read_bytes("store.json").decode()
        self.config = StoreConfig.from_json(text)
        self.privacy = PrivacyPolicy.from_dict(json.loads(text).get("privacy"))
        self.refresh()

    def refresh(self) -> None:
        """Re-read the manifest and quarantine (after an ingest).

        Only the row-to-part index is read now; the whole manifest (one row of ids, sources and quality per ECG)
        is read on first use of :attr:`manifest`, so training a model, which needs only the index, does not hold
        it."""
        self._manifest = None
        index = self._columns(["part", "part_row"])
        # plain arrays: a pandas row lookup would cost more than the read itself
        self._part = index["part"].to_numpy(dtype=np.int64) if len(index) else np.empty(0, np.int64)
        self._part_row = index["part_row"].to_numpy(dtype=np.int64) if len(index) else self._part
        self.quarantine = _read_parts(self.location, "quarantine.parquet").drop_duplicates(ignore_index=True)

    @property
    def manifest(self) -> pd.DataFrame:
        """One row per stored ECG, in row order: ids, acquisition time, source, format, quality metrics."""
        if self._manifest is None:
            self._manifest = self._columns(None)
        return self._manifest

    def column(self, name: str) -> np.ndarray:
        """One manifest column in row order, read without loading (or keeping) the whole manifest."""
        if self._manifest is not None:
            return self._manifest[name].to_numpy()
        table = self._columns([name])
        return table[name].to_numpy() if len(table) else np.empty(0)

    def _columns(self, names: list[str] | None) -> pd.DataFrame:
        """Manifest columns ``names`` (None: all) in row order; a row written twice (an ingest killed while
        merging parts) counted once."""
        wanted = None if names is None else ["row", *(n for n in names if n != "row")]
        table = _read_parts(self.location, "manifest.parquet", wanted)
        if len(table):
            table = table.drop_duplicates("row").sort_values("row", kind="stable").reset_index(drop=True)
        return table

    def __len__(self) -> int:
        return len(self._part)

    def waveform_path(self, part: int) -> str:
        """Path (or key in the object store) of waveform part ``part``."""
        return self.location.key(waveform_file(part))

    def part_of(self, rows) -> np.ndarray:
        """The waveform part that holds each of manifest ``rows``."""
        return self._part[np.asarray(rows, dtype=np.int64)]

    def read(self, row: int) -> np.ndarray:
        """The signal of manifest row ``row``: (leads, samples) float32."""
        relative = waveform_file(int(self._part[row]))
        if self.location.local:
            part = _signal(self.location.key(relative), os.getpid())
        else:
            part = _remote_part(self.location.url_of(relative), os.getpid())
        return part[int(self._part_row[row])].astype(np.float32)

    def site_table(self, table: pd.DataFrame, key: str | Path | None = None) -> pd.DataFrame:
        """An imaging or outcomes table with its patient ids (and dates) mapped as this store's were, so it
        links to the manifest; unchanged for a store that kept its ids."""
        if self.privacy.identifiers == "keep":
            return table
        pseudonymizer = Pseudonymizer.from_file(key, create=False)
        self.privacy.check_key(pseudonymizer, str(self.root))
        return pseudonymizer.table(table, shift_dates=self.privacy.shift_dates)

    def info(self) -> dict:
        """A summary: config, counts, sources, quarantine reasons."""
        size = sum(map(self.location.size, self.location.parts("waveforms", ".h5").values())) if len(self) else 0
        return {
            "path": str(self.root), **json.loads(self.config.to_json()), "records": len(self),
            "patients": int(self.manifest["patient_id"].nunique()) if len(self) else 0,
            "formats": self.manifest["format"].value_counts().to_dict() if len(self) else {},
            "rejected": len(self.quarantine), "waveform_bytes": int(size),
            "identifiers": self.privacy.identifiers + (", dates shifted" if self.privacy.shift_dates else ""),
        }


def scan_parts(location: Location, folder: str, columns: list[str],
               rows_per_batch: int = 65_536) -> Iterator[pa.RecordBatch]:
    """``columns`` of a folder of Parquet parts a batch of rows at a time, parts in order (a row written twice
    by a merge that was killed appears twice): for a pass over a big store that must not hold a whole column."""
    import pyarrow.parquet as pq

    for _, relative in sorted(location.parts(folder, ".parquet").items()):
        with location.open(relative) as handle:
            yield from pq.ParquetFile(handle).iter_batches(batch_size=rows_per_batch, columns=columns)


def _read_parts(location: Location, folder: str, columns: list[str] | None = None) -> pd.DataFrame:
    parts = sorted(location.parts(folder, ".parquet").items())
    if not parts:
        return pd.DataFrame()
    tables = [pd.read_parquet(io.BytesIO(location.read_bytes(p)), columns=columns) for _, p in parts]
    tables = [t for t in tables if len(t)] or tables[:1]  # empty parts would make pandas guess column types
    table = pd.concat(tables, ignore_index=True)
    pa.default_memory_pool().release_unused()  # otherwise Arrow's pool keeps the memory it read with
    return table
