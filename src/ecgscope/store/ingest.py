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
from ecgscope.io.atomic import write_parquet, write_text
from ecgscope.io.base import Source
from ecgscope.progress import progress_bar
from ecgscope.signal import flat_leads, quality_metrics, resample
from ecgscope.signal.leadcheck import limb_identity_problem, reversal_warning
from ecgscope.signal.pipeline import UNITS
from ecgscope.store.layout import Store, StoreConfig, StoreError, _parts, part_name

MANIFEST_COLUMNS = ("row", "part", "part_row", "record_key", "ecg_id", "patient_id", "acquired_at", "source",
                    "format", "original_fs", "original_samples", "age", "sex", "units_conversion", "lead_warning",
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
    warnings = []
    # a record normalised per lead (EchoNext) has lost the amplitudes the identities relate
    mislabelled = None if normalized else limb_identity_problem(ecg.signal, ecg.leads)
    if mislabelled is not None and mislabelled.swapped is not None:
        raise InvalidRecord(source.id, mislabelled.reason)  # values in the wrong rows: storing them would mislead
    if mislabelled is not None:
        warnings.append(mislabelled.reason)
    try:
        ecg = ecg.to_standard()
    except EcgscopeError as exc:
        raise InvalidRecord(source.id, str(exc)) from exc
    flat = flat_leads(ecg.signal, ecg.leads)
    if flat:
        raise InvalidRecord(source.id, f"flat lead(s) {', '.join(flat)}: electrode off or lead missing")
    signal = resample(ecg.signal, ecg.fs, config.fs).astype(np.float32)
    if config.units == "mV":  # the morphology rules need amplitudes; a z-scored record has lost them
        warnings.append(reversal_warning(signal, config.fs))
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
        "lead_warning": "; ".join(w for w in warnings if w),
        **quality_metrics(signal, config.fs),
    }
    return meta, signal.astype(config.dtype)


def _standardise_or_reason(source: Source, config: StoreConfig):
    try:
        return _standardise(source, config)
    except (InvalidRecord, OSError, ValueError) as exc:
        return exc.reason if isinstance(exc, InvalidRecord) else f"{type(exc).__name__}: {exc}"


@dataclass
class _Batch:
    """What a worker hands back for one batch: metadata of its rows, its rejects, its waveform file."""

    number: int
    metas: list[dict]
    rejected: list[tuple[str, str]]
    waveforms: Path | None


def _build_batch(job: tuple[int, list[Source], StoreConfig, Path]) -> _Batch:
    """Worker: standardise a batch of sources and write their signals to a temporary HDF5 part."""
    number, sources, config, folder = job
    metas, rows, rejected = [], [], []
    for source in sources:
        result = _standardise_or_reason(source, config)
        if isinstance(result, str):
            rejected.append((source.id, result))
        else:
            metas.append(result[0])
            rows.append(result[1])
    if not rows:
        return _Batch(number, metas, rejected, None)
    tmp = folder / f".{part_name(number)}.h5.partial"
    with h5py.File(tmp, "w") as f:
        # uncompressed: a random read is then a plain copy (lzf decompression made reads ~5x slower here)
        f.create_dataset("signal", data=np.stack(rows), chunks=(1, len(config.leads), config.n_samples))
    return _Batch(number, metas, rejected, tmp)


def _batches(jobs: list, workers: int) -> Iterator[_Batch]:
    """Built batches in order; at most 2 x workers in flight, so memory stays bounded."""
    if workers <= 1:
        yield from map(_build_batch, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        for job in jobs:
            pending.append(pool.submit(_build_batch, job))
            if len(pending) >= 2 * workers:
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


def _commit(root: Path, number: int, kept: list[dict], dropped: list[tuple[str, str]], waveforms: Path | None,
            first_row: int) -> None:
    """Make a batch visible: waveform part into place, then its manifest part, then its quarantine part."""
    name = part_name(number)
    if waveforms is not None:
        os.replace(waveforms, root / "waveforms" / f"{name}.h5")
    for k, meta in enumerate(kept):
        meta.update(row=first_row + k, part=number)
    table = pd.DataFrame(kept, columns=list(MANIFEST_COLUMNS))
    write_parquet(table.astype({"ecg_id": str, "patient_id": str}), root / "manifest.parquet" / f"{name}.parquet")
    if dropped:
        write_parquet(pd.DataFrame(dropped, columns=["source", "reason"]),
                      root / "quarantine.parquet" / f"{name}.parquet")


def open_for_writing(root: Path, config: StoreConfig) -> Store:
    """Create the store, or open it checking its settings; remove orphans of a killed ingest."""
    if config.units not in UNITS:
        raise StoreError(f"units must be one of {UNITS}, not {config.units!r}")
    if (root / "store.json").exists():
        existing = StoreConfig.from_json((root / "store.json").read_text())
        if existing != config:
            raise StoreError(f"{root} was created with fs={existing.fs:g} Hz, {existing.n_samples} samples, "
                             f"units {existing.units}, dtype {existing.dtype}; ingest into it with the same "
                             "settings or use a new store")
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
           units: str = "mV", dtype: str = "float16", format: str | None = None, workers: int | None = None,
           part_size: int = 512, input_fs: float | None = None, input_units: str | None = None,
           input_leads: tuple[str, ...] | None = None, rate: int | None = None,
           progress: bool = True) -> IngestReport:
    """Ingest every record under ``paths`` into the store at ``store``; return what was added and rejected.

    ``fs``, ``seconds`` and ``units`` describe the store. ``input_fs``, ``input_units`` and ``input_leads``
    describe CSV and NumPy inputs, which carry no rate or unit (and a .npy no lead names); ``rate`` picks
    PTB-XL's 100 or 500 Hz tree (default: the one closest to ``fs``).

    Every record's limb leads are checked (:mod:`ecgscope.signal.leadcheck`): one whose labels one swap
    explains is quarantined naming the pair, and a suspected electrode reversal is stored with its
    ``lead_warning``.
    """
    options = {"fs": input_fs, "units": input_units, "leads": input_leads, "rate": rate, "store_fs": fs}
    root = Path(store)
    if dtype not in ("float16", "float32"):
        raise StoreError(f"dtype must be float16 or float32, not {dtype!r}")
    config = StoreConfig(fs=float(fs), n_samples=int(round(fs * seconds)), units=units, dtype=dtype,
                         part_size=part_size)
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
    (root / "waveforms").mkdir(exist_ok=True)
    size = config.part_size
    jobs = [(next_part + k, todo[i:i + size], config, root / "waveforms")
            for k, i in enumerate(range(0, len(todo), size))]
    added, n_rejected = 0, 0
    undiscovered = rejected  # inputs that could not even be discovered commit with the first batch
    with progress_bar(progress) as bar:
        task = bar.add_task(f"ingesting into {root.name}", total=len(todo))
        for batch in _batches(jobs, workers):
            kept, dropped = [], undiscovered + batch.rejected
            undiscovered = []
            for part_row, meta in enumerate(batch.metas):
                meta["part_row"] = part_row  # rows of duplicates stay in the file, unreferenced
                if meta["record_key"] in keys:
                    dropped.append((meta["source"], f"duplicate record id {meta['ecg_id']}: already stored "
                                                    f"from {keys[meta['record_key']]}"))
                else:
                    keys[meta["record_key"]] = meta["source"]
                    kept.append(meta)
            _commit(root, batch.number, kept, dropped, batch.waveforms, next_row)
            next_row += len(kept)
            added += len(kept)
            n_rejected += len(dropped)
            bar.advance(task, len(batch.metas) + len(batch.rejected))
    if undiscovered:
        _commit(root, next_part, [], undiscovered, None, next_row)
        n_rejected += len(undiscovered)
    return IngestReport(added, skipped, n_rejected, root)

