"""Ingest: any mix of ECG files and dataset folders -> one store, in parallel, in bounded memory.

Every input is discovered, loaded, standardised to the 12 leads, resampled with an anti-aliasing filter
to the store's rate, cropped or padded to its length and checked. A record that cannot be made valid is
written to the quarantine with its path and reason, and the rest go on. Re-running adds nothing twice
(sources already in the manifest or quarantine are skipped), and a killed ingest resumes where its last
committed batch ended.
"""

from __future__ import annotations

import os
import shutil
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ecgscope import io
from ecgscope.errors import EcgscopeError, InvalidRecord
from ecgscope.io.atomic import atomic_file, write_parquet, write_text
from ecgscope.io.base import Source
from ecgscope.progress import progress_bar
from ecgscope.signal import flat_leads, quality_metrics, resample
from ecgscope.store.layout import UNITS, Store, StoreConfig, StoreError, _parts, part_name

MANIFEST_COLUMNS = ("row", "part", "part_row", "record_key", "ecg_id", "patient_id", "acquired_at", "source",
                    "format", "original_fs", "original_samples", "age", "sex", "units_conversion",
                    "max_abs_mv", "saturated_fraction", "hf_noise_mv", "baseline_wander_mv")


@dataclass
class IngestReport:
    """What one ingest run did."""

    added: int
    skipped: int
    rejected: int
    store: Path

    @property
    def summary(self) -> str:
        """One line for a person."""
        return (f"{self.added:,} added, {self.skipped:,} already in the store, {self.rejected:,} rejected "
                f"(see {self.store / 'quarantine.parquet'})")


def _standardise(source: Source, config: StoreConfig) -> tuple[dict, np.ndarray]:
    """Load one source and make it a store row; raises ``InvalidRecord`` with the reason."""
    ecg = io.load(source)
    normalized = bool(ecg.meta.get("normalized"))
    if normalized != (config.units == "z-score"):
        have = "already z-scored" if normalized else "in mV"
        raise InvalidRecord(source.id, f"record is {have} but the store holds {config.units}; use a store "
                                       f"created with --units {'z-score' if normalized else 'mV'}")
    try:
        ecg = ecg.to_standard()
    except EcgscopeError as exc:
        raise InvalidRecord(source.id, str(exc)) from exc
    flat = flat_leads(ecg.signal, ecg.leads)
    if flat:
        raise InvalidRecord(source.id, f"flat lead(s) {', '.join(flat)}: electrode off or lead missing")
    signal = resample(ecg.signal, ecg.fs, config.fs).astype(np.float32)
    original_samples = ecg.n_samples
    if signal.shape[1] >= config.n_samples:
        signal = signal[:, : config.n_samples]
    else:
        signal = np.pad(signal, ((0, 0), (0, config.n_samples - signal.shape[1])))
    meta = {
        "record_key": f"{source.format}:{ecg.ecg_id}", "ecg_id": ecg.ecg_id, "patient_id": ecg.patient_id,
        "acquired_at": pd.Timestamp(ecg.acquired_at) if ecg.acquired_at else pd.NaT, "source": source.id,
        "format": source.format, "original_fs": ecg.fs, "original_samples": original_samples,
        "age": ecg.meta.get("age"), "sex": ecg.meta.get("sex"),
        "units_conversion": str(ecg.meta.get("units_conversion", "")),
        **quality_metrics(signal, config.fs),
    }
    return meta, signal.astype(config.dtype)


def _work(job: tuple[Source, StoreConfig]):
    source, config = job
    try:
        return _standardise(source, config)
    except (InvalidRecord, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, InvalidRecord) else f"{type(exc).__name__}: {exc}"
        return source.id, reason


def _results(jobs: list[tuple[Source, StoreConfig]], workers: int) -> Iterator:
    """Results in input order; at most 4 x workers in flight, so memory stays bounded."""
    if workers <= 1:
        yield from map(_work, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        for job in jobs:
            pending.append(pool.submit(_work, job))
            if len(pending) >= 4 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _discover(paths: Iterable[str | Path], format: str | None, options: dict,
              rejected: list[tuple[str, str]]) -> list[Source]:
    sources: list[Source] = []
    for path in paths:
        try:
            sources.extend(io.discover(path, format, **options))
        except (EcgscopeError, OSError, ValueError) as exc:
            rejected.append((str(path), exc.reason if isinstance(exc, InvalidRecord) else str(exc)))
    return sources


def open_for_writing(root: Path, config: StoreConfig) -> Store:
    """Create the store, or open it checking its settings; remove orphans of a killed ingest."""
    if config.units not in UNITS:
        raise StoreError(f"units must be one of {UNITS}, not {config.units!r}")
    if (root / "store.json").exists():
        existing = StoreConfig.from_json((root / "store.json").read_text())
        if existing != config:
            raise StoreError(f"{root} was created with fs={existing.fs:g} Hz, {existing.n_samples} samples, "
                             f"units {existing.units}; ingest into it with the same settings or use a new store")
        config = existing
    else:
        root.mkdir(parents=True, exist_ok=True)
        write_text(root / "store.json", config.to_json())
    committed = set(_parts(root / "manifest.parquet", ".parquet"))
    for number, path in _parts(root / "waveforms", ".h5").items():
        if number not in committed:
            path.unlink()
    for leftover in root.rglob("*.partial"):
        leftover.unlink() if leftover.is_file() else shutil.rmtree(leftover)
    return Store(root)


def ingest(paths: Iterable[str | Path], store: str | Path, *, fs: float = 500.0, seconds: float = 10.0,
           units: str = "mV", format: str | None = None, workers: int | None = None, part_size: int = 512,
           input_fs: float | None = None, input_units: str | None = None, rate: int | None = None,
           progress: bool = True) -> IngestReport:
    """Ingest every record under ``paths`` into the store at ``store``; return what was added and rejected.

    ``fs``, ``seconds`` and ``units`` describe the store. ``input_fs`` and ``input_units`` describe CSV and
    NumPy inputs, which carry neither; ``rate`` picks PTB-XL's 100 or 500 Hz tree.
    """
    options = {"fs": input_fs, "units": input_units, "rate": rate}
    root = Path(store)
    config = StoreConfig(fs=float(fs), n_samples=int(round(fs * seconds)), units=units, part_size=part_size)
    st = open_for_writing(root, config)
    config = st.config
    workers = (os.cpu_count() or 1) if workers is None else max(int(workers), 1)

    done = set(st.manifest["source"]) if len(st.manifest) else set()
    done |= set(st.quarantine["source"]) if len(st.quarantine) else set()
    keys = dict(zip(st.manifest["record_key"], st.manifest["source"], strict=True)) if len(st.manifest) else {}
    unreadable: list[tuple[str, str]] = []
    sources = list({s.id: s for s in _discover(paths, format, options, unreadable)}.values())  # once each
    rejected = [r for r in dict(unreadable).items() if r[0] not in done]
    todo = [s for s in sources if s.id not in done]
    skipped = len(sources) - len(todo)

    next_part = max(_parts(root / "manifest.parquet", ".parquet"), default=0) + 1
    next_row = len(st.manifest)
    batch_meta: list[dict] = []
    batch_rows: list[np.ndarray] = []
    added = 0
    n_rejected = 0

    def commit() -> None:
        nonlocal next_part, next_row, added, n_rejected, batch_meta, batch_rows, rejected
        if not batch_meta and not rejected:
            return
        name = part_name(next_part)
        if batch_meta:
            (root / "waveforms").mkdir(exist_ok=True)
            with atomic_file(root / "waveforms" / f"{name}.h5") as tmp, h5py.File(tmp, "w") as f:
                f.create_dataset("signal", data=np.stack(batch_rows), chunks=(1, 12, config.n_samples),
                                 compression="lzf")
            for k, meta in enumerate(batch_meta):
                meta.update(row=next_row + k, part=next_part, part_row=k)
        table = pd.DataFrame(batch_meta, columns=list(MANIFEST_COLUMNS))
        write_parquet(table.astype({"ecg_id": str, "patient_id": str}), root / "manifest.parquet" / f"{name}.parquet")
        if rejected:
            write_parquet(pd.DataFrame(rejected, columns=["source", "reason"]),
                          root / "quarantine.parquet" / f"{name}.parquet")
        next_part += 1
        next_row += len(batch_meta)
        added += len(batch_meta)
        n_rejected += len(rejected)
        batch_meta, batch_rows, rejected = [], [], []

    with progress_bar(progress) as bar:
        task = bar.add_task(f"ingesting into {root.name}", total=len(todo))
        for result in _results([(s, config) for s in todo], workers):
            if isinstance(result[1], str):
                rejected.append(result)
            else:
                meta, signal = result
                if meta["record_key"] in keys:
                    rejected.append((meta["source"], f"duplicate record id {meta['ecg_id']}: already stored "
                                                     f"from {keys[meta['record_key']]}"))
                else:
                    keys[meta["record_key"]] = meta["source"]
                    batch_meta.append(meta)
                    batch_rows.append(signal)
            if len(batch_meta) >= config.part_size or len(rejected) >= config.part_size:
                commit()
            bar.advance(task)
        commit()
    return IngestReport(added, skipped, n_rejected, root)

