"""Ingest: any mix of ECG files and dataset folders -> one store, in parallel, in bounded memory.

Every input is discovered, loaded, standardised to the 12 leads, resampled with an anti-aliasing filter
to the store's rate, cropped or padded to its length and checked. A record that cannot be made valid is
written to the quarantine with its path and reason, and the rest go on. Re-running adds nothing twice
(sources already in the manifest or quarantine are skipped), and a killed ingest resumes where its last
committed batch ended.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import signal as signals
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa

from ecgscope import io
from ecgscope.errors import EcgscopeError, InvalidRecord
from ecgscope.io.base import Source
from ecgscope.privacy import PrivacyPolicy, Pseudonymizer
from ecgscope.progress import progress_bar
from ecgscope.signal import flat_leads, quality_metrics, resample
from ecgscope.signal.leadcheck import limb_identity_problem, reversal_warning
from ecgscope.signal.pipeline import UNITS
from ecgscope.store.digests import DigestIndex
from ecgscope.store.layout import Store, StoreConfig, StoreError, part_name, scan_parts, waveform_file
from ecgscope.store.location import Location

#: The manifest's columns and their types: every part is written with this schema, so parts written by
#: different datasets (one with ages, one without) always read back as one table.
MANIFEST_SCHEMA = pa.schema([
    ("row", pa.int64()), ("part", pa.int64()), ("part_row", pa.int64()), ("record_key", pa.string()),
    ("ecg_id", pa.string()), ("patient_id", pa.string()), ("acquired_at", pa.timestamp("ns")),
    ("source", pa.string()), ("format", pa.string()), ("original_fs", pa.float64()),
    ("original_samples", pa.int64()), ("age", pa.float64()), ("sex", pa.string()),
    ("units_conversion", pa.string()), ("lead_warning", pa.string()), ("max_abs_mv", pa.float64()),
    ("saturated_fraction", pa.float64()), ("hf_noise_mv", pa.float64()), ("baseline_wander_mv", pa.float64()),
])
MANIFEST_COLUMNS = tuple(MANIFEST_SCHEMA.names)
QUARANTINE_SCHEMA = pa.schema([("source", pa.string()), ("reason", pa.string())])
#: Seconds one file may take to read and standardise before it is quarantined (a 64 MB XML parses in ~5 s).
READ_TIME_LIMIT_S = 60.0
#: Manifest or quarantine parts beyond this many are merged into one when an ingest ends (opening a store
#: reads every part: thousands of small files made it take seconds).
MAX_PARTS = 16
#: Rows per row group of a merged manifest or quarantine.
ROW_GROUP_ROWS = 4_096


@dataclass
class IngestReport:
    """What one ingest run did: every input is added, already stored, rejected, or not an ECG file."""

    added: int
    skipped: int
    rejected: int
    store: Path | str
    not_ecg: list[tuple[str, str]] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """One line for a person."""
        return (f"{self.added:,} added, {self.skipped:,} already in the store, {self.rejected:,} rejected "
                f"(see {self.store}/quarantine.parquet), {len(self.not_ecg):,} files not ECGs")

    @property
    def nothing_done(self) -> bool:
        """No record was stored now or before: every input was rejected or none was an ECG."""
        return self.added == 0 and self.skipped == 0


class ReadTimeLimit(BaseException):  # not an Exception: no reader's own ``except Exception`` may swallow it
    """Reading one file took longer than ``READ_TIME_LIMIT_S``."""


@contextmanager
def _time_limit(seconds: float):
    """Interrupt the body after ``seconds`` (SIGALRM; only where a signal can be delivered: the main thread)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread() or not hasattr(signals, "SIGALRM"):
        yield
        return

    def expire(signum, frame):
        raise ReadTimeLimit

    previous = signals.signal(signals.SIGALRM, expire)
    signals.setitimer(signals.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signals.setitimer(signals.ITIMER_REAL, 0)
        signals.signal(signals.SIGALRM, previous)


def content_key(signal: np.ndarray) -> str:
    """A stored record's identity: the SHA-256 of its standardised samples (the same ECG exported twice,
    under any name, is found; two ECGs named alike are not confused)."""
    return "sha256:" + hashlib.sha256(np.ascontiguousarray(signal).tobytes()).hexdigest()[:32]


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
    stored = signal.astype(config.dtype)
    meta = {
        "record_key": content_key(stored), "ecg_id": ecg.ecg_id, "patient_id": ecg.patient_id,
        "acquired_at": pd.Timestamp(ecg.acquired_at) if ecg.acquired_at else pd.NaT, "source": source.id,
        "format": source.format, "original_fs": ecg.fs, "original_samples": original_samples,
        "age": ecg.meta.get("age"), "sex": ecg.meta.get("sex"),
        "units_conversion": str(ecg.meta.get("units_conversion", "")),
        "lead_warning": "; ".join(w for w in warnings if w),
        **quality_metrics(signal, config.fs),
    }
    return meta, stored


def _standardise_or_reason(source: Source, config: StoreConfig):
    """A store row, or the reason it cannot be one; nothing a file does escapes as an exception."""
    try:
        with _time_limit(READ_TIME_LIMIT_S), np.errstate(all="ignore"):  # a corrupt file's NaN is refused below
            return _standardise(source, config)
    except InvalidRecord as exc:
        return exc.reason
    except ReadTimeLimit:
        return f"reading took longer than {READ_TIME_LIMIT_S:g} s: not read"
    except Exception as exc:  # standardising, not reading: still this file's
        return f"reader error: {type(exc).__name__}: {exc}"


@dataclass
class _Batch:
    """What a worker hands back for one batch: metadata of its rows, its rejects, and its waveform part: a
    temporary file beside the store's folder for this process to rename, or None (no rows, or already uploaded
    to an object store under its final name)."""

    number: int
    metas: list[dict]
    rejected: list[tuple[str, str]]
    waveforms: Path | None


def _build_batch(job: tuple[int, list[Source], StoreConfig, str]) -> _Batch:
    """Worker: standardise a batch of sources and write their signals to an HDF5 part: a temporary file in a
    local store's folder, or straight to its final name in an object store (visible only when complete, and
    unreferenced until this batch's manifest part is committed)."""
    number, sources, config, store_url = job
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
    location = Location(store_url)
    if location.local:
        tmp = location.root / "waveforms" / f".{part_name(number)}.h5.partial"
        _write_part(tmp, rows, config)
        return _Batch(number, metas, rejected, tmp)
    with location.writing(waveform_file(number)) as tmp:
        _write_part(tmp, rows, config)
    return _Batch(number, metas, rejected, None)


def _write_part(path: Path, rows: list[np.ndarray], config: StoreConfig) -> None:
    with h5py.File(path, "w") as f:
        # uncompressed: a random read is then a plain copy (lzf decompression made reads ~5x slower here)
        f.create_dataset("signal", data=np.stack(rows), chunks=(1, len(config.leads), config.n_samples))


def _batches(jobs: list, workers: int, engine: str = "local", address: str | None = None) -> Iterator[_Batch]:
    """Built batches in order; at most 2 x workers in flight, so memory stays bounded. ``engine`` ``local``
    uses a process pool on this machine, ``ray`` a Ray cluster (:mod:`ecgscope.engines`)."""
    if engine == "ray":  # a task whose worker dies is retried: it rewrites the same temporary part
        from ecgscope.engines import ray_iter

        yield from ray_iter(_build_batch, jobs, address=address, num_cpus=workers)
        return
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


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    """``items`` in lists of ``size`` (the last shorter), drawn from the stream only as each is needed."""
    items = iter(items)
    while chunk := list(itertools.islice(items, size)):
        yield chunk


class _Known:
    """What an ingest must not add twice, in ~24 bytes per ECG (:class:`DigestIndex`): every source stored or
    quarantined before this run and met in it, each content key with the row that holds it, every ecg_id."""

    MET, STORED, COUNTED = 0, 1, 2  # a source met in this run; stored before it; stored, and counted skipped

    def __init__(self, sources: DigestIndex, keys: DigestIndex, ids: DigestIndex):
        self.sources, self.keys, self.ids = sources, keys, ids
        self._batch: dict[int, str] = {}  # rows kept in the batch being built -> their source

    @classmethod
    def of(cls, store: Store) -> _Known:
        """What ``store`` holds, read a batch of manifest and quarantine rows at a time."""
        sources, keys, ids = DigestIndex(), DigestIndex(), DigestIndex()
        for batch in scan_parts(store.location, "manifest.parquet", ["row", "source", "record_key", "ecg_id"]):
            for row, source, key, ecg_id in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                sources.add(source, cls.STORED)
                keys.add(key, row)
                ids.add(ecg_id)
        for batch in scan_parts(store.location, "quarantine.parquet", ["source"]):
            for source in batch.column(0).to_pylist():
                sources.add(source, cls.STORED)
        return cls(sources, keys, ids)

    def new_sources(self, sources: Iterable[Source], report: IngestReport) -> Iterator[Source]:
        """The sources not stored before, each once; those stored before are counted in ``report.skipped``."""
        for source in sources:
            seen = self.sources.get(source.id)
            if seen is None:
                self.sources.add(source.id, self.MET)
                yield source
            elif seen == self.STORED:
                self.sources.set(source.id, self.COUNTED)
                report.skipped += 1

    def stored_before(self, source_id: str) -> bool:
        """Whether ``source_id`` was stored or quarantined before this run."""
        return self.sources.get(source_id) in (self.STORED, self.COUNTED)

    def copy_of(self, meta: dict, row: int) -> int | None:
        """The row already holding ``meta``'s signal, or None (then ``meta`` will be ``row``, and is recorded)."""
        held = self.keys.get(meta["record_key"])
        if held is None:
            self.keys.add(meta["record_key"], row)
            self._batch[row] = meta["source"]
        return held

    def name_copies(self, location: Location, copies: list[tuple[str, int]]) -> list[tuple[str, str]]:
        """Quarantine reasons for ``copies`` (source, row of its stored copy) naming the copy's source: from this
        batch, or one pass over the committed manifest's rows and sources."""
        named, self._batch = self._batch, {}
        wanted = np.array(sorted({row for _, row in copies} - set(named)), np.int64)
        if len(wanted):
            for batch in scan_parts(location, "manifest.parquet", ["row", "source"]):
                rows = batch.column(0).to_numpy()
                for i in np.flatnonzero(np.isin(rows, wanted)):
                    named[int(rows[i])] = batch.column(1)[int(i)].as_py()
        return [(source, f"duplicate: the same signal is already stored from {named[row]}") for source, row in copies]

    def unique_id(self, meta: dict) -> str:
        """``meta``'s ecg_id, suffixed with its content key when another ECG has it (record 1 of two datasets)."""
        ecg_id = meta["ecg_id"]
        if ecg_id in self.ids:
            ecg_id = f"{ecg_id}~{meta['record_key'].split(':')[1][:8]}"
        self.ids.add(ecg_id)
        return ecg_id


def _commit(location: Location, number: int, kept: list[dict], dropped: list[tuple[str, str]],
            waveforms: Path | None, first_row: int) -> None:
    """Make a batch visible: waveform part into place, then its manifest part, then its quarantine part."""
    name = part_name(number)
    if waveforms is not None:
        os.replace(waveforms, location.root / waveform_file(number))
    for k, meta in enumerate(kept):
        meta.update(row=first_row + k, part=number)
    table = pd.DataFrame(kept, columns=list(MANIFEST_COLUMNS)).astype({"ecg_id": str, "patient_id": str})
    _write_typed(table, MANIFEST_SCHEMA, location, f"manifest.parquet/{name}.parquet")
    if dropped:
        _write_typed(pd.DataFrame(dropped, columns=["source", "reason"]), QUARANTINE_SCHEMA, location,
                     f"quarantine.parquet/{name}.parquet")


def _write_typed(table: pd.DataFrame, schema: pa.Schema, location: Location, relative: str) -> None:
    """Write ``table`` atomically with exactly ``schema`` (an all-empty column keeps its type)."""
    import pyarrow.parquet as pq

    with location.writing(relative) as tmp:
        pq.write_table(pa.Table.from_pandas(table, schema=schema, preserve_index=False), tmp)


def _compact(location: Location, folder: str, schema: pa.Schema) -> None:
    """Merge a folder of many parts into one, so opening the store reads one file: written under the highest
    part's name (a kill before the others are removed leaves rows twice, which reading drops), then the rest
    removed. A manifest row keeps naming its waveform part, so merged manifest parts still commit theirs."""
    parts = sorted(location.parts(folder, ".parquet").items())
    if len(parts) <= MAX_PARTS:
        return
    import pyarrow.parquet as pq

    with location.writing(parts[-1][1]) as tmp, pq.ParquetWriter(tmp, schema) as merged:
        pending: list[pa.Table] = []  # a row group of up to ROW_GROUP_ROWS: the manifest is never held whole,
        for k, (_, path) in enumerate(parts, start=1):  # and a big store's footer stays small
            # ParquetFile, not read_table: read_table's first use loads pyarrow.dataset (~50 MiB in a fresh process)
            pending.append(pq.ParquetFile(BytesIO(location.read_bytes(path))).read().select(schema.names).cast(schema))
            if sum(map(len, pending)) >= ROW_GROUP_ROWS or k == len(parts):
                merged.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
                pending = []
    for _, path in parts[:-1]:
        location.remove(path)


def open_for_writing(location: Location, config: StoreConfig, privacy: PrivacyPolicy | None = None) -> Store:
    """Create the store, or open it checking its settings; remove orphans of a killed ingest.

    ``privacy`` is written to a new store's ``store.json``; an existing store keeps its own, and a key other
    than the one it was made with is refused."""
    if config.units not in UNITS:
        raise StoreError(f"units must be one of {UNITS}, not {config.units!r}")
    root = location.root
    if location.local and root.exists() and not root.is_dir():
        raise StoreError(f"--store {root} is a file, not a store folder")
    if location.exists("store.json"):
        existing = StoreConfig.from_json(location.read_bytes("store.json").decode())
        if existing != config:
            raise StoreError(f"{root} was created with fs={existing.fs:g} Hz, {existing.n_samples} samples, "
                             f"units {existing.units}, dtype {existing.dtype}; ingest into it with the same "
                             "settings or use a new store")
        config = existing
    else:
        try:
            root.mkdir(parents=True, exist_ok=True) if location.local else None
        except OSError as exc:
            raise StoreError(f"cannot create the store folder {root} ({exc.strerror})") from exc
        text = json.loads(config.to_json())
        text["privacy"] = (privacy or PrivacyPolicy()).to_dict()
        with location.writing("store.json") as tmp:
            tmp.write_text(json.dumps(text, indent=2) + "\n")
    if location.local and not os.access(root, os.W_OK | os.X_OK):
        raise StoreError(f"the store folder {root} is not writable by this user")
    store = Store(root)  # orphans below are waveform parts no manifest knows: removing them changes no row
    committed = set(location.parts("manifest.parquet", ".parquet"))  # parts whose manifest part was written...
    committed |= set(store.part_of(np.arange(len(store))).tolist())  # ...or named by merged rows
    for number, path in location.parts("waveforms", ".h5").items():
        if number not in committed:
            location.remove(path)
    if location.local:
        for leftover in root.rglob("*.partial"):
            leftover.unlink() if leftover.is_file() else shutil.rmtree(leftover)
    return store


def ingest(paths: Iterable[str | Path], store: str | Path, *, fs: float = 500.0, seconds: float = 10.0,
           units: str = "mV", dtype: str = "float16", format: str | None = None, workers: int | None = None,
           part_size: int = 512, input_fs: float | None = None, input_units: str | None = None,
           input_leads: tuple[str, ...] | None = None, rate: int | None = None,
           identifiers: str = "pseudonymize", shift_dates: bool = False, pseudonym_key: str | Path | None = None,
           engine: str = "local", ray_address: str | None = None, progress: bool = True) -> IngestReport:
    """Ingest every record under ``paths`` into the store at ``store``; return what was added and rejected.

    ``fs``, ``seconds`` and ``units`` describe the store. ``input_fs``, ``input_units`` and ``input_leads``
    describe CSV and NumPy inputs, which carry no rate or unit (and a .npy no lead names); ``rate`` picks
    PTB-XL's 100 or 500 Hz tree (default: the one closest to ``fs``).

    Every file under ``paths`` is accounted for: stored, already stored, quarantined with its reason, or
    counted as not an ECG (``IngestReport.not_ecg``). Patient and record ids are replaced by keyed pseudonyms
    (:mod:`ecgscope.privacy`; the key at ``pseudonym_key``, ``$ECGSCOPE_PSEUDONYM_KEY_FILE`` or the per-user
    default, created if missing) unless ``identifiers="keep"``; ``shift_dates`` moves each patient's dates by a
    keyed offset. A store keeps the policy it was made with.

    Every record's limb leads are checked (:mod:`ecgscope.signal.leadcheck`): one whose labels one swap
    explains is quarantined naming the pair, and a suspected electrode reversal is stored with its
    ``lead_warning``.

    ``engine="ray"`` reads the files on a Ray cluster (``ray_address``, or a local one) instead of this
    machine's processes; the store is the same, and this process alone writes its manifest.

    >>> report = ingest(["data/ptbxl"], "stores/ptbxl", fs=100)     # doctest: +SKIP
    >>> print(report.summary)     # added, already stored, rejected, not ECGs     # doctest: +SKIP
    """
    if engine not in ("local", "ray"):
        raise StoreError(f"engine must be local or ray, not {engine!r}")
    options = {"fs": input_fs, "units": input_units, "leads": input_leads, "rate": rate, "store_fs": fs}
    location = Location(store)
    root = location.root
    if dtype not in ("float16", "float32"):
        raise StoreError(f"dtype must be float16 or float32, not {dtype!r}")
    if not (np.isfinite(fs) and 50 <= fs <= 20_000 and np.isfinite(seconds) and 1 <= seconds <= 3600):
        raise StoreError(f"a store needs 50 <= fs <= 20000 Hz and 1 <= seconds <= 3600; got fs={fs:g}, "
                         f"seconds={seconds:g}")
    config = StoreConfig(fs=float(fs), n_samples=int(round(fs * seconds)), units=units, dtype=dtype,
                         part_size=part_size)
    paths = list(paths)
    if paths and not any(io.input_exists(p) for p in paths):
        raise StoreError(f"nothing to ingest: {', '.join(map(str, paths[:3]))} "
                         f"{'does' if len(paths) == 1 else 'do'} not exist")
    found = io.Discovered()
    sources = io.iter_inputs(paths, found, format, **options)  # a stream: a big tree is never held
    first = next(sources, None)
    if first is None and not found.rejected and not location.exists("store.json"):
        return IngestReport(0, 0, 0, root, found.not_ecg)  # nothing to store or quarantine: no store is made
    sources = itertools.chain([first] if first is not None else [], sources)
    pseudonymizer = None
    policy = PrivacyPolicy(identifiers, shift_dates)
    if identifiers == "pseudonymize":
        pseudonymizer = Pseudonymizer.from_file(pseudonym_key)
        policy = PrivacyPolicy(identifiers, shift_dates, pseudonymizer.fingerprint)
    st = open_for_writing(location, config, policy)
    policy = st.privacy
    if policy.identifiers == "pseudonymize":
        pseudonymizer = pseudonymizer or Pseudonymizer.from_file(pseudonym_key, create=False)
        policy.check_key(pseudonymizer, str(root))
    config = st.config
    workers = (os.cpu_count() or 1) if workers is None else max(int(workers), 1)

    report = IngestReport(0, 0, 0, root, found.not_ecg)
    known = _Known.of(st)
    next_part = max(location.parts("manifest.parquet", ".parquet"), default=0) + 1
    next_row = len(st)
    if location.local:
        (root / "waveforms").mkdir(exist_ok=True)
    todo = known.new_sources(sources, report)
    jobs = ((number, batch, config, location.url)
            for number, batch in enumerate(_chunks(todo, config.part_size), start=next_part))
    with progress_bar(progress) as bar:  # the total is unknown until discovery ends: the bar counts
        task = bar.add_task(f"ingesting into {location.url.rstrip('/').rsplit('/', 1)[-1]}", total=None)
        for batch in _batches(jobs, workers, engine, ray_address):
            kept, copies = [], []
            for part_row, meta in enumerate(batch.metas):
                meta["part_row"] = part_row  # rows of duplicates stay in the file, unreferenced
                copy = known.copy_of(meta, next_row + len(kept))
                if copy is not None:
                    copies.append((meta["source"], copy))
                    continue
                meta = policy.apply(meta, pseudonymizer)
                meta["ecg_id"] = known.unique_id(meta)
                kept.append(meta)
            dropped = batch.rejected + known.name_copies(location, copies)
            _commit(location, batch.number, kept, dropped, batch.waveforms, next_row)
            next_part = batch.number + 1
            next_row += len(kept)
            report.added += len(kept)
            report.rejected += len(dropped)
            bar.advance(task, len(batch.metas) + len(batch.rejected))
    undiscovered = [r for r in dict(found.rejected).items() if not known.stored_before(r[0])]
    report.skipped += len(found.rejected) - len(undiscovered)
    if undiscovered:  # inputs that could not even be discovered
        _commit(location, next_part, [], undiscovered, None, next_row)
        report.rejected += len(undiscovered)
    _compact(location, "manifest.parquet", MANIFEST_SCHEMA)
    _compact(location, "quarantine.parquet", QUARANTINE_SCHEMA)
    return report
